"""Hash chains of model calls and audit events, the signed export, and the standalone verifier's
detection of tampering (edited, deleted, inserted, reordered, truncated records)."""

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.actions import do_record_audit_event, do_sign_chain_heads
from audit.chain import find_chain_breaks, read_head
from audit.models import AuditEvent
from devtools.llm_simulator.testing import SimulatorControl
from evidence.signing import platform_key
from gateway.exports import write_model_call_export
from gateway.models import ModelCall
from tenants.models import Tenant
from tests.audit.helpers import load_verifier, make_calls, read_export, write_export
from tests.conftest import make_member

pytestmark = pytest.mark.django_db

verifier = load_verifier()


def export_window(tenant: Tenant, tmp_path: Path, redaction: str = "full", name: str = "export.zip") -> Path:
    out = tmp_path / name
    with tenant_context(tenant):
        write_model_call_export(
            out_path=str(out),
            window_start=timezone.now() - dt.timedelta(minutes=5),
            window_end=timezone.now() + dt.timedelta(minutes=5),
            redaction=redaction,
            exported_by="test",
        )
    return out


def verify(path: Path) -> tuple[Any, bool]:
    key_file = path.parent / "key.pem"
    key_file.write_text(platform_key().public_key_pem)
    report, _stats, complete = verifier.verify(str(path), key_file.read_bytes())
    return report, complete


def kinds_and_seqs(report: Any) -> set[tuple[str, Any]]:
    return {(problem["kind"], problem["seq"]) for problem in report.problems}


@pytest.fixture
def six_calls(chain_tenant: Tenant, sim: SimulatorControl) -> list[ModelCall]:
    sim.set_scenario(reply="The plan is classified.", served_model="sim-model-2026-01-01")
    alice = make_member(chain_tenant)
    with tenant_context(chain_tenant):
        # Only this test's calls fall in the export window: earlier tests' rows are older than 5 minutes?
        # Not necessarily, so windows are computed from this test's own records below.
        ids = make_calls(chain_tenant, 6, alice.pk)
        return list(ModelCall.objects.filter(request_id__in=ids).order_by("seq"))


def chain_stamp(call: ModelCall) -> dt.datetime:
    assert call.finished_at is not None, "only sealed calls are in the chain"
    return call.finished_at


def export_of(calls: list[ModelCall], tenant: Tenant, tmp_path: Path, redaction: str = "full") -> Path:
    out = tmp_path / f"export-{redaction}.zip"
    with tenant_context(tenant):
        write_model_call_export(
            out_path=str(out),
            # The chain timestamp of a model call is the moment it was sealed (finished_at).
            window_start=chain_stamp(calls[0]),
            window_end=chain_stamp(calls[-1]) + dt.timedelta(microseconds=1),
            redaction=redaction,
            exported_by="test",
        )
    return out


def test_model_calls_form_one_gapless_chain_with_stored_hashes_that_recompute(
    chain_tenant: Tenant, six_calls: list[ModelCall]
) -> None:
    seqs = [call.seq for call in six_calls]
    assert seqs[0] is not None and seqs == list(range(seqs[0], seqs[0] + 6))
    for previous, current in zip(six_calls, six_calls[1:], strict=False):
        assert current.prev_hash == previous.record_hash
    with tenant_context(chain_tenant):
        assert list(find_chain_breaks(ModelCall)) == []


def test_audit_events_form_their_own_chain(chain_tenant: Tenant) -> None:
    with tenant_context(chain_tenant):
        before = read_head(AuditEvent)
        first = do_record_audit_event(kind="test.one", actor_label="tester", details={"n": 1})
        second = do_record_audit_event(kind="test.two", actor_label="tester", details={"n": 2})
        assert (first.seq, second.seq) == (before.seq + 1, before.seq + 2)
        assert first.prev_hash == before.record_hash and second.prev_hash == first.record_hash
        assert list(find_chain_breaks(AuditEvent)) == []


@pytest.mark.parametrize(
    "statement", ["UPDATE {table} SET seq = seq", "DELETE FROM {table}", "TRUNCATE {table}"]
)
@pytest.mark.parametrize("table", ["gateway_modelcall", "audit_auditevent", "audit_chaincheckpoint"])
def test_database_rejects_changing_chain_rows(
    chain_tenant: Tenant, six_calls: list[ModelCall], table: str, statement: str
) -> None:
    with tenant_context(chain_tenant):
        do_record_audit_event(kind="test.guard", actor_label="tester")
        do_sign_chain_heads()
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                # Fire the test transaction's deferred FK checks now, or TRUNCATE refuses for that reason.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(statement.format(table=table))


@pytest.mark.parametrize("redaction", ["full", "hashed", "removed"])
def test_export_verifies_under_every_redaction_policy(
    chain_tenant: Tenant, six_calls: list[ModelCall], tmp_path: Path, redaction: str
) -> None:
    path = export_of(six_calls, chain_tenant, tmp_path, redaction)
    lines, manifest, _ = read_export(path)
    assert [line["seq"] for line in lines] == [call.seq for call in six_calls]
    first = lines[0]
    assert first["fields"]["model_served"] == "sim-model-2026-01-01"
    assert first["fields"]["request_id"] == str(six_calls[0].request_id)
    text = "The plan is classified."
    if redaction == "full":
        assert first["sensitive"]["response"] == {"value": text}
    elif redaction == "hashed":
        import hashlib

        assert first["sensitive"]["response"] == {"sha256": hashlib.sha256(text.encode()).hexdigest()}
        assert text not in path.read_bytes().decode("latin-1")
    else:
        assert set(first["sensitive"]["response"]) == {"commitment"} and "salt" not in first
    report, complete = verify(path)
    assert report.problems == []
    assert complete


def test_verifier_names_an_edited_record(
    chain_tenant: Tenant, six_calls: list[ModelCall], tmp_path: Path
) -> None:
    lines, manifest, signature = read_export(export_of(six_calls, chain_tenant, tmp_path))
    lines[2]["fields"]["tokens_out"] += 1000
    report, _ = verify(write_export(tmp_path / "t.zip", lines, manifest, signature))
    assert ("edited", six_calls[2].seq) in kinds_and_seqs(report)
    assert str(six_calls[2].request_id) in " ".join(problem["message"] for problem in report.problems)


def test_verifier_names_an_edited_response_even_with_its_hash_recomputed(
    chain_tenant: Tenant, six_calls: list[ModelCall], tmp_path: Path
) -> None:
    lines, manifest, signature = read_export(export_of(six_calls, chain_tenant, tmp_path))
    lines[3]["sensitive"]["response"] = {"value": "Nothing to see."}
    lines[3]["hash"] = verifier.record_hash("model_calls", lines[3])
    report, _ = verify(write_export(tmp_path / "t.zip", lines, manifest, signature))
    assert ("edited", six_calls[3].seq) in kinds_and_seqs(report)


def test_verifier_names_a_deleted_record(
    chain_tenant: Tenant, six_calls: list[ModelCall], tmp_path: Path
) -> None:
    lines, manifest, signature = read_export(export_of(six_calls, chain_tenant, tmp_path))
    del lines[2]
    report, complete = verify(write_export(tmp_path / "t.zip", lines, manifest, signature))
    assert ("deleted", six_calls[2].seq) in kinds_and_seqs(report)
    assert not complete


def test_verifier_names_an_inserted_record(
    chain_tenant: Tenant, six_calls: list[ModelCall], tmp_path: Path
) -> None:
    lines, manifest, signature = read_export(export_of(six_calls, chain_tenant, tmp_path))
    forged = {**lines[2], "fields": {**lines[2]["fields"], "request_id": str(uuid.uuid4())}}
    forged["hash"] = verifier.record_hash("model_calls", forged)  # a careful forger recomputes the hash
    lines.insert(2, forged)
    report, _ = verify(write_export(tmp_path / "t.zip", lines, manifest, signature))
    inserted = [problem for problem in report.problems if problem["kind"] == "inserted"]
    assert [problem["request_id"] for problem in inserted] == [forged["fields"]["request_id"]]


def test_verifier_names_swapped_records(
    chain_tenant: Tenant, six_calls: list[ModelCall], tmp_path: Path
) -> None:
    lines, manifest, signature = read_export(export_of(six_calls, chain_tenant, tmp_path))
    lines[2], lines[3] = lines[3], lines[2]
    report, _ = verify(write_export(tmp_path / "t.zip", lines, manifest, signature))
    assert ("reordered", six_calls[2].seq) in kinds_and_seqs(report)
    assert not any(problem["kind"] in ("deleted", "inserted") for problem in report.problems)


def test_verifier_reports_a_truncated_tail_of_the_file(
    chain_tenant: Tenant, six_calls: list[ModelCall], tmp_path: Path
) -> None:
    lines, manifest, signature = read_export(export_of(six_calls, chain_tenant, tmp_path))
    report, complete = verify(write_export(tmp_path / "t.zip", lines[:-2], manifest, signature))
    truncated = [problem for problem in report.problems if problem["kind"] == "truncated"]
    assert truncated and f"seq {six_calls[-2].seq}..{six_calls[-1].seq}" in truncated[0]["message"]
    assert not complete


def test_verifier_rejects_an_edited_manifest(
    chain_tenant: Tenant, six_calls: list[ModelCall], tmp_path: Path
) -> None:
    lines, manifest, signature = read_export(export_of(six_calls, chain_tenant, tmp_path))
    forged_manifest = manifest.replace(b'"redaction_policy": "full"', b'"redaction_policy": "hashed"')
    report, _ = verify(write_export(tmp_path / "t.zip", lines, forged_manifest, signature))
    assert "bad_signature" in {problem["kind"] for problem in report.problems}


@pytest.mark.usefixtures("committed_db")
def test_truncating_the_chain_tail_in_the_database_is_caught_by_the_signed_checkpoint(
    sim: SimulatorControl, tmp_path: Path
) -> None:
    from lifecycle.actions import do_create_tenant

    tenant = do_create_tenant(slug=f"trunc_{uuid.uuid4().hex[:8]}", name="Truncated", domains=[])
    with tenant_context(tenant):
        make_calls(tenant, 5)
        do_sign_chain_heads()
        # An attacker with the database superuser disables the guard and cuts the last two rows.
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")  # superuser only: triggers off
            cursor.execute("DELETE FROM gateway_modelcall WHERE seq > 3")
            cursor.execute("SET session_replication_role = DEFAULT")
        assert list(find_chain_breaks(ModelCall)) == []  # the rest of the chain is still consistent
        path = export_window(tenant, tmp_path)
        report, complete = verify(path)
        truncated = [problem for problem in report.problems if problem["kind"] == "truncated"]
        assert truncated and "records seq 4..5 were removed" in truncated[0]["message"]
        assert not complete


def test_json_numbers_survive_the_database_round_trip_and_still_verify(
    chain_tenant: Tenant, tmp_path: Path
) -> None:
    from audit.chain import append_to_chain

    with tenant_context(chain_tenant):
        call = append_to_chain(
            ModelCall,
            request_id=uuid.uuid4(),
            model_requested="sim-model",
            messages=[{"role": "user", "content": "numbers"}],
            tool_calls=[{"name": "f", "arguments": {"big": 1e16, "small": 1e-05, "plain": 0.1, "n": 3}}],
            status="ok",
            cost="0.123456789",  # more places than the column keeps: stored and hashed rounded
        )
        assert list(find_chain_breaks(ModelCall, after=read_head_before(call))) == []
    path = export_of([call], chain_tenant, tmp_path)
    report, complete = verify(path)
    assert report.problems == [] and complete


def read_head_before(call: ModelCall) -> Any:
    from audit.chain import ChainHead

    assert call.seq is not None and call.prev_hash is not None, "a sealed call"
    return ChainHead(seq=call.seq - 1, record_hash=call.prev_hash, timestamp=None)
