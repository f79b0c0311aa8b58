"""Platform admins read tenant content only under an open break-glass grant, and every read is audited in the
tenant's own schema (where its admins see it). Django admin shows no tenant content at all."""

from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import Role, User
from audit.models import AuditEvent
from lifecycle.break_glass import BreakGlassRejected, do_open_break_glass_grant
from tenants.models import BreakGlassGrant, Tenant
from tests.conftest import client_for, make_member
from tests.factories import ConversationFactory, MessageFactory, ModelCallFactory

pytestmark = pytest.mark.django_db
REASON = "INC-2041: customer reports wrong answers in a conversation"


@pytest.fixture
def staff(tenants: dict[str, Tenant]) -> User:
    return make_member(
        tenants["public"], roles=[Role.PLATFORM_ADMIN.value], is_staff=True, email="ops@convosuite.example"
    )


@pytest.fixture
def platform(tenants: dict[str, Tenant], staff: User) -> Any:
    return client_for(tenants["public"], staff)


def break_glass_events(tenant: Tenant) -> list[AuditEvent]:
    with tenant_context(tenant):
        return list(AuditEvent.objects.filter(kind__startswith="break_glass.").order_by("id"))


def test_opening_a_grant_is_audited_in_the_tenant_and_emails_its_admins(
    acme: Tenant, platform: Any, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    make_member(acme, roles=[Role.TENANT_ADMIN.value], email="boss@acme.example")
    make_member(acme, roles=[Role.END_USER.value], email="worker@acme.example")
    with django_capture_on_commit_callbacks(execute=True):
        response = platform.post(
            "/platform/break-glass/", {"tenant": "acme", "reason": REASON, "minutes": "15"}
        )
    grant = BreakGlassGrant.objects.get(tenant=acme, reason=REASON)
    assert (
        response.status_code == 302
        and response["Location"] == f"/platform/break-glass/{grant.pk}/conversations/"
    )
    assert timedelta(minutes=14) < grant.expires_at - grant.opened_at <= timedelta(minutes=15)
    opened = break_glass_events(acme)[-1]
    assert opened.kind == "break_glass.opened" and opened.details["reason"] == REASON
    assert "ops@convosuite.example" in opened.actor_label
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert "boss@acme.example" in mail.to and "worker@acme.example" not in mail.to
    assert REASON in mail.body and "Acme Corporation" in mail.subject


@pytest.mark.parametrize(
    ("reason", "minutes", "message"),
    [
        ("too short", 10, "at least 20 characters"),
        (REASON, 61, "between 1 and 60 minutes"),
        (REASON, 0, "between 1 and 60 minutes"),
    ],
)
def test_grant_needs_a_written_reason_and_at_most_an_hour(
    acme: Tenant, platform: Any, reason: str, minutes: int, message: str
) -> None:
    response = platform.post(
        "/platform/break-glass/", {"tenant": "acme", "reason": reason, "minutes": minutes}
    )
    assert response.status_code == 400 and message in response.content.decode()
    assert not BreakGlassGrant.objects.filter(tenant=acme, reason=reason).exists()


def test_grant_for_the_platform_itself_is_refused(tenants: dict[str, Tenant], staff: User) -> None:
    with pytest.raises(BreakGlassRejected):
        do_open_break_glass_grant(staff, tenants["public"], reason=REASON, minutes=5)


def test_every_page_read_under_a_grant_is_an_audit_event_the_tenant_admin_sees(
    acme: Tenant, staff: User, platform: Any
) -> None:
    owner = make_member(acme)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=owner, title="Payroll question")
        MessageFactory.create(conversation=conversation, content="What is my salary band?")
        call = ModelCallFactory.create(user=owner, response="Band C")
    grant = do_open_break_glass_grant(staff, acme, reason=REASON, minutes=10)
    pages = [
        f"/platform/break-glass/{grant.pk}/conversations/",
        f"/platform/break-glass/{grant.pk}/conversations/{conversation.id}/",
        f"/platform/break-glass/{grant.pk}/model-calls/",
        f"/platform/break-glass/{grant.pk}/model-calls/{call.id}/",
    ]
    bodies = [platform.get(page) for page in pages]
    assert [response.status_code for response in bodies] == [200, 200, 200, 200]
    assert "What is my salary band?" in bodies[1].content.decode()
    assert "Band C" in bodies[3].content.decode()
    reads = [event for event in break_glass_events(acme) if event.kind == "break_glass.read"]
    assert [event.details["path"] for event in reads] == pages
    assert reads[1].details["conversation"] == str(conversation.id)
    assert {event.details["grant"] for event in reads} == {grant.pk}

    tenant_admin = make_member(acme, roles=[Role.TENANT_ADMIN.value])
    audit_page = (
        client_for(acme, tenant_admin).get("/console/audit-events/?kind=break_glass.").content.decode()
    )
    assert audit_page.count("break_glass.read") >= 4 and "break_glass.opened" in audit_page
    assert f"/platform/break-glass/{grant.pk}/conversations/{conversation.id}/" in audit_page


def test_expired_grant_gives_403_and_reads_nothing(acme: Tenant, staff: User, platform: Any) -> None:
    grant = do_open_break_glass_grant(staff, acme, reason=REASON, minutes=1)
    BreakGlassGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    reads_before = len(break_glass_events(acme))
    response = platform.get(f"/platform/break-glass/{grant.pk}/conversations/")
    assert response.status_code == 403
    assert len(break_glass_events(acme)) == reads_before


def test_closed_grant_gives_403_and_closing_is_audited(acme: Tenant, staff: User, platform: Any) -> None:
    grant = do_open_break_glass_grant(staff, acme, reason=REASON, minutes=30)
    assert platform.post(f"/platform/break-glass/{grant.pk}/close/").status_code == 302
    assert platform.get(f"/platform/break-glass/{grant.pk}/model-calls/").status_code == 403
    assert break_glass_events(acme)[-1].kind == "break_glass.closed"


def test_a_grant_opens_only_its_own_tenant(acme: Tenant, globex: Tenant, staff: User, platform: Any) -> None:
    with tenant_context(globex):
        globex_conversation = ConversationFactory.create(owner=make_member(globex), title="Globex plans")
    grant = do_open_break_glass_grant(staff, acme, reason=REASON, minutes=10)
    response = platform.get(f"/platform/break-glass/{grant.pk}/conversations/{globex_conversation.id}/")
    assert response.status_code == 404 and "Globex plans" not in response.content.decode()


def test_another_staff_members_grant_is_not_usable(
    acme: Tenant, tenants: dict[str, Tenant], staff: User
) -> None:
    grant = do_open_break_glass_grant(staff, acme, reason=REASON, minutes=10)
    colleague = make_member(tenants["public"], roles=[Role.PLATFORM_ADMIN.value], is_staff=True)
    response = client_for(tenants["public"], colleague).get(
        f"/platform/break-glass/{grant.pk}/conversations/"
    )
    assert response.status_code == 404


def test_platform_session_cannot_read_tenant_pages_on_the_tenant_domain(acme: Tenant, platform: Any) -> None:
    assert platform.get("/chat/", HTTP_HOST="acme.localhost").status_code == 403
    assert platform.get("/console/model-calls/", HTTP_HOST="acme.localhost").status_code == 403


TENANT_CONTENT_APPS = {app for app in settings.TENANT_APPS if app not in settings.SHARED_APPS}


def test_django_admin_registers_no_tenant_content_model() -> None:
    registered = {model._meta.app_label for model in admin.site._registry}
    tenant_labels = {config.label for config in apps.get_app_configs() if config.name in TENANT_CONTENT_APPS}
    assert tenant_labels >= {"chat", "gateway", "audit", "prompts", "knowledge"}
    assert registered & tenant_labels == set()
    # accounts.User exists in every tenant schema too: not in the admin either (members are in the console).
    assert User not in admin.site._registry


def test_django_admin_pages_for_tenant_content_do_not_exist(platform: Any) -> None:
    assert platform.get("/admin/").status_code == 200
    for path in ["/admin/chat/conversation/", "/admin/gateway/modelcall/", "/admin/audit/auditevent/",
                 "/admin/accounts/user/"]:  # fmt: skip
        assert platform.get(path).status_code == 404, path


def test_platform_usage_shows_numbers_per_tenant_and_no_content(
    acme: Tenant, globex: Tenant, platform: Any
) -> None:
    with tenant_context(acme):
        ModelCallFactory.create(tokens_in=4000, tokens_out=321, response="confidential acme answer")
    response = platform.get("/platform/usage/")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-tenant="acme"' in body and 'data-tenant="globex"' in body
    assert "confidential acme answer" not in body
    acme_row = next(row for row in response.context["rows"] if row.tenant.schema_name == "acme")
    assert acme_row.month.tokens >= 4321
