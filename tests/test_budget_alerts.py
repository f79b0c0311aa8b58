"""Budget alerts: when usage passes the tenant's threshold, a banner on every console page and ONE e-mail per
budget and period to the tenant admins (Django's mail backend; locmem in tests). Usage is made the way the
gateway makes it: a reservation settled to actual usage in the Redis counters."""

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django_tenants.utils import tenant_context

from accounts.models import Role
from gateway.actions import do_set_budget
from gateway.alerts import budget_status
from gateway.models import BudgetAlert
from gateway.policy import reserve, settle
from gateway.tasks import send_budget_alerts
from lifecycle.actions import do_create_tenant
from tenants.models import Tenant
from tests.conftest import client_for, make_member


@pytest.fixture
def budget_tenant(committed_db: None) -> Tenant:
    suffix = uuid.uuid4().hex[:12]
    return do_create_tenant(
        slug=f"al_{suffix}", name=f"Alert test {suffix}", domains=[f"al-{suffix}.localhost"]
    )


def use_tokens(tenant: Tenant, tokens: int) -> None:
    with tenant_context(tenant):
        reservation = reserve(
            tenant_schema=tenant.schema_name,
            request_id=uuid.uuid4(),
            user_id=None,
            model="sim-model",
            prompt_tokens=tokens - 10,
            max_tokens=10,
        )
        settle(reservation, tokens_in=tokens - 10, tokens_out=10, cost=Decimal("0.01"))


def test_alert_is_e_mailed_once_per_budget_and_period_and_shown_as_a_banner(
    budget_tenant: Tenant, mailoutbox: list[Any]
) -> None:
    admin = make_member(budget_tenant, roles=[Role.TENANT_ADMIN.value], email="boss@alert.example")
    make_member(budget_tenant, roles=[Role.END_USER.value], email="user@alert.example")
    with tenant_context(budget_tenant):
        do_set_budget(daily_tokens=1000, monthly_tokens=100_000, alert_percent=80, actor_label="test")
        use_tokens(budget_tenant, 700)
        assert send_budget_alerts(budget_tenant.schema_name) == 0  # 70 %: below the threshold
        use_tokens(budget_tenant, 150)
        status = budget_status(budget_tenant.schema_name)
        assert [(b.budget, b.percent) for b in status.alerts] == [("daily_tokens", 85)]
        assert send_budget_alerts(budget_tenant.schema_name) == 1
        use_tokens(budget_tenant, 100)  # 95 %: still the same day, no second e-mail
        assert send_budget_alerts(budget_tenant.schema_name) == 0
        assert BudgetAlert.objects.count() == 1
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["boss@alert.example"]
    assert message.subject == f"[ConvoSuite] {budget_tenant.name} has used 85% of its daily token budget"
    assert "850 of 1,000 tokens (85%)" in message.body
    assert mail.outbox is mailoutbox

    body = client_for(budget_tenant, admin).get("/console/members/").content.decode()
    assert 'data-budget-alert="daily_tokens"' in body and "95% of the daily token budget used" in body


def test_no_alert_when_alerts_are_off(budget_tenant: Tenant, mailoutbox: list[Any]) -> None:
    make_member(budget_tenant, roles=[Role.TENANT_ADMIN.value], email="boss@alert.example")
    with tenant_context(budget_tenant):
        do_set_budget(daily_tokens=1000, alert_percent=None, actor_label="test")
        use_tokens(budget_tenant, 990)
        assert budget_status(budget_tenant.schema_name).alerts == []
        assert send_budget_alerts(budget_tenant.schema_name) == 0
    assert mailoutbox == []
