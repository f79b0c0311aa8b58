"""Model calls are sealed into the tenant's chain when they become final: a claimed 'started' row has NULL
chain columns and may be updated; once sealed it is evidence (no UPDATE, no DELETE), and only sealed rows
count for the chain head, the chain check and exports."""

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.chain import ChainHead, find_chain_breaks, hash_row, read_head, seal_in_chain
from devtools.llm_simulator.testing import SimulatorControl
from evidence.signing import platform_key
from gateway import policy as gateway_policy
from gateway.errors import ModelNotAllowed, ProviderUnavailable
from gateway.exports import write_model_call_export
from gateway.models import ModelCall
from gateway.protocol import GatewayCall, finish_abandoned_calls
from gateway.protocol import claim as _claim
from gateway.protocol import finish_record as _finish
from gateway.service import complete
from tenants.models import Tenant
from tests.audit.helpers import load_verifier, read_export

pytestmark = pytest.mark.django_db

verifier = load_verifier()
MESSAGES = [{"role": "user", "content": "what is the secret plan?"}]


def claim_started_call() -> ModelCall:
    call_id = _claim(uuid.uuid4(), None, "sim-model", MESSAGES, "test")
    assert call_id is not None
    return ModelCall.objects.get(id=call_id)


def run_sql(statement: str, params: list[uuid.UUID]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)


def assert_sealed_and_consistent(call: ModelCall) -> None:
    assert call.seq is not None and call.prev_hash and call.record_hash and call.chain_salt
    recomputed = hash_row(
        ModelCall,
        {field.attname: getattr(call, field.attname) for field in ModelCall._meta.concrete_fields},
        seq=call.seq,
        prev_hash=call.prev_hash,
        salt=call.chain_salt,
    )
    assert recomputed == call.record_hash
    after = ChainHead(seq=call.seq - 1, record_hash=call.prev_hash, timestamp=None)
    assert list(find_chain_breaks(ModelCall, after=after)) == []


def test_a_started_call_can_be_updated_until_it_is_sealed_and_never_after(chain_tenant: Tenant) -> None:
    with tenant_context(chain_tenant):
        call = claim_started_call()
        assert (call.seq, call.prev_hash, call.record_hash, call.chain_salt) == (None, None, None, None)
        # In flight: the gateway completes its record.
        run_sql("UPDATE gateway_modelcall SET tokens_in = 5 WHERE id = %s", [call.id])
        # An in-flight row is still no row to delete.
        with pytest.raises(DatabaseError, match="append-only"):
            run_sql("DELETE FROM gateway_modelcall WHERE id = %s", [call.id])

        with transaction.atomic():
            ModelCall.objects.filter(id=call.id).update(status=ModelCall.Status.OK, response="Classified.")
            assert seal_in_chain(ModelCall, call.id) is True
        call.refresh_from_db()
        assert_sealed_and_consistent(call)
        assert read_head(ModelCall).seq == call.seq

        for statement in (
            "UPDATE gateway_modelcall SET tokens_in = 6 WHERE id = %s",
            "UPDATE gateway_modelcall SET seq = NULL WHERE id = %s",
            "DELETE FROM gateway_modelcall WHERE id = %s",
        ):
            with pytest.raises(DatabaseError, match="append-only"):
                run_sql(statement, [call.id])
        call.refresh_from_db()
        assert call.tokens_in == 5 and call.response == "Classified."


def test_sealing_twice_is_a_no_op(chain_tenant: Tenant) -> None:
    with tenant_context(chain_tenant):
        call = claim_started_call()
        assert _finish(call.id, status=ModelCall.Status.OK, response="once") is True
        call.refresh_from_db()
        head = read_head(ModelCall)
        assert seal_in_chain(ModelCall, call.id) is False
        assert read_head(ModelCall) == head
        again = ModelCall.objects.get(id=call.id)
        assert (again.seq, again.record_hash, again.finished_at) == (
            call.seq,
            call.record_hash,
            call.finished_at,
        )


def test_in_flight_calls_are_outside_the_chain_head_and_its_check(chain_tenant: Tenant) -> None:
    with tenant_context(chain_tenant):
        complete_one = claim_started_call()
        _finish(complete_one.id, status=ModelCall.Status.OK, response="done")
        head = read_head(ModelCall)
        in_flight = claim_started_call()  # a newer row with seq NULL (sorted first by ORDER BY seq DESC)
        assert read_head(ModelCall) == head
        assert list(find_chain_breaks(ModelCall)) == []
        assert in_flight.seq is None


def test_a_completed_call_is_exactly_one_sealed_record_linked_to_the_previous_head(
    chain_tenant: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(reply="The plan is classified.", served_model="sim-model-2026-01-01")
    request_id = uuid.uuid4()
    with tenant_context(chain_tenant):
        before = read_head(ModelCall)
        answer = complete(
            tenant_schema=chain_tenant.schema_name,
            request_id=request_id,
            user_id=None,
            model="sim-model",
            messages=MESSAGES,
        )
        records = list(ModelCall.objects.filter(request_id=request_id))
        assert len(records) == 1
        call = records[0]
        assert (
            call.status == ModelCall.Status.OK and call.response == answer.text == "The plan is classified."
        )
        assert (call.seq, call.prev_hash) == (before.seq + 1, before.record_hash)
        assert call.finished_at is not None and call.finished_at >= call.created_at
        if before.timestamp:
            assert call.finished_at >= before.timestamp
        assert_sealed_and_consistent(call)

        # A second delivery gets the recorded answer: no second record, the chain does not move.
        again = complete(
            tenant_schema=chain_tenant.schema_name,
            request_id=request_id,
            user_id=None,
            model="sim-model",
            messages=MESSAGES,
        )
        assert again.text == answer.text
        assert ModelCall.objects.filter(request_id=request_id).count() == 1
        assert read_head(ModelCall).seq == call.seq


def test_a_refused_call_is_sealed_too(chain_tenant: Tenant) -> None:
    request_id = uuid.uuid4()
    with tenant_context(chain_tenant):
        with pytest.raises(ModelNotAllowed):
            complete(
                tenant_schema=chain_tenant.schema_name,
                request_id=request_id,
                user_id=None,
                model="no-such-model",
                messages=MESSAGES,
            )
        call = ModelCall.objects.get(request_id=request_id)
        assert call.status == ModelCall.Status.REFUSED
        assert_sealed_and_consistent(call)


def test_a_call_taken_over_after_its_owner_died_is_sealed_as_interrupted(chain_tenant: Tenant) -> None:
    request_id = uuid.uuid4()
    with tenant_context(chain_tenant):
        with override_settings(GATEWAY_LEASE_SECONDS=-1):  # the owner's lease is already over
            assert _claim(request_id, None, "sim-model", MESSAGES, "test") is not None
        with pytest.raises(ProviderUnavailable):
            complete(
                tenant_schema=chain_tenant.schema_name,
                request_id=request_id,
                user_id=None,
                model="sim-model",
                messages=MESSAGES,
            )
        call = ModelCall.objects.get(request_id=request_id)
        assert (call.status, call.error_code) == (ModelCall.Status.ERROR, "interrupted")
        assert_sealed_and_consistent(call)
        # The dead owner's late completion changes nothing: the sealed record stays as it is.
        assert _finish(call.id, status=ModelCall.Status.OK, response="late") is False
        assert ModelCall.objects.get(id=call.id).record_hash == call.record_hash


def test_an_in_flight_call_enters_the_export_once_it_is_final(chain_tenant: Tenant, tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_text(platform_key().public_key_pem)
    with tenant_context(chain_tenant):
        window_start = timezone.now()
        call = claim_started_call()

        def export(name: str) -> tuple[list[str], bool]:
            path = tmp_path / name
            write_model_call_export(
                out_path=str(path),
                window_start=window_start,
                window_end=timezone.now() + dt.timedelta(minutes=5),
                redaction="full",
                exported_by="test",
            )
            lines, _manifest, _signature = read_export(path)
            report, _stats, complete_window = verifier.verify(str(path), key_file.read_bytes())
            assert report.problems == []
            return [line["fields"]["request_id"] for line in lines], complete_window

        in_flight_ids, complete_window = export("in-flight.zip")
        assert str(call.request_id) not in in_flight_ids and complete_window

        _finish(call.id, status=ModelCall.Status.OK, response="now final")
        final_ids, complete_window = export("final.zip")
        assert str(call.request_id) in final_ids and complete_window


def test_calls_abandoned_long_after_their_lease_are_sealed_as_interrupted_by_the_sweep(
    chain_tenant: Tenant, sim: SimulatorControl, settings: Any
) -> None:

    settings.GATEWAY_ABANDONED_AFTER_SECONDS = 600
    schema = chain_tenant.schema_name
    with tenant_context(chain_tenant):
        claimed = [
            GatewayCall.begin(
                tenant_schema=schema,
                request_id=uuid.uuid4(),
                user_id=None,
                model="sim-model",
                messages=MESSAGES,
                max_tokens=16,
                source="test",
            )
            for _ in range(2)
        ]
        abandoned, recent = [call for call in claimed if call is not None]
        # The owner of the first died 20 minutes ago and its request never came again; the second's lease
        # ran out a minute ago (a redelivery, or a long stream, may still finish it).
        now = timezone.now()
        for call, expired_since in ((abandoned, dt.timedelta(minutes=20)), (recent, dt.timedelta(minutes=1))):
            ModelCall.objects.filter(id=call.call_id).update(lease_expires_at=now - expired_since)
        assert str(abandoned.request_id) in gateway_policy.open_reservations(schema)

        assert finish_abandoned_calls(schema) == 1

        record = ModelCall.objects.get(id=abandoned.call_id)
        assert (record.status, record.error_code) == (ModelCall.Status.ERROR, "interrupted")
        assert_sealed_and_consistent(record)
        assert str(abandoned.request_id) not in gateway_policy.open_reservations(schema)
        assert ModelCall.objects.get(id=recent.call_id).status == ModelCall.Status.STARTED
        assert finish_abandoned_calls(schema) == 0  # nothing twice
        gateway_policy.release_request(schema, recent.request_id)
        ModelCall.objects.filter(id=recent.call_id).update(lease_expires_at=now - dt.timedelta(hours=1))
        assert finish_abandoned_calls(schema) == 1
