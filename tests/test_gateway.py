"""gateway.complete against the provider simulator over real HTTP (LiteLLM's client code runs)."""

import uuid
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context, tenant_context

from devtools.llm_simulator.testing import SimulatorControl
from gateway.models import ModelCall
from gateway.service import GatewayError, TenantContextError, complete
from tenants.context import current_schema
from tenants.models import Tenant
from tests.conftest import make_member

pytestmark = pytest.mark.django_db

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How tall is Everest?"}]


def call(tenant: Tenant, request_id: uuid.UUID, user_id: int | None = None, model: str = "sim-model"):  # type: ignore[no-untyped-def]
    return complete(
        tenant_schema=tenant.schema_name,
        request_id=request_id,
        user_id=user_id,
        model=model,
        messages=MESSAGES,
    )


def test_call_is_recorded_in_the_tenants_schema_before_the_answer_returns(
    acme: Tenant, globex: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(
        reply="8,849 metres.", served_model="sim-model-2026-01-01", prompt_tokens=12, completion_tokens=3
    )
    alice = make_member(acme)
    request_id = uuid.uuid4()
    with tenant_context(acme):
        completion = call(acme, request_id, alice.pk)
        record = ModelCall.objects.get(request_id=request_id)
    assert completion.text == "8,849 metres."
    assert record.status == ModelCall.Status.OK
    assert record.user_id == alice.pk
    assert record.model_requested == "sim-model"
    assert record.model_served == "sim-model-2026-01-01"
    assert record.provider == "simulator"
    assert record.messages == MESSAGES
    assert record.response == "8,849 metres."
    assert (record.tokens_in, record.tokens_out) == (12, 3)
    assert record.cost == Decimal("0.000012") + Decimal("0.000006")
    assert record.latency_ms >= 0
    with tenant_context(globex):
        assert not ModelCall.objects.filter(request_id=request_id).exists()


def test_max_tokens_is_always_sent_to_the_provider(acme: Tenant, sim: SimulatorControl) -> None:
    with tenant_context(acme):
        call(acme, uuid.uuid4())
    (sent,) = [entry for entry in sim.requests() if entry["path"] == "/v1/chat/completions"]
    assert sent["body"]["max_tokens"] == 128


def test_same_request_id_calls_the_provider_once(acme: Tenant, sim: SimulatorControl) -> None:
    request_id = uuid.uuid4()
    with tenant_context(acme):
        first = call(acme, request_id)
        second = call(acme, request_id)
        assert ModelCall.objects.filter(request_id=request_id).count() == 1
    assert first == second
    assert len([entry for entry in sim.requests() if entry["path"] == "/v1/chat/completions"]) == 1


def test_provider_failure_is_recorded_and_reported_clearly(acme: Tenant, sim: SimulatorControl) -> None:
    sim.set_scenario(fail="500")
    request_id = uuid.uuid4()
    with tenant_context(acme), pytest.raises(GatewayError, match="unavailable") as failure:
        call(acme, request_id)
    record = failure.value.call
    assert record is not None and record.status == ModelCall.Status.ERROR
    assert "500" in record.error or "InternalServerError" in record.error


def test_unknown_model_is_refused_without_a_provider_call(acme: Tenant, sim: SimulatorControl) -> None:
    request_id = uuid.uuid4()
    with tenant_context(acme), pytest.raises(GatewayError, match="not enabled for this workspace"):
        call(acme, request_id, model="gpt-17-ultra")
    with tenant_context(acme):
        assert ModelCall.objects.get(request_id=request_id).status == ModelCall.Status.REFUSED
    assert sim.requests() == []


def test_call_outside_its_tenant_schema_fails_loudly(
    acme: Tenant, globex: Tenant, sim: SimulatorControl
) -> None:
    with schema_context("public"), pytest.raises(TenantContextError):
        call(acme, uuid.uuid4())
    with tenant_context(globex), pytest.raises(TenantContextError):
        call(acme, uuid.uuid4())
    assert current_schema() == "public"
    assert sim.requests() == []
