"""Writing a signed export of the current tenant's model calls for a time window (docs/audit.md).

The file is a zip with three members:
  records.jsonl   one model call per line, in chain order, sensitive fields per the redaction policy
  manifest.json   tenant, window, count, first/last record, the chain anchor before the window, the record
                  after it, the chain head, the latest signed checkpoint, the redaction policy, export time
                  and exporting user, and the SHA-256 of records.jsonl
  manifest.sig    base64 Ed25519 signature over the exact bytes of manifest.json
Rows are streamed from a server-side cursor and written as they come: memory stays flat for any window.

Only sealed model calls are evidence (seq NOT NULL): a call still in flight has no place in the chain yet
and appears in an export once it is final, at its chain timestamp (finished_at, MODEL_CALLS.timestamp_field).
"""

import datetime as dt
import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from accounts.models import User
from audit.actions import latest_checkpoint
from audit.chain import (
    GENESIS_HASH,
    column_plan,
    commitment,
    format_timestamp,
    lock_chain,
    read_head,
    text_sha256,
)
from audit.models import ChainCheckpoint, RedactionPolicy
from evidence.signing import platform_key
from gateway import screening
from gateway.models import ModelCall
from gateway.specs import MODEL_CALLS
from keys.crypto import bulk_decryptor
from keys.fields import EncryptedJSONField, EncryptedTextField
from tenants.context import current_schema
from tenants.models import Tenant

EXPORT_FORMAT = "convosuite.model-call-export/1"
TIMESTAMP = MODEL_CALLS.timestamp_field
PROGRESS_EVERY = 5000
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportResult:
    path: str
    count: int
    first_hash: str | None
    last_hash: str | None
    manifest: dict[str, Any]


@dataclass(frozen=True)
class _Range:
    first_seq: int  # first seq in the window (or where it would be)
    last_seq: int  # first_seq - 1 when the window is empty
    effective_end: dt.datetime
    head_seq: int
    head_hash: str


def _window_range(window_start: dt.datetime, window_end: dt.datetime) -> _Range:
    """Fix the window's seq range while holding the chain lock: no append is in flight, and every later
    append is stamped after this instant, so the range cannot grow behind the export's back."""
    with transaction.atomic():
        lock_chain(ModelCall)
        now = timezone.now()
        head = read_head(ModelCall)
        effective_end = min(window_end, now)
        sealed = ModelCall.objects.filter(seq__isnull=False)
        in_window = sealed.filter(**{f"{TIMESTAMP}__gte": window_start, f"{TIMESTAMP}__lt": effective_end})
        first = in_window.order_by("seq").values_list("seq", flat=True).first()
        if first is None:
            after = (
                sealed.filter(**{f"{TIMESTAMP}__gte": window_start})
                .order_by("seq")
                .values_list("seq", flat=True)
            ).first()
            first = after if after is not None else head.seq + 1
            return _Range(first, first - 1, effective_end, head.seq, head.record_hash)
        last = in_window.order_by("-seq").values_list("seq", flat=True).first()
        assert last is not None  # noqa: S101 - the window has a first row, so it has a last one
        return _Range(first, last, effective_end, head.seq, head.record_hash)


def _anchor(first_seq: int) -> dict[str, Any]:
    """The chain link just before the window: the previous record, the genesis, or a retention checkpoint."""
    if first_seq == 1:
        return {"seq": 0, "hash": GENESIS_HASH, "timestamp": None, "source": "genesis"}
    previous = ModelCall.objects.filter(seq=first_seq - 1).values_list("record_hash", TIMESTAMP).first()
    if previous is not None:
        return {
            "seq": first_seq - 1,
            "hash": previous[0],
            "timestamp": format_timestamp(previous[1]),
            "source": "record",
        }
    retention = ChainCheckpoint.objects.filter(
        chain=MODEL_CALLS.name, seq=first_seq - 1, reason=ChainCheckpoint.Reason.RETENTION
    ).first()
    if retention is not None:
        return {
            "seq": retention.seq,
            "hash": retention.head_hash,
            "timestamp": format_timestamp(retention.head_timestamp) if retention.head_timestamp else None,
            "source": "retention-checkpoint",
            "checkpoint": _checkpoint_json(retention),
        }
    return {"seq": first_seq - 1, "hash": None, "timestamp": None, "source": "missing"}


def _checkpoint_json(checkpoint: ChainCheckpoint | None) -> dict[str, Any] | None:
    if checkpoint is None:
        return None
    return {"statement": checkpoint.statement, "signature": checkpoint.signature, "key_id": checkpoint.key_id}


def _user_labels() -> dict[int, dict[str, str]]:
    return {
        user_id: {"email": email, "subject": subject, "issuer": issuer, "name": name}
        for user_id, email, subject, issuer, name in User.objects.values_list(
            "id", "email", "subject", "issuer", "display_name"
        )
    }


_DUMP = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class _Line:
    text: str
    seq: int
    record_hash: str


def _record_line_builder(redaction: str) -> Callable[[tuple[Any, ...]], _Line]:
    """Rows come from _select_sql: JSON columns as their JSON text, so a full-text export copies them
    without a decode/encode round trip."""
    plan = column_plan(ModelCall)
    json_columns = _json_columns()
    decoders = _decoders(current_schema())
    users = _user_labels()

    def build(row: tuple[Any, ...]) -> _Line:
        seq, prev_hash, record_hash, salt, *values = row
        fields: dict[str, Any] = {}
        shown: list[str] = []
        for column, value in zip(plan, values, strict=True):
            decode = decoders.get(column.attname)
            if decode is not None:
                value = decode(value)
            is_json = column.attname in json_columns
            if not column.sensitive:
                fields[column.attname] = (
                    json.loads(value) if is_json and value is not None else column.convert(value)
                )
                continue
            if redaction == RedactionPolicy.FULL:
                raw = value if is_json and value is not None else _DUMP(value)
                shown.append(f'"{column.name}":{{"value":{raw}}}')
                continue
            digest = text_sha256(json.loads(value) if is_json and value is not None else value)
            if redaction == RedactionPolicy.HASHED:
                shown.append(f'"{column.name}":{{"sha256":"{digest}"}}')
            else:
                shown.append(f'"{column.name}":{{"commitment":"{commitment(salt, digest)}"}}')
        # Without the salt, a removed text's commitment cannot be confirmed by guessing the text.
        salt_part = "" if redaction == RedactionPolicy.REMOVED else f',"salt":"{salt}"'
        user = users.get(fields.get("user_id"))  # type: ignore[arg-type]
        user_part = f',"user":{_DUMP(user)}' if user else ""  # for readers; not covered by the hash
        text = (
            f'{{"seq":{seq},"prev_hash":"{prev_hash}","hash":"{record_hash}"{salt_part},'
            f'"fields":{_DUMP(fields)},"sensitive":{{{",".join(shown)}}}{user_part}}}\n'
        )
        return _Line(text=text, seq=seq, record_hash=record_hash)

    return build


def _json_columns() -> set[str]:
    """Columns whose value (after decryption) is JSON text."""
    return {
        field.attname
        for field in ModelCall._meta.concrete_fields
        if isinstance(field, models.JSONField | EncryptedJSONField)
    }


def _decoders(schema: str) -> dict[str, Callable[[Any], Any]]:
    """Per encrypted column: the stored token to its plaintext (JSON text for an encrypted JSON column),
    so the export shows and commits to exactly what the chain hashed."""

    decrypt = bulk_decryptor(schema)

    def text(value: Any) -> Any:
        return decrypt(value) if value else value

    def json_text(default: str) -> Callable[[Any], Any]:
        return lambda value: decrypt(value) if value else default

    decoders: dict[str, Callable[[Any], Any]] = {}
    for field in ModelCall._meta.concrete_fields:
        if isinstance(field, EncryptedJSONField):
            decoders[field.attname] = json_text(json.dumps(field.get_default()))
        elif isinstance(field, EncryptedTextField):
            decoders[field.attname] = text
    return decoders


def _select_sql() -> str:
    json_columns = _json_columns()
    quote = connection.ops.quote_name
    selected = [quote(name) for name in ("seq", "prev_hash", "record_hash", "chain_salt")]
    for column in column_plan(ModelCall):
        name = quote(column.attname)
        selected.append(f"{name}::text" if column.attname in json_columns else name)
    table = quote(ModelCall._meta.db_table)
    return f"SELECT {', '.join(selected)} FROM {table} WHERE seq BETWEEN %s AND %s ORDER BY seq"  # noqa: S608


def _write_screened(
    records: Any, digest: Any, buffer: list[str], tenant_schema: str
) -> screening.Screening | None:
    """Write the buffered lines unless they carry another tenant's marker (then return the screening)."""
    text = "".join(buffer)
    buffer.clear()
    screened = screening.screen(tenant_schema, [text])
    if screened.foreign:
        return screened
    chunk = text.encode("utf-8")
    records.write(chunk)
    digest.update(chunk)
    return None


def write_model_call_export(
    *,
    out_path: str,
    window_start: dt.datetime,
    window_end: dt.datetime,
    redaction: str,
    exported_by: str,
    progress: ProgressCallback | None = None,
) -> ExportResult:
    if redaction not in RedactionPolicy.values:
        raise ValueError(f"Unknown redaction policy {redaction!r}.")
    span = _window_range(window_start, window_end)
    total = span.last_seq - span.first_seq + 1
    if progress:
        progress(0, total)
    anchor = _anchor(span.first_seq)
    after = ModelCall.objects.filter(seq=span.last_seq + 1).values_list("seq", TIMESTAMP, "prev_hash").first()
    build = _record_line_builder(redaction)

    records_digest = hashlib.sha256()
    count, first_hash, last_hash, first_seq_seen = 0, None, None, None
    # Another tenant's canary marker in what is about to leave: stop writing (reported after the transaction,
    # so the incident is not rolled back with it).
    blocked: screening.Screening | None = None
    tenant_schema = current_schema()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    partial = f"{out_path}.part"
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("records.jsonl", "w", force_zip64=True) as records, transaction.atomic():
            connection.ensure_connection()
            with connection.cursor():
                pass  # django-tenants sets the tenant's search_path when a cursor is created
            # A server-side cursor: rows stream in batches, memory stays flat for any window.
            with connection.connection.cursor(name=f"audit_export_{os.getpid()}") as cursor:  # type: ignore[union-attr]
                cursor.itersize = 5000
                cursor.execute(_select_sql(), [span.first_seq, span.last_seq])
                buffer: list[str] = []
                for row in cursor:
                    line = build(row)
                    buffer.append(line.text)
                    if first_hash is None:
                        first_hash, first_seq_seen = line.record_hash, line.seq
                    last_hash = line.record_hash
                    count += 1
                    if len(buffer) >= 2000:
                        blocked = _write_screened(records, records_digest, buffer, tenant_schema)
                        if blocked:
                            break
                    if progress and count % PROGRESS_EVERY == 0:
                        progress(count, total)
                if buffer and not blocked:
                    blocked = _write_screened(records, records_digest, buffer, tenant_schema)
        if blocked:
            archive.close()
            os.remove(partial)
            raise screening.block(
                screening.HitReport(
                    tenant_schema=tenant_schema,
                    where=screening.EXPORT,
                    findings=blocked.foreign,
                    source="model-call export",
                    details={"export_file": os.path.basename(out_path), "exported_by": exported_by},
                )
            )

        key = platform_key()
        tenant = Tenant.objects.get(schema_name=current_schema())
        manifest: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "tenant": {"slug": tenant.schema_name, "name": tenant.name},
            "chain": MODEL_CALLS.name,
            "window": {
                "start": format_timestamp(window_start),
                "end": format_timestamp(span.effective_end),
                "requested_end": format_timestamp(window_end),
            },
            "count": count,
            "first": {"seq": first_seq_seen, "hash": first_hash} if count else None,
            "last": {"seq": span.last_seq, "hash": last_hash} if count else None,
            "anchor": anchor,
            "after_window": (
                {"seq": after[0], "timestamp": format_timestamp(after[1]), "prev_hash": after[2]}
                if after
                else None
            ),
            "chain_head": {"seq": span.head_seq, "hash": span.head_hash},
            "checkpoint": _checkpoint_json(latest_checkpoint(MODEL_CALLS.name)),
            "timestamp_field": MODEL_CALLS.timestamp_field,
            "redaction_policy": redaction,
            "sensitive_fields": sorted(MODEL_CALLS.sensitive),
            "records_file": "records.jsonl",
            "records_sha256": records_digest.hexdigest(),
            "exported_at": format_timestamp(timezone.now()),
            "exported_by": exported_by,
            "key_id": key.key_id,
            "public_key_pem": key.public_key_pem,
            "verify_with": "python verify_export.py EXPORT.zip --public-key convosuite-audit-key.pem",
        }
        manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")
        archive.writestr("manifest.json", manifest_bytes)
        archive.writestr("manifest.sig", key.sign(manifest_bytes) + "\n")
    os.replace(partial, out_path)
    if progress:
        progress(count, total)
    return ExportResult(
        path=out_path, count=count, first_hash=first_hash, last_hash=last_hash, manifest=manifest
    )
