"""Provider faults from the simulator: failover to the tenant's fallback, 429s, outages and timeouts, and the
shared circuit breaker."""

import uuid
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings
from django_tenants.utils import tenant_context

from devtools.llm_simulator.testing import SimulatorControl
from gateway import breaker
from gateway.actions import do_set_model_allow_list
from gateway.errors import ProviderUnavailable
from gateway.models import ModelCall
from gateway.service import complete
from tenants.models import Tenant

pytestmark = pytest.mark.usefixtures("committed_db")

MESSAGES = [{"role": "user", "content": "Summarise the quarterly report."}]


def attempts(sim: SimulatorControl, model: str) -> int:
    return len([e for e in sim.requests() if e["path"] == "/v1/chat/completions" and e["model"] == model])


def call(tenant: Tenant, request_id: uuid.UUID | None = None) -> Any:
    return complete(
        tenant_schema=tenant.schema_name,
        request_id=request_id or uuid.uuid4(),
        user_id=None,
        model="sim-model",
        messages=MESSAGES,
    )


@pytest.fixture
def with_fallback(fresh_tenant: Tenant) -> Tenant:
    with tenant_context(fresh_tenant):
        do_set_model_allow_list(
            allowed_models=["sim-model", "sim-fallback"], fallbacks={"sim-model": ["sim-fallback"]}
        )
    return fresh_tenant


def test_failing_primary_fails_over_to_the_tenants_fallback_and_the_record_says_so(
    with_fallback: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(model="sim-model", fail="503")
    sim.set_scenario(model="sim-fallback", reply="From the secondary.", prompt_tokens=10, completion_tokens=5)
    request_id = uuid.uuid4()
    with tenant_context(with_fallback):
        completion = call(with_fallback, request_id)
        record = ModelCall.objects.get(request_id=request_id)
    assert completion.text == "From the secondary."
    assert completion.fallback_taken
    assert (record.status, record.model_requested, record.model_alias_served) == (
        "ok",
        "sim-model",
        "sim-fallback",
    )
    assert record.fallback_taken and record.provider == "simulator-b"
    assert "sim-model: " in record.error  # the failed attempt is part of the evidence
    # Priced at the model that answered.
    assert str(record.cost) == "0.00004000"
    assert attempts(sim, "sim-model") == 2  # the call and one retry (GATEWAY_RETRIES=1 in tests)
    assert attempts(sim, "sim-fallback") == 1


def test_outage_of_every_provider_gives_a_clear_unavailable_message(
    with_fallback: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(fail="500")
    request_id = uuid.uuid4()
    with tenant_context(with_fallback):
        with pytest.raises(
            ProviderUnavailable, match="^The assistant is unavailable right now. Please try again.$"
        ):
            call(with_fallback, request_id)
        record = ModelCall.objects.get(request_id=request_id)
    assert (record.status, record.error_code) == ("error", "provider_unavailable")
    assert "sim-model: " in record.error and "sim-fallback: " in record.error


def test_a_hanging_provider_times_out_and_the_fallback_answers(
    with_fallback: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(model="sim-model", fail="timeout")
    sim.set_scenario(model="sim-fallback", reply="Still here.")
    with tenant_context(with_fallback):
        assert call(with_fallback).text == "Still here."
    # A timed-out provider is not retried (it would likely hang again): straight to the fallback.
    assert attempts(sim, "sim-model") == 1


def test_a_hanging_provider_without_fallback_ends_in_unavailable_not_a_hang(
    fresh_tenant: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(fail="timeout")
    request_id = uuid.uuid4()
    with tenant_context(fresh_tenant):
        with pytest.raises(ProviderUnavailable, match="unavailable"):
            call(fresh_tenant, request_id)
        record = ModelCall.objects.get(request_id=request_id)
    assert "Timeout" in record.error
    assert record.latency_ms >= 5000  # sim-model's timeout is 5 s


def test_provider_429_is_retried_after_its_retry_after_and_then_answers(
    fresh_tenant: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(fail="429", fail_times=1, retry_after=1, reply="After the wait.")
    with tenant_context(fresh_tenant):
        completion = call(fresh_tenant)
    assert completion.text == "After the wait."
    assert not completion.fallback_taken
    first, second = [e["timestamp"] for e in sim.requests() if e["path"] == "/v1/chat/completions"]
    assert second - first >= 0.9


@override_settings(GATEWAY_BREAKER_THRESHOLD=2, GATEWAY_BREAKER_COOLDOWN_SECONDS=60)
def test_circuit_opens_after_repeated_failures_skips_the_provider_and_is_visible_to_admins(
    with_fallback: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(model="sim-model", fail="500")
    sim.set_scenario(model="sim-fallback", reply="Fallback.")
    with tenant_context(with_fallback):
        call(with_fallback)
        call(with_fallback)
        assert breaker.states(["sim-model"])["sim-model"].state == "open"
        calls_before = attempts(sim, "sim-model")
        assert call(with_fallback).text == "Fallback."
    assert attempts(sim, "sim-model") == calls_before  # the open circuit kept the call away from it
    output = StringIO()
    call_command("gateway_circuits", stdout=output)
    line = next(row for row in output.getvalue().splitlines() if row.startswith("sim-model "))
    assert " open " in line and "InternalServerError" in line
    call_command("gateway_circuits", "--reset", "sim-model", stdout=StringIO())
    assert breaker.states(["sim-model"])["sim-model"].state == "closed"


@override_settings(GATEWAY_BREAKER_THRESHOLD=1, GATEWAY_BREAKER_COOLDOWN_SECONDS=0)
def test_half_open_circuit_closes_again_when_the_provider_recovers(
    fresh_tenant: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(fail="503", fail_times=2)  # the call and its retry fail
    with tenant_context(fresh_tenant):
        with pytest.raises(ProviderUnavailable):
            call(fresh_tenant)
        assert breaker.states(["sim-model"])["sim-model"].state == "half-open"  # cooldown 0: probe allowed
        assert call(fresh_tenant).text
    state = breaker.states(["sim-model"])["sim-model"]
    assert state.state == "closed" and state.times_opened == 1


def test_a_stream_whose_primary_fails_to_open_is_streamed_by_the_fallback(
    with_fallback: Tenant, sim: SimulatorControl
) -> None:
    from gateway.streaming import stream

    sim.set_scenario(model="sim-model", fail="503")
    sim.set_scenario(
        model="sim-fallback", reply="Streamed by the secondary.", prompt_tokens=10, completion_tokens=5
    )
    request_id = uuid.uuid4()
    with tenant_context(with_fallback):
        events = list(
            stream(
                tenant_schema=with_fallback.schema_name,
                request_id=request_id,
                user_id=None,
                model="sim-model",
                messages=MESSAGES,
            )
        )
        record = ModelCall.objects.get(request_id=request_id)
    assert "".join(e.text for e in events if e.kind == "token") == "Streamed by the secondary."
    assert events[-1].result is not None and events[-1].result.status == ModelCall.Status.OK
    assert (record.status, record.model_alias_served, record.fallback_taken) == ("ok", "sim-fallback", True)
    assert (record.tokens_in, record.tokens_out) == (10, 5)  # the fallback's own usage chunk
    assert str(record.cost) == "0.00004000"  # priced at the model that answered
    assert "sim-model: " in record.error
    assert attempts(sim, "sim-model") == 2 and attempts(sim, "sim-fallback") == 1
