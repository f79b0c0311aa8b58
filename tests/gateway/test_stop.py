"""Stopping one streamed call (the chat's Stop button): gateway.policy.request_stop sets a per-request flag
that the stream checks between chunks, like the kill switch. The stream ends as cut off with what was said,
the record counts the tokens actually produced, and the reservation is settled to them."""

import uuid
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from devtools.llm_simulator.testing import SimulatorControl
from gateway import policy as gateway_policy
from gateway.errors import StopRequested
from gateway.models import ModelCall
from gateway.streaming import StreamEvent, stream
from tenants.models import Tenant

pytestmark = pytest.mark.usefixtures("committed_db")

MESSAGES = [{"role": "user", "content": "Count slowly to forty."}]
LONG_REPLY = " ".join(f"n{i}" for i in range(40))


def test_stop_request_cuts_the_stream_keeps_the_partial_answer_and_settles_to_it(
    fresh_tenant: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(reply=LONG_REPLY, token_delay_ms=20, prompt_tokens=13, completion_tokens=40)
    request_id = uuid.uuid4()
    schema = fresh_tenant.schema_name
    with tenant_context(fresh_tenant):
        events = stream(
            tenant_schema=schema, request_id=request_id, user_id=None, model="sim-model", messages=MESSAGES
        )
        received = [next(events).text for _ in range(3)]
        gateway_policy.request_stop(schema, request_id)
        rest: list[StreamEvent] = list(events)
        record = ModelCall.objects.get(request_id=request_id)
        usage = gateway_policy.usage_snapshot(schema)
        open_after = gateway_policy.open_reservations(schema)
    end = rest[-1].result
    assert end is not None and end.status == ModelCall.Status.CUT_OFF
    assert isinstance(end.error, StopRequested)
    # At most the token already in flight when the flag was set, never the rest of the answer.
    said = "".join(received) + "".join(event.text for event in rest if event.kind == "token")
    assert LONG_REPLY.startswith(said) and len(said) < len(LONG_REPLY) // 2
    assert (record.status, record.error_code) == (ModelCall.Status.CUT_OFF, "stopped")
    assert record.response == said == end.text
    # No final usage chunk came (the provider stream was closed): the partial answer's tokens were counted,
    # not the simulator's 40 for the whole reply, nor the reserved worst case.
    assert 0 < record.tokens_out < 40
    assert record.cost == end.cost > Decimal(0)
    assert usage.day_tokens == record.tokens_in + record.tokens_out
    assert open_after == []


def test_stop_flag_is_per_request_and_per_tenant(fresh_tenant: Tenant, acme: Tenant) -> None:
    stopped, other = uuid.uuid4(), uuid.uuid4()
    gateway_policy.request_stop(fresh_tenant.schema_name, stopped)
    assert gateway_policy.stop_requested(fresh_tenant.schema_name, stopped)
    assert not gateway_policy.stop_requested(fresh_tenant.schema_name, other)
    assert not gateway_policy.stop_requested(acme.schema_name, stopped)
    with pytest.raises(StopRequested):
        gateway_policy.check_stream_may_continue(fresh_tenant.schema_name, stopped)
    gateway_policy.check_stream_may_continue(fresh_tenant.schema_name, other)  # no exception


def test_a_redelivered_stopped_call_replays_as_stopped(fresh_tenant: Tenant, sim: SimulatorControl) -> None:
    sim.set_scenario(reply=LONG_REPLY, token_delay_ms=20)
    request_id = uuid.uuid4()
    arguments = {
        "tenant_schema": fresh_tenant.schema_name,
        "request_id": request_id,
        "user_id": None,
        "model": "sim-model",
        "messages": MESSAGES,
    }
    with tenant_context(fresh_tenant):
        first = stream(**arguments)  # type: ignore[arg-type]
        next(first)
        gateway_policy.request_stop(fresh_tenant.schema_name, request_id)
        said = list(first)[-1].result
        replayed = list(stream(**arguments))  # type: ignore[arg-type]
    assert said is not None
    end = replayed[-1].result
    assert end is not None and isinstance(end.error, StopRequested) and end.text == said.text
    assert len([entry for entry in sim.requests() if entry["path"] == "/v1/chat/completions"]) == 1
