"""gateway.streaming.stream against the provider simulator over real HTTP (LiteLLM's streaming client runs)."""

import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from devtools.llm_simulator.testing import SimulatorControl
from gateway.errors import GatewayError, ModelNotAllowed, ProviderUnavailable
from gateway.models import ModelCall
from gateway.streaming import StreamEvent, stream
from tenants.models import Tenant
from tests.conftest import make_member

pytestmark = pytest.mark.django_db

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name three colours."}]


def open_stream(tenant: Tenant, request_id: uuid.UUID, **overrides):  # type: ignore[no-untyped-def]
    arguments = {
        "tenant_schema": tenant.schema_name,
        "request_id": request_id,
        "user_id": None,
        "model": "sim-model",
        "messages": MESSAGES,
    }
    return stream(**{**arguments, **overrides})


def chat_requests(sim: SimulatorControl) -> list[dict]:  # type: ignore[type-arg]
    return [entry for entry in sim.requests() if entry["path"] == "/v1/chat/completions"]


def test_tokens_arrive_in_order_and_usage_comes_from_the_providers_final_chunk(
    acme: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(reply="Red, green and blue.", prompt_tokens=21, completion_tokens=9)
    alice = make_member(acme)
    request_id = uuid.uuid4()
    with tenant_context(acme):
        events = list(open_stream(acme, request_id, user_id=alice.pk))
        record = ModelCall.objects.get(request_id=request_id)
    tokens = [event.text for event in events if event.kind == "token"]
    assert len(tokens) == 4 and "".join(tokens) == "Red, green and blue."
    end = events[-1]
    assert end.kind == "end" and end.result is not None
    assert end.result.status == ModelCall.Status.OK and end.result.error is None
    # 21/9 are the simulator's own numbers, not a count of the words: they came from the usage chunk.
    assert (record.tokens_in, record.tokens_out) == (21, 9)
    assert record.cost == Decimal("0.000021") + Decimal("0.000018")
    assert record.response == "Red, green and blue."
    assert record.user_id == alice.pk
    assert record.ttft_ms is not None and record.ttft_ms <= record.latency_ms
    (sent,) = chat_requests(sim)
    assert sent["body"]["stream"] is True
    assert sent["body"]["stream_options"] == {"include_usage": True}
    assert sent["body"]["max_tokens"] == 128


def test_the_call_is_recorded_before_the_final_event_is_yielded(acme: Tenant, sim: SimulatorControl) -> None:
    sim.set_scenario(reply="One two three.")
    request_id = uuid.uuid4()
    with tenant_context(acme):
        for event in open_stream(acme, request_id):
            if event.kind == "end":
                record = ModelCall.objects.filter(request_id=request_id).first()
                assert record is not None and record.status == ModelCall.Status.OK
                assert event.result is not None and event.result.call_id == record.id
            else:
                # Claimed before the provider was called, completed only before the final event.
                record = ModelCall.objects.get(request_id=request_id)
                assert record.status == ModelCall.Status.STARTED and record.response == ""


def test_time_to_first_token_is_measured(acme: Tenant, sim: SimulatorControl) -> None:
    sim.set_scenario(reply="slow start then quick", latency_ms=300, token_delay_ms=50)
    request_id = uuid.uuid4()
    with tenant_context(acme):
        list(open_stream(acme, request_id))
        record = ModelCall.objects.get(request_id=request_id)
    assert record.ttft_ms is not None and record.ttft_ms >= 290
    assert record.latency_ms >= record.ttft_ms + 150


def test_requested_max_tokens_is_capped_by_the_models_limit(acme: Tenant, sim: SimulatorControl) -> None:
    with tenant_context(acme):
        list(open_stream(acme, uuid.uuid4(), max_tokens=5))
        list(open_stream(acme, uuid.uuid4(), max_tokens=100_000))
    assert [entry["body"]["max_tokens"] for entry in chat_requests(sim)] == [5, 128]


def test_same_request_id_streams_the_recorded_answer_without_calling_the_provider(
    acme: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(reply="Only once.")
    request_id = uuid.uuid4()
    with tenant_context(acme):
        first = list(open_stream(acme, request_id))
        again = list(open_stream(acme, request_id))
        assert ModelCall.objects.filter(request_id=request_id).count() == 1
    assert len(chat_requests(sim)) == 1
    assert "".join(event.text for event in again if event.kind == "token") == "Only once."
    assert again[-1].result is not None and first[-1].result is not None
    assert again[-1].result.call_id == first[-1].result.call_id


def test_unknown_model_is_refused_before_any_token_and_the_refusal_recorded(
    acme: Tenant, sim: SimulatorControl
) -> None:
    request_id = uuid.uuid4()
    with tenant_context(acme), pytest.raises(ModelNotAllowed) as refusal:
        next(open_stream(acme, request_id, model="gpt-9-unreleased"))
    assert refusal.value.call is not None and refusal.value.call.status == ModelCall.Status.REFUSED
    assert chat_requests(sim) == []


def test_provider_down_raises_before_the_first_token(acme: Tenant, sim: SimulatorControl) -> None:
    sim.set_scenario(fail="503")
    request_id = uuid.uuid4()
    with tenant_context(acme), pytest.raises(ProviderUnavailable, match="unavailable") as failure:
        next(open_stream(acme, request_id))
    assert failure.value.call is not None and failure.value.call.status == ModelCall.Status.ERROR
    # Opening the stream goes through the Router, which retries a 503 (GATEWAY_RETRIES) before giving up.
    attempts = len(chat_requests(sim))
    assert attempts == 1 + settings.GATEWAY_RETRIES
    with tenant_context(acme), pytest.raises(GatewayError):
        # A retry with the same request id does not call the provider again.
        next(open_stream(acme, request_id))
    assert len(chat_requests(sim)) == attempts


def test_stream_broken_mid_way_ends_with_an_error_event_and_keeps_the_partial_answer(
    acme: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(reply="one two three four five six", fail_after_chunks=3)
    request_id = uuid.uuid4()
    with tenant_context(acme):
        events: list[StreamEvent] = list(open_stream(acme, request_id))
        record = ModelCall.objects.get(request_id=request_id)
    end = events[-1].result
    assert end is not None and end.status == ModelCall.Status.ERROR
    assert isinstance(end.error, ProviderUnavailable)
    assert record.status == ModelCall.Status.ERROR
    assert record.response == "one two"
    # No usage chunk arrived: the tokens were counted.
    assert record.tokens_out > 0 and record.tokens_in > 0


def test_caller_closing_the_stream_records_a_cut_off_call(acme: Tenant, sim: SimulatorControl) -> None:
    sim.set_scenario(reply=" ".join(f"word{i}" for i in range(40)), token_delay_ms=20)
    request_id = uuid.uuid4()
    with tenant_context(acme):
        events = open_stream(acme, request_id)
        received = [next(events).text for _ in range(3)]
        events.close()
        record = ModelCall.objects.get(request_id=request_id)
    assert record.status == ModelCall.Status.CUT_OFF
    assert record.response == "".join(received)
    assert "closed the stream" in record.error
    assert record.ttft_ms is not None


def test_redelivery_after_the_owner_died_mid_stream_is_interrupted_without_a_second_provider_call(
    acme: Tenant, sim: SimulatorControl
) -> None:
    """A 'started' claim whose owner died (lease expired) while streaming: a second delivery of the same
    request declares it interrupted, releases the reservation and does not call the provider."""
    from gateway import policy
    from gateway.protocol import GatewayCall

    request_id = uuid.uuid4()
    with tenant_context(acme):
        claimed = GatewayCall.begin(
            tenant_schema=acme.schema_name,
            request_id=request_id,
            user_id=None,
            model="sim-model",
            messages=MESSAGES,
            max_tokens=None,
            source="chat",
        )
        assert claimed is not None and str(request_id) in policy.open_reservations(acme.schema_name)
        ModelCall.objects.filter(request_id=request_id).update(lease_expires_at=timezone.now())
        with pytest.raises(ProviderUnavailable, match="interrupted while answering") as failure:
            next(open_stream(acme, request_id))
        record = ModelCall.objects.get(request_id=request_id)
        assert str(request_id) not in policy.open_reservations(acme.schema_name)
    assert failure.value.call is not None and failure.value.call.id == record.id
    assert (record.status, record.error_code) == (ModelCall.Status.ERROR, "interrupted")
    assert chat_requests(sim) == []
