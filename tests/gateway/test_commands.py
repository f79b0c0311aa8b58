"""Operators' management commands call the same actions as the console: same validation, same audit events."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import tenant_context

from audit.models import AuditEvent
from gateway import policy as gateway_policy
from gateway.models import GatewayPolicy
from tenants.models import Tenant

pytestmark = pytest.mark.usefixtures("committed_db")


def run(*args: str) -> str:
    output = StringIO()
    call_command(*args, stdout=output)
    return output.getvalue()


def test_set_budget_command_changes_the_budget_with_an_audit_event(fresh_tenant: Tenant) -> None:
    out = run("set_budget", "--tenant", fresh_tenant.schema_name, "--daily-tokens", "5000",
              "--monthly-spend", "12.5", "--user-daily-tokens", "800")  # fmt: skip
    assert "5000 tokens/day" in out and "$12.50/month" in out and "per user 800" in out
    with tenant_context(fresh_tenant):
        policy = GatewayPolicy.objects.get()
        event = AuditEvent.objects.get(kind="gateway.budget_changed")
        published = gateway_policy.load_policy(fresh_tenant.schema_name)
    assert (policy.daily_token_budget, str(policy.monthly_spend_cap), policy.user_daily_token_cap) == (
        5000,
        "12.50",
        800,
    )
    assert event.actor_label == "operator (manage.py)"
    assert event.details["changes"]["daily_token_budget"]["to"] == 5000
    assert published.raw["day_tokens"] == "5000"


def test_set_budget_command_refuses_bad_input_clearly(fresh_tenant: Tenant) -> None:
    with pytest.raises(CommandError, match="cannot be negative"):
        run("set_budget", "--tenant", fresh_tenant.schema_name, "--daily-tokens", "-5")
    with pytest.raises(CommandError, match="Nothing to change"):
        run("set_budget", "--tenant", fresh_tenant.schema_name)
    with pytest.raises(CommandError, match="No tenant with the slug 'nope'"):
        run("set_budget", "--tenant", "nope", "--daily-tokens", "5")


def test_kill_switch_command_flips_the_switch_for_every_worker(fresh_tenant: Tenant) -> None:
    assert "kill switch on" in run(
        "kill_switch", "on", "--tenant", fresh_tenant.schema_name, "--reason", "Incident 42"
    )
    assert gateway_policy.load_policy(fresh_tenant.schema_name).kill_switch
    run("kill_switch", "off", "--tenant", fresh_tenant.schema_name)
    assert not gateway_policy.load_policy(fresh_tenant.schema_name).kill_switch
    with tenant_context(fresh_tenant):
        kinds = list(AuditEvent.objects.order_by("created_at").values_list("kind", flat=True))
    assert kinds[-2:] == ["gateway.kill_switch_on", "gateway.kill_switch_off"]


def test_set_models_command_refuses_an_unpriced_model(fresh_tenant: Tenant) -> None:
    with pytest.raises(CommandError, match="'sim-unpriced' has no price"):
        run("set_models", "--tenant", fresh_tenant.schema_name, "--allow", "sim-model,sim-unpriced")
    out = run("set_models", "--tenant", fresh_tenant.schema_name, "--allow", "sim-model,sim-fallback",
              "--fallback", "sim-model=sim-fallback")  # fmt: skip
    assert "fallbacks {'sim-model': ['sim-fallback']}" in out
    status = run("gateway_status", "--tenant", fresh_tenant.schema_name)
    assert "sim-model, sim-fallback (default sim-model)" in status and "kill switch       off" in status


def test_seed_demo_gives_the_demo_tenants_a_working_default_policy(acme: Tenant, globex: Tenant) -> None:
    out = run("seed_demo")
    # Idempotent: the session's acme and globex already have a policy (tests/conftest.py), which it keeps.
    assert out.count("  gateway: models sim-model, sim-embedding, smollm2 (default sim-model)") == 2
    for tenant in (acme, globex):
        assert gateway_policy.default_model_for_tenant(tenant.schema_name) == "sim-model"


@pytest.mark.django_db
def test_rate_limit_command_accepts_none_for_per_user_limits(fresh_tenant: Tenant) -> None:
    out = run("set_rate_limits", "--tenant", fresh_tenant.schema_name, "--rpm", "30", "--user-rpm", "none")
    assert "30 requests/min" in out and "per user - requests/min" in out
