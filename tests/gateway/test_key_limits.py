"""An API key's own limits (daily token budget, requests per minute), checked in the gateway's atomic
reservation next to the tenant's: in process against the real PostgreSQL, Redis and the provider simulator."""

import datetime as dt
import uuid
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.models import AuditEvent
from devtools.llm_simulator.testing import SimulatorControl
from gateway import policy as gateway_policy
from gateway import store
from gateway.api.actions import ApiKeyRejected, do_create_api_key
from gateway.config import get_model_route
from gateway.errors import BudgetExceeded, RateLimited
from gateway.models import ModelCall
from gateway.policy import KeyLimits
from gateway.service import complete
from tenants.models import Tenant

pytestmark = pytest.mark.usefixtures("committed_db")

MESSAGES = [{"role": "user", "content": "How tall is Everest?"}]
MINUTE = dt.datetime(2026, 5, 4, 10, 0, 1, tzinfo=dt.UTC)


def call(tenant: Tenant, key: KeyLimits | None, **kwargs: Any) -> Any:
    return complete(
        tenant_schema=tenant.schema_name,
        request_id=uuid.uuid4(),
        user_id=None,
        model="sim-model",
        messages=MESSAGES,
        source=key.source if key is not None else "api",
        api_key=key,
        **kwargs,
    )


def chat_requests(sim: SimulatorControl) -> int:
    return len([entry for entry in sim.requests() if entry["path"] == "/v1/chat/completions"])


def test_requests_per_minute_of_one_key_leave_other_keys_and_the_tenant_alone(
    fresh_tenant: Tenant, sim: SimulatorControl
) -> None:
    limited = KeyLimits(prefix="aaaaaaaaaaaa", requests_per_minute=2)
    other = KeyLimits(prefix="bbbbbbbbbbbb", requests_per_minute=2)
    with tenant_context(fresh_tenant):
        call(fresh_tenant, limited, now=MINUTE)
        call(fresh_tenant, limited, now=MINUTE)
        with pytest.raises(RateLimited, match="This API key is sending too many requests \\(limit 2 per"):
            call(fresh_tenant, limited, now=MINUTE)
        call(fresh_tenant, other, now=MINUTE)
        call(fresh_tenant, None, now=MINUTE)
        # Two minutes later the key's window has slid past.
        call(fresh_tenant, limited, now=MINUTE + dt.timedelta(minutes=2))
        refused = ModelCall.objects.get(status=ModelCall.Status.REFUSED)
        assert (refused.source, refused.error_code) == ("key:aaaaaaaaaaaa", "rate_limit_exceeded")
    assert chat_requests(sim) == 5


def test_daily_token_budget_of_a_key_counts_settled_usage_and_is_rebuilt_from_its_records(
    fresh_tenant: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(prompt_tokens=30, completion_tokens=20)
    worst_case = get_model_route("sim-model").counter.prompt_bound(MESSAGES) + 128
    # Room for one worst case on top of one settled call (50 tokens), not on top of two.
    key = KeyLimits(prefix="cccccccccccc", daily_tokens=worst_case + 60)
    with tenant_context(fresh_tenant):
        call(fresh_tenant, key)
        call(fresh_tenant, key)
        with pytest.raises(BudgetExceeded, match="This API key has used its daily token budget \\(100 of"):
            call(fresh_tenant, key)
        # Other traffic of the tenant does not count against the key.
        call(fresh_tenant, None)
        # The key's counter lost from Redis: rebuilt from the records of the key's calls only.
        prefix = store.tenant_prefix(fresh_tenant.schema_name)
        store.client().delete(*store.client().keys(f"{prefix}:ktok:*"))
        with pytest.raises(BudgetExceeded, match="\\(100 of"):
            call(fresh_tenant, key)
        # A new day in the tenant's calendar starts the key's budget again.
        assert call(fresh_tenant, key, now=timezone.now() + dt.timedelta(days=1)).text is not None
        assert gateway_policy.open_reservations(fresh_tenant.schema_name) == []
    assert chat_requests(sim) == 4


def test_a_key_without_limits_only_meets_the_tenants(fresh_tenant: Tenant, sim: SimulatorControl) -> None:
    key = KeyLimits(prefix="dddddddddddd")
    with tenant_context(fresh_tenant):
        for _ in range(3):
            call(fresh_tenant, key, now=MINUTE)
        prefix = store.tenant_prefix(fresh_tenant.schema_name)
        # No budget, so no day counter is kept for the key (it is rebuilt when a budget is set).
        assert store.client().keys(f"{prefix}:ktok:*") == []
        assert set(ModelCall.objects.values_list("source", flat=True)) == {"key:dddddddddddd"}
    assert chat_requests(sim) == 3


# In a wrapping transaction (nothing here needs another process), which also makes pytest-django create the
# test database when this file runs alone.
@pytest.mark.django_db
def test_key_limits_and_expiry_are_checked_when_the_key_is_created(fresh_tenant: Tenant) -> None:
    with tenant_context(fresh_tenant):
        with pytest.raises(ApiKeyRejected, match="The expiry date must be in the future"):
            do_create_api_key(name="old", expires_at=timezone.now() - dt.timedelta(minutes=1))
        with pytest.raises(
            ApiKeyRejected, match="The daily token budget must be a whole number of at least 1"
        ):
            do_create_api_key(name="zero", daily_token_budget=0)
        with pytest.raises(ApiKeyRejected, match="Requests per minute must be a whole number"):
            do_create_api_key(name="negative", requests_per_minute=-5)
        created = do_create_api_key(
            name="nightly", expires_at=timezone.now() + dt.timedelta(days=30), daily_token_budget=5000
        ).api_key
        assert created.is_active and not created.is_expired
        assert created.call_source == f"key:{created.prefix}" and len(created.call_source) <= 16
        event = AuditEvent.objects.get(kind="api_key.created")
        assert event.details["daily_token_budget"] == 5000 and event.details["requests_per_minute"] is None
