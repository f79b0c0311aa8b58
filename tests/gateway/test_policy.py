"""The gateway's control point, in process against the real PostgreSQL, Redis and the provider simulator:
allow-list, kill switch, rate limits, budgets on the tenant's calendar, reservation, idempotency."""

import datetime as dt
import uuid
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from audit.models import AuditEvent
from devtools.llm_simulator.testing import SimulatorControl
from gateway import policy as gateway_policy
from gateway import store
from gateway.actions import (
    PolicyError,
    do_set_budget,
    do_set_kill_switch,
    do_set_model_allow_list,
    do_set_rate_limits,
    do_set_time_zone,
)
from gateway.config import get_model_route
from gateway.errors import BudgetExceeded, KillSwitchOn, ModelNotAllowed, ProviderUnavailable, RateLimited
from gateway.models import ModelCall
from gateway.service import complete
from tenants.models import Tenant

# Committed, not wrapped in a test transaction: policy changes reach Redis when their transaction commits
# (each test has its own fresh tenant, so nothing is shared).
pytestmark = pytest.mark.usefixtures("committed_db")

MESSAGES = [{"role": "user", "content": "How tall is Everest?"}]


def chat_requests(sim: SimulatorControl) -> list[dict[str, Any]]:
    return [entry for entry in sim.requests() if entry["path"] == "/v1/chat/completions"]


def call(tenant: Tenant, **kwargs: Any) -> Any:
    arguments: dict[str, Any] = {
        "tenant_schema": tenant.schema_name,
        "request_id": uuid.uuid4(),
        "user_id": None,
        "model": "sim-model",
        "messages": MESSAGES,
        **kwargs,
    }
    return complete(**arguments)


def test_new_tenant_gets_a_default_policy_that_answers_with_the_default_model(
    fresh_tenant: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(reply="Fine.")
    with tenant_context(fresh_tenant):
        assert gateway_policy.default_model_for_tenant(fresh_tenant.schema_name) == "sim-model"
        assert call(fresh_tenant).text == "Fine."
        assert AuditEvent.objects.filter(kind="gateway.policy_created").count() == 1


def test_unpriced_model_is_refused_at_configuration(fresh_tenant: Tenant) -> None:
    with tenant_context(fresh_tenant):
        with pytest.raises(PolicyError, match="'sim-unpriced' has no price"):
            do_set_model_allow_list(allowed_models=["sim-model", "sim-unpriced"])
        with pytest.raises(PolicyError, match="not in the platform's model catalogue"):
            do_set_model_allow_list(allowed_models=["sim-model", "gpt-17-ultra"])
        with pytest.raises(PolicyError, match="default model 'sim-fallback' must be on the allow-list"):
            do_set_model_allow_list(allowed_models=["sim-model"], default_model="sim-fallback")
        policy = gateway_policy.load_policy(fresh_tenant.schema_name)
        assert policy.allowed_models == ["sim-model"]
        assert not AuditEvent.objects.filter(kind="gateway.models_changed").exists()


def test_model_off_the_allow_list_is_refused_and_recorded_without_a_provider_call(
    fresh_tenant: Tenant, sim: SimulatorControl
) -> None:
    request_id = uuid.uuid4()
    with tenant_context(fresh_tenant):
        with pytest.raises(
            ModelNotAllowed, match="'sim-fallback' is not enabled for this workspace"
        ) as refusal:
            call(fresh_tenant, request_id=request_id, model="sim-fallback")
        record = ModelCall.objects.get(request_id=request_id)
    assert refusal.value.call == record
    assert (record.status, record.error_code) == (ModelCall.Status.REFUSED, "model_not_found")
    assert chat_requests(sim) == []


def test_kill_switch_refuses_every_call_at_once_and_says_why(
    fresh_tenant: Tenant, sim: SimulatorControl
) -> None:
    with tenant_context(fresh_tenant):
        call(fresh_tenant)
        do_set_kill_switch(on=True, reason="Suspicious spending under review.", actor_label="tester")
        with pytest.raises(KillSwitchOn, match="switched off .* Reason: Suspicious spending under review."):
            call(fresh_tenant)
        with pytest.raises(KillSwitchOn):
            gateway_policy.check_kill_switch(fresh_tenant.schema_name)
        refused = ModelCall.objects.filter(status=ModelCall.Status.REFUSED).get()
        assert refused.error_code == "tenant_disabled"
        event = AuditEvent.objects.get(kind="gateway.kill_switch_on")
        assert event.actor_label == "tester"
        assert event.details["reason"] == "Suspicious spending under review."
        do_set_kill_switch(on=False, actor_label="tester")
        gateway_policy.check_kill_switch(fresh_tenant.schema_name)
        call(fresh_tenant)
    assert len(chat_requests(sim)) == 2


def test_kill_switch_flag_survives_a_lost_redis_copy(fresh_tenant: Tenant) -> None:
    """The tenant schema holds the truth; Redis is a published copy that is rebuilt when missing."""
    with tenant_context(fresh_tenant):
        do_set_kill_switch(on=True, reason="Stop.")
        store.client().delete(f"{store.tenant_prefix(fresh_tenant.schema_name)}:policy")
        with pytest.raises(KillSwitchOn):
            gateway_policy.check_kill_switch(fresh_tenant.schema_name)
        with pytest.raises(KillSwitchOn):
            call(fresh_tenant)


def test_requests_per_minute_are_limited_per_tenant_and_per_user(
    fresh_tenant: Tenant, member_of: Any, sim: SimulatorControl
) -> None:
    alice, bob = member_of(fresh_tenant), member_of(fresh_tenant)
    minute_start = dt.datetime(2026, 5, 4, 10, 0, 1, tzinfo=dt.UTC)
    with tenant_context(fresh_tenant):
        do_set_rate_limits(requests_per_minute=3, user_requests_per_minute=2)
        call(fresh_tenant, user_id=alice.pk, now=minute_start)
        call(fresh_tenant, user_id=alice.pk, now=minute_start)
        with pytest.raises(RateLimited, match="You are sending too many requests \\(limit 2 per minute\\)"):
            call(fresh_tenant, user_id=alice.pk, now=minute_start)
        call(fresh_tenant, user_id=bob.pk, now=minute_start)
        with pytest.raises(RateLimited, match="This workspace is sending too many requests \\(limit 3"):
            call(fresh_tenant, user_id=bob.pk, now=minute_start)
        # Two minutes later both windows have slid past.
        call(fresh_tenant, user_id=alice.pk, now=minute_start + dt.timedelta(minutes=2))
        assert (
            ModelCall.objects.filter(
                status=ModelCall.Status.REFUSED, error_code="rate_limit_exceeded"
            ).count()
            == 2
        )
    assert len(chat_requests(sim)) == 4


def test_tokens_per_minute_counts_the_reserved_worst_case(
    fresh_tenant: Tenant, sim: SimulatorControl
) -> None:
    with tenant_context(fresh_tenant):
        do_set_rate_limits(tokens_per_minute=100)  # below one call's worst case (max_tokens is 128)
        with pytest.raises(RateLimited, match="too many tokens per minute \\(limit 100\\)"):
            call(fresh_tenant)
    assert chat_requests(sim) == []


def test_reservation_is_settled_to_the_actual_usage(fresh_tenant: Tenant, sim: SimulatorControl) -> None:
    sim.set_scenario(prompt_tokens=11, completion_tokens=7)
    with tenant_context(fresh_tenant):
        completion = call(fresh_tenant)
        usage = gateway_policy.usage_snapshot(fresh_tenant.schema_name)
    assert (usage.day_tokens, usage.month_tokens) == (18, 18)
    assert usage.month_cost == completion.cost == Decimal("0.000011") + Decimal("0.000014")
    assert usage.open_reservations == 0


def test_failed_call_releases_its_reservation(fresh_tenant: Tenant, sim: SimulatorControl) -> None:
    sim.set_scenario(fail="500")
    with tenant_context(fresh_tenant):
        with pytest.raises(ProviderUnavailable, match="The assistant is unavailable right now"):
            call(fresh_tenant)
        usage = gateway_policy.usage_snapshot(fresh_tenant.schema_name)
    assert (usage.day_tokens, usage.month_cost, usage.open_reservations) == (0, Decimal(0), 0)


def test_daily_budget_refuses_the_call_that_does_not_fit_and_resets_at_the_tenants_midnight(
    fresh_tenant: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(prompt_tokens=10, completion_tokens=10)
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    late_evening = dt.datetime(2026, 3, 10, 23, 50, tzinfo=tokyo)  # 14:50 UTC, still March 10th in Tokyo
    after_midnight = dt.datetime(2026, 3, 11, 0, 10, tzinfo=tokyo)  # 15:10 UTC, a new day in Tokyo only
    with tenant_context(fresh_tenant):
        do_set_time_zone(time_zone="Asia/Tokyo")
        worst_case = get_model_route("sim-model").counter.prompt_bound(MESSAGES) + 128
        # Room for one worst case on top of one settled call (20 tokens), not on top of two.
        do_set_budget(daily_tokens=worst_case + 30)
        call(fresh_tenant, now=late_evening)
        call(fresh_tenant, now=late_evening)
        with pytest.raises(
            BudgetExceeded, match="daily token budget .* resets at midnight Asia/Tokyo"
        ) as refusal:
            call(fresh_tenant, now=late_evening)
        assert "2026-03-11 00:00 JST" in refusal.value.user_message
        assert call(fresh_tenant, now=after_midnight).text
        assert gateway_policy.usage_snapshot(fresh_tenant.schema_name, now=after_midnight).day_tokens == 20
    assert len(chat_requests(sim)) == 3


# (Also the one test here in a wrapping transaction: pytest-django only creates the test database when some
# collected test carries the django_db mark, which matters when this file runs alone.)
@pytest.mark.django_db
def test_time_zone_must_be_real(fresh_tenant: Tenant) -> None:
    with tenant_context(fresh_tenant), pytest.raises(PolicyError, match="not a known time zone"):
        do_set_time_zone(time_zone="Mars/Olympus_Mons")


def test_monthly_spending_cap_and_per_user_cap_refuse_with_clear_errors(
    fresh_tenant: Tenant, member_of: Any, sim: SimulatorControl
) -> None:
    alice = member_of(fresh_tenant)
    with tenant_context(fresh_tenant):
        do_set_budget(user_daily_tokens=50)
        with pytest.raises(
            BudgetExceeded, match="You have used your daily token allowance \\(0 of 50 tokens\\)"
        ):
            call(fresh_tenant, user_id=alice.pk)
        do_set_budget(user_daily_tokens=None, monthly_spend_cap="0.0001")  # rounds to $0.00
        with pytest.raises(BudgetExceeded, match="monthly spending cap \\(\\$0.00 of \\$0.00\\)"):
            call(fresh_tenant, user_id=alice.pk)
        with pytest.raises(PolicyError, match="cannot be negative"):
            do_set_budget(daily_tokens=-1)
        assert AuditEvent.objects.filter(kind="gateway.budget_changed").count() == 2
    assert chat_requests(sim) == []


def test_counters_lost_from_redis_are_rebuilt_from_the_records(
    fresh_tenant: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(prompt_tokens=30, completion_tokens=20)
    with tenant_context(fresh_tenant):
        call(fresh_tenant)
        prefix = store.tenant_prefix(fresh_tenant.schema_name)
        store.client().delete(
            *store.client().keys(f"{prefix}:tok:*"), *store.client().keys(f"{prefix}:cost:*")
        )
        do_set_budget(daily_tokens=50 + get_model_route("sim-model").counter.prompt_bound(MESSAGES) + 128 - 1)
        with pytest.raises(BudgetExceeded, match="\\(50 of"):
            call(fresh_tenant)


def test_redelivery_after_the_owner_died_records_an_interruption_and_releases_the_reservation(
    fresh_tenant: Tenant, sim: SimulatorControl
) -> None:
    """What a redelivered task finds after a worker was killed between the provider call and the record:
    a 'started' record whose lease has expired and an open reservation."""
    request_id = uuid.uuid4()
    with tenant_context(fresh_tenant):
        gateway_policy.reserve(
            tenant_schema=fresh_tenant.schema_name,
            request_id=request_id,
            user_id=None,
            model="sim-model",
            prompt_tokens=10,
            max_tokens=128,
        )
        ModelCall.objects.create(
            request_id=request_id,
            model_requested="sim-model",
            status=ModelCall.Status.STARTED,
            lease_expires_at=dt.datetime.now(tz=dt.UTC) - dt.timedelta(seconds=1),
        )
        assert gateway_policy.usage_snapshot(fresh_tenant.schema_name).day_tokens == 138
        with pytest.raises(ProviderUnavailable, match="interrupted while answering"):
            call(fresh_tenant, request_id=request_id)
        with pytest.raises(ProviderUnavailable, match="interrupted while answering"):
            call(fresh_tenant, request_id=request_id)
        record = ModelCall.objects.get(request_id=request_id)
        usage = gateway_policy.usage_snapshot(fresh_tenant.schema_name)
    assert (record.status, record.error_code) == (ModelCall.Status.ERROR, "interrupted")
    assert (usage.day_tokens, usage.open_reservations) == (0, 0)
    assert chat_requests(sim) == []


def test_expired_reservations_are_swept(fresh_tenant: Tenant) -> None:
    with tenant_context(fresh_tenant):
        gateway_policy.reserve(
            tenant_schema=fresh_tenant.schema_name,
            request_id=uuid.uuid4(),
            user_id=None,
            model="sim-model",
            prompt_tokens=10,
            max_tokens=100,
        )
        assert gateway_policy.usage_snapshot(fresh_tenant.schema_name).open_reservations == 1
        in_the_future = dt.datetime.now(tz=dt.UTC).timestamp() + 10_000
        assert gateway_policy.sweep_expired_reservations(fresh_tenant.schema_name, now=in_the_future) == 1
        usage = gateway_policy.usage_snapshot(fresh_tenant.schema_name)
    assert (usage.day_tokens, usage.open_reservations) == (0, 0)


def test_redis_outage_fails_closed_with_a_clear_error_and_no_provider_call(
    fresh_tenant: Tenant, sim: SimulatorControl
) -> None:
    from django.test import override_settings

    request_id = uuid.uuid4()
    with tenant_context(fresh_tenant), override_settings(GATEWAY_REDIS_URL="redis://127.0.0.1:1/0"):
        with pytest.raises(ProviderUnavailable, match="The assistant is unavailable right now"):
            call(fresh_tenant, request_id=request_id)
        record = ModelCall.objects.get(request_id=request_id)
    assert (record.status, record.error_code) == (ModelCall.Status.ERROR, "policy_unavailable")
    assert chat_requests(sim) == []
