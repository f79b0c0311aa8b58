#!/usr/bin/env python3
"""Verify a ConvoSuite model-call export without ConvoSuite.

Needs Python 3.9+ and the `cryptography` package only:

    pip install cryptography
    curl -o convosuite-audit-key.pem https://<your-tenant-domain>/.well-known/convosuite-audit-key
    python verify_export.py EXPORT.zip --public-key convosuite-audit-key.pem

It checks the Ed25519 signature over manifest.json, recomputes every record's hash and the links between
records, and reports by record (seq and request id) anything edited, deleted, inserted or reordered; then
whether the export covers its whole time window against the chain (anchor before the window, the record
after it, the chain head and the latest signed checkpoint, which exposes a truncated tail).
Exit status: 0 verified, 1 problems found, 2 the export could not be read.

The hash rules (also in ConvoSuite's docs/audit.md):
  canonical(x)   = UTF-8 JSON of x, keys sorted, separators "," and ":", non-ASCII characters kept
  text(x)        = x as UTF-8 if x is a string, else canonical(x)
  commitment(f)  = SHA-256(salt bytes || SHA-256(text(value of f)))        for each sensitive field f
  record hash    = SHA-256(canonical({"chain", "seq", "prev_hash", "fields", "commitments"}))
An export shows a sensitive field as {"value": ...} (full text), {"sha256": ...} (hashed) or
{"commitment": ...} (removed); each yields the same commitment, so every redaction policy verifies.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import sys
import time
import zipfile
from collections.abc import Iterator
from hashlib import sha256
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS_HASH = "0" * 64
SUPPORTED_FORMAT = "convosuite.model-call-export/1"


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> bytes:
    return _CANONICAL.encode(value).encode("utf-8")


def canonical_text(value: Any) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else canonical_json(value)


def field_commitment(shown: dict[str, Any], salt: bytes | None) -> str:
    if "value" in shown:
        if salt is None:
            raise ValueError("a sensitive field is shown without the record's salt")
        return sha256(salt + sha256(canonical_text(shown["value"])).digest()).hexdigest()
    if "sha256" in shown:
        if salt is None:
            raise ValueError("a sensitive field is shown without the record's salt")
        return sha256(salt + bytes.fromhex(shown["sha256"])).hexdigest()
    if "commitment" in shown:
        return str(shown["commitment"])
    raise ValueError("a sensitive field has neither value, sha256 nor commitment")


def record_hash(chain: str, record: dict[str, Any]) -> str:
    salt_hex = record.get("salt")
    salt = bytes.fromhex(salt_hex) if salt_hex is not None else None
    commitments = {name: field_commitment(shown, salt) for name, shown in record.get("sensitive", {}).items()}
    payload = {
        "chain": chain,
        "seq": record["seq"],
        "prev_hash": record["prev_hash"],
        "fields": record["fields"],
        "commitments": commitments,
    }
    return sha256(canonical_json(payload)).hexdigest()


def key_id_for(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return key


def verify_signature(key: Ed25519PublicKey, message: bytes, signature_b64: str) -> bool:
    try:
        key.verify(base64.b64decode(signature_b64.strip()), message)
        return True
    except (InvalidSignature, ValueError):
        return False


class Export:
    """An export as a zip file or as a directory holding the three files."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.zip = zipfile.ZipFile(path) if os.path.isfile(path) else None

    def read(self, name: str) -> bytes:
        if self.zip is not None:
            return self.zip.read(name)
        with open(os.path.join(self.path, name), "rb") as handle:
            return handle.read()

    def open_lines(self, name: str) -> io.BufferedIOBase:
        if self.zip is not None:
            # A big read buffer makes line iteration over the compressed member several times faster;
            # ZipExtFile is a readable binary stream, which typeshed does not express for BufferedReader.
            return io.BufferedReader(self.zip.open(name), buffer_size=1 << 20)  # type: ignore[type-var]
        return open(os.path.join(self.path, name), "rb")  # noqa: SIM115 - closed by the caller


class Report:
    def __init__(self) -> None:
        self.problems: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def problem(self, kind: str, message: str, seq: Any = None, request_id: Any = None) -> None:
        self.problems.append({"kind": kind, "seq": seq, "request_id": request_id, "message": message})


def describe(record: dict[str, Any]) -> str:
    fields = record.get("fields", {})
    ident = fields.get("request_id") or fields.get("id")
    return f"seq {record.get('seq')}" + (f" (request_id {ident})" if ident else "")


def ident_of(record: dict[str, Any]) -> Any:
    fields = record.get("fields", {})
    return fields.get("request_id") or fields.get("id")


def read_records(export: Export, name: str, digest: Any, report: Report) -> Iterator[dict[str, Any]]:
    with export.open_lines(name) as handle:
        for line_number, raw in enumerate(handle, start=1):
            digest.update(raw)
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                record["_line"] = line_number
                int(record["seq"])
                record["fields"], record["prev_hash"], record["hash"]  # noqa: B018 - presence check
            except (ValueError, KeyError, TypeError):
                report.problem("unreadable", f"line {line_number} is not a valid record")
                continue
            yield record


def check_records(manifest: dict[str, Any], export: Export, report: Report) -> dict[str, Any]:
    chain = manifest["chain"]
    timestamp_field = manifest.get("timestamp_field", "created_at")
    window_start, window_end = manifest["window"]["start"], manifest["window"]["end"]
    anchor = manifest["anchor"] or {}
    checkpoint_seq = None
    checkpoint_hash = None
    if manifest.get("_checkpoint_statement"):
        checkpoint_seq = manifest["_checkpoint_statement"]["seq"]
        checkpoint_hash = manifest["_checkpoint_statement"]["head_hash"]

    digest = hashlib.sha256()
    prev = {"seq": anchor.get("seq", 0), "hash": anchor.get("hash")}
    pending_missing: dict[int, tuple[int, int]] = {}  # missing seq -> (seq before gap, seq after gap)
    stats: dict[str, Any] = {"count": 0, "accepted": 0, "first": None, "last": None, "outside_window": 0}
    max_seq = prev["seq"]
    window: list[dict[str, Any]] = []
    stream = read_records(export, manifest.get("records_file", "records.jsonl"), digest, report)

    def fill(n: int) -> None:
        while len(window) < n:
            item = next(stream, None)
            if item is None:
                return
            window.append(item)

    while True:
        fill(3)
        if not window:
            break
        record = window.pop(0)
        following = window[0] if window else None
        after_following = window[1] if len(window) > 1 else None
        seq = int(record["seq"])
        stats["count"] += 1
        if stats["first"] is None:
            stats["first"] = {"seq": seq, "hash": record["hash"]}

        try:
            recomputed = record_hash(chain, record)
        except (ValueError, KeyError, TypeError) as failure:
            report.problem("unreadable", f"record {describe(record)}: {failure}", seq, ident_of(record))
            continue
        if recomputed != record["hash"]:
            report.problem(
                "edited",
                f"record {describe(record)} was edited: its content does not match its hash",
                seq,
                ident_of(record),
            )
        stamp = record["fields"].get(timestamp_field)
        if isinstance(stamp, str) and not (window_start <= stamp < window_end):
            stats["outside_window"] += 1
            report.problem(
                "outside_window",
                f"record {describe(record)} is timestamped {stamp}, outside the export window",
                seq,
                ident_of(record),
            )
        if checkpoint_seq is not None and seq == checkpoint_seq and record["hash"] != checkpoint_hash:
            report.problem(
                "checkpoint_mismatch",
                f"record {describe(record)} differs from the hash the signed checkpoint holds for seq {seq}",
                seq,
                ident_of(record),
            )

        if seq <= max_seq:
            if seq in pending_missing:
                del pending_missing[seq]
                report.problem(
                    "reordered",
                    f"record {describe(record)} is out of order: it appears after seq {max_seq}",
                    seq,
                    ident_of(record),
                )
            else:
                report.problem(
                    "inserted",
                    f"record {describe(record)} (line {record['_line']}) repeats seq {seq}: inserted",
                    seq,
                    ident_of(record),
                )
            continue
        links_to_prev = record["prev_hash"] == prev["hash"] and seq == prev["seq"] + 1
        following_is_successor = (
            following is not None
            and following["prev_hash"] == prev["hash"]
            and int(following["seq"]) == prev["seq"] + 1
        )
        if following_is_successor:
            # Two records claim to follow `prev`: the genuine one is the one the chain continues from.
            if after_following is not None:
                record_continues = after_following["prev_hash"] == record["hash"]
            else:
                record_continues = (manifest.get("last") or {}).get("hash") == record["hash"]
            if not record_continues:
                report.problem(
                    "inserted",
                    f"record {describe(record)} (line {record['_line']}) was inserted: the chain continues "
                    f"from seq {prev['seq']} to the next record without it",
                    seq,
                    ident_of(record),
                )
                continue
        if seq > prev["seq"] + 1:
            for missing in range(prev["seq"] + 1, seq):
                pending_missing[missing] = (prev["seq"], seq)
        elif not links_to_prev and prev["hash"] is not None:
            report.problem(
                "edited",
                f"record seq {prev['seq']} was altered: record {describe(record)} links to a different hash",
                prev["seq"],
            )
        prev = {"seq": seq, "hash": record["hash"]}
        max_seq = seq
        stats["accepted"] += 1
        stats["last"] = {"seq": seq, "hash": record["hash"]}

    for missing, (before, after) in sorted(pending_missing.items()):
        report.problem(
            "deleted",
            f"record seq {missing} is missing (deleted) between seq {before} and seq {after}",
            missing,
        )
    stats["records_sha256"] = digest.hexdigest()
    return stats


def check_manifest_claims(manifest: dict[str, Any], stats: dict[str, Any], report: Report) -> bool:
    """Compare what was read with what the signed manifest claims; returns whether the window is complete."""
    complete = True
    if stats["records_sha256"] != manifest.get("records_sha256"):
        report.problem("file_changed", "records.jsonl is not the file the manifest was signed for")
    if stats["accepted"] != manifest["count"]:
        report.problem(
            "count_mismatch",
            f"the manifest lists {manifest['count']} records, the chain here has {stats['accepted']}",
        )
    claimed_last = manifest.get("last")
    last = stats["last"]
    if claimed_last and (last is None or last["seq"] < claimed_last["seq"]):
        start = (last["seq"] + 1) if last else (manifest.get("first") or {}).get("seq")
        report.problem(
            "truncated",
            f"records seq {start}..{claimed_last['seq']} are missing at the end (truncated): the manifest's "
            f"last record is seq {claimed_last['seq']}",
            claimed_last["seq"],
        )
    elif (
        claimed_last and last and (last["seq"] != claimed_last["seq"] or last["hash"] != claimed_last["hash"])
    ):
        report.problem(
            "inserted" if last["seq"] > claimed_last["seq"] else "edited",
            f"the last record is seq {last['seq']}, the manifest says seq {claimed_last['seq']} "
            f"with hash {claimed_last['hash'][:16]}…",
            last["seq"],
        )
    anchor = manifest.get("anchor") or {}
    if anchor.get("source") == "missing":
        complete = False
        report.notes.append("the record before the window is gone and no retention checkpoint covers it")
    after = manifest.get("after_window")
    head = manifest.get("chain_head") or {}
    last_seq = claimed_last["seq"] if claimed_last else anchor.get("seq", 0)
    last_hash = claimed_last["hash"] if claimed_last else anchor.get("hash")
    if after is not None:
        if after["seq"] != last_seq + 1 or after["prev_hash"] != last_hash:
            complete = False
            report.problem(
                "window_incomplete",
                f"the record after the window (seq {after['seq']}) does not follow the last exported record",
            )
        if after["timestamp"] < manifest["window"]["end"]:
            complete = False
            report.problem(
                "window_incomplete",
                f"record seq {after['seq']} falls inside the window but is not exported",
                after["seq"],
            )
    elif head.get("seq") != last_seq or head.get("hash") != last_hash:
        complete = False
        report.problem("window_incomplete", "the export does not reach the chain head it claims")
    if anchor.get("timestamp") and anchor["timestamp"] >= manifest["window"]["start"]:
        complete = False
        if anchor.get("source") == "retention-checkpoint":
            message = (
                f"records up to seq {anchor['seq']} (stamped up to {anchor['timestamp']}) were deleted by the "
                "retention policy (signed retention checkpoint); the window starts before that"
            )
        else:
            message = f"record seq {anchor['seq']} falls inside the window but is not exported"
        report.problem("window_incomplete", message, anchor["seq"])
    statement = manifest.get("_checkpoint_statement")
    if statement is not None and statement["seq"] > head.get("seq", 0):
        complete = False
        report.problem(
            "truncated",
            f"the chain was truncated: a checkpoint signed {statement['signed_at']} covers seq {statement['seq']} "
            f"(hash {statement['head_hash'][:16]}…), but the chain ends at seq {head.get('seq')}; records seq "
            f"{head.get('seq', 0) + 1}..{statement['seq']} were removed",
            statement["seq"],
        )
    if (
        statement is not None
        and statement["seq"] == head.get("seq")
        and statement["head_hash"] != head.get("hash")
    ):
        complete = False
        report.problem(
            "truncated", f"the chain head differs from the signed checkpoint at seq {statement['seq']}"
        )
    return complete and not report.problems


def verify(path: str, public_key_pem: bytes | None) -> tuple[Report, dict[str, Any], bool]:
    report = Report()
    export = Export(path)
    manifest_bytes = export.read("manifest.json")
    signature = export.read("manifest.sig").decode("ascii")
    manifest = json.loads(manifest_bytes)
    if manifest.get("format") != SUPPORTED_FORMAT:
        raise ValueError(f"unsupported export format {manifest.get('format')!r}")
    if public_key_pem is None:
        public_key_pem = manifest["public_key_pem"].encode("ascii")
        report.notes.append(
            "no --public-key given: used the key embedded in the manifest; this proves integrity only if its "
            f"key id {manifest.get('key_id')} matches the key published at /.well-known/convosuite-audit-key"
        )
    key = load_public_key(public_key_pem)
    signature_ok = verify_signature(key, manifest_bytes, signature)
    if not signature_ok:
        report.problem("bad_signature", "the manifest's signature does not verify with this public key")
    if manifest.get("key_id") != key_id_for(key):
        report.notes.append(
            f"the manifest names key id {manifest.get('key_id')}, this key is {key_id_for(key)}"
        )

    checkpoint = manifest.get("checkpoint")
    if checkpoint:
        statement_bytes = checkpoint["statement"].encode("utf-8")
        if not verify_signature(key, statement_bytes, checkpoint["signature"]):
            report.problem(
                "bad_signature", "the chain checkpoint's signature does not verify with this public key"
            )
        else:
            statement = json.loads(statement_bytes)
            if (
                statement.get("tenant") != manifest["tenant"]["slug"]
                or statement.get("chain") != manifest["chain"]
            ):
                report.problem("bad_signature", "the checkpoint belongs to another tenant or chain")
            else:
                manifest["_checkpoint_statement"] = statement
    retention = (manifest.get("anchor") or {}).get("checkpoint")
    if retention and not verify_signature(
        key, retention["statement"].encode("utf-8"), retention["signature"]
    ):
        report.problem("bad_signature", "the retention checkpoint anchoring the window does not verify")

    stats = check_records(manifest, export, report)
    complete = check_manifest_claims(manifest, stats, report)
    return report, {**stats, "signature_ok": signature_ok, "manifest": manifest}, complete


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a ConvoSuite signed model-call export.")
    parser.add_argument(
        "export", help="the export .zip (or a directory with records.jsonl, manifest.json, manifest.sig)"
    )
    parser.add_argument(
        "--public-key", help="PEM file of the platform key (from /.well-known/convosuite-audit-key)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    pem = None
    if args.public_key:
        with open(args.public_key, "rb") as handle:
            pem = handle.read()
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        report, stats, complete = verify(args.export, pem)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as failure:
        print(f"cannot read the export: {failure}", file=sys.stderr)
        return 2
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    manifest = stats["manifest"]
    ok = not report.problems
    if args.json:
        print(
            json.dumps(
                {
                    "verified": ok,
                    "window_complete": complete,
                    "records": stats["count"],
                    "seconds": round(elapsed, 3),
                    "cpu_seconds": round(cpu, 3),
                    "problems": report.problems,
                    "notes": report.notes,
                },
                indent=2,
            )
        )
        return 0 if ok else 1
    print(f"Export of {manifest['tenant']['slug']} ({manifest['tenant']['name']}), chain {manifest['chain']}")
    print(f"  window           {manifest['window']['start']} .. {manifest['window']['end']}")
    print(f"  redaction        {manifest['redaction_policy']}")
    print(f"  exported         {manifest['exported_at']} by {manifest['exported_by']}")
    print(
        f"  signature        {'valid' if stats['signature_ok'] else 'INVALID'} (key id {manifest['key_id']})"
    )
    print(f"  records checked  {stats['count']} in {elapsed:.2f} s")
    print(f"  window complete  {'yes' if complete else 'NO'}")
    for note in report.notes:
        print(f"  note: {note}")
    if ok:
        print("VERIFIED: every record is intact and linked, the window is complete.")
        return 0
    print(f"FAILED: {len(report.problems)} problem(s)")
    for problem in report.problems:
        print(f"  - [{problem['kind']}] {problem['message']}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
