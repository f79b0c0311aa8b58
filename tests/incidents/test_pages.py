"""The incident pages through HTTP: the public status page (no sign-in, no tenant data), the platform's
incident pages, the tenant console's incident pages (another tenant's incident is a 404), thresholds, the
revoke-everything button, notices and the banners."""

from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import Role
from audit.models import AuditEvent
from gateway.api.actions import do_create_api_key
from gateway.api.models import ApiKey
from incidents.actions import do_open_incident
from incidents.models import Incident, IncidentTenant, ModelStatus, ServiceState
from incidents.status import do_set_status_note
from incidents.tenant.models import TenantNotice, WatchSettings
from tenants.models import Tenant
from tests.conftest import client_for, make_member

pytestmark = pytest.mark.django_db


def test_status_page_is_public_and_shows_models_not_tenants(tenants: dict[str, Tenant]) -> None:
    do_set_status_note(
        alias="sim-model", override="", note="Provider investigating elevated errors", actor_label="ops"
    )
    response = Client(HTTP_HOST="localhost").get("/status/")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-model="sim-model"' in page and "Provider investigating elevated errors" in page
    assert "acme" not in page.lower() and "globex" not in page.lower()
    data = Client(HTTP_HOST="localhost").get("/status/status.json").json()
    assert {model["model"] for model in data["models"]} >= {"sim-model", "sim-fallback"}
    assert len(data["models"][0]["history"]) == 48
    assert Client(HTTP_HOST="acme.localhost").get("/status/").status_code == 404


def test_a_pinned_outage_shows_a_banner_in_the_chat_of_tenants_using_the_model(acme: Tenant) -> None:
    do_set_status_note(
        alias="sim-model", override=ServiceState.OUTAGE, note="Down at the provider", actor_label="ops"
    )
    assert ModelStatus.objects.get(alias="sim-model").shown_state == "outage"
    page = client_for(acme, make_member(acme)).get("/chat/").content.decode()
    assert 'data-degraded-model="sim-model"' in page and "Down at the provider" in page
    assert 'href="http://localhost/status/"' in page  # the platform domain's page, not the tenant's


def test_tenant_admin_sees_own_incident_in_own_terms_and_not_another_tenants(
    acme: Tenant, globex: Tenant
) -> None:
    mine = do_open_incident(
        kind=Incident.Kind.CROSS_TENANT_LEAK, title="Another tenant's data blocked in a prompt of acme",
        detected_by="test", tenants=[("acme", IncidentTenant.Role.RECEIVING), ("globex", IncidentTenant.Role.SOURCE)],
        details={"where": "prompt"}, notify_platform=False,
    )  # fmt: skip
    theirs = do_open_incident(
        kind=Incident.Kind.OTHER, title="globex only", detected_by="test",
        tenants=[("globex", IncidentTenant.Role.AFFECTED)], notify_platform=False,
    )  # fmt: skip
    admin = client_for(acme, make_member(acme, roles=[Role.TENANT_ADMIN.value]))
    listing = admin.get("/console/incidents/").content.decode()
    assert mine.reference in listing and "globex" not in listing
    assert "Data of another organisation was stopped" in listing
    assert admin.get(f"/console/incidents/{mine.pk}/").status_code == 200
    assert admin.get(f"/console/incidents/{theirs.pk}/").status_code == 404
    assert client_for(acme, make_member(acme)).get("/console/incidents/").status_code == 403


def test_thresholds_are_validated_and_audited(acme: Tenant) -> None:
    admin = client_for(acme, make_member(acme, roles=[Role.TENANT_ADMIN.value]))
    form = {
        "spend_enabled": "on", "spend_multiplier": "8", "spend_min_tokens_per_minute": "5000", "spend_action": "contain",
        "new_key_enabled": "on", "new_key_hours": "12", "new_key_calls_per_minute": "20", "new_key_action": "contain",
        "hours_action": "alert", "new_model_enabled": "on", "new_model_action": "alert",
        "refused_enabled": "on", "refused_per_minute": "40", "refused_action": "alert", "outage_emails": "on",
    }  # fmt: skip
    bad = admin.post("/console/incidents/thresholds/", {**form, "spend_multiplier": "1"})
    assert bad.status_code == 400 and "from 2 to 1000" in bad.content.decode()
    assert admin.post("/console/incidents/thresholds/", form).status_code == 302
    with tenant_context(acme):
        saved = WatchSettings.objects.get()
        assert (saved.spend_multiplier, saved.hours_enabled, saved.outage_emails) == (8, False, True)
        event = AuditEvent.objects.filter(kind="incidents.watch_settings_changed").latest("seq")
        assert event.details["changes"]["spend_multiplier"] == {"from": 5, "to": 8}


def test_revoke_everything_ends_every_key_and_session_of_the_tenant_only(
    acme: Tenant, globex: Tenant
) -> None:
    with tenant_context(acme):
        do_create_api_key(name="integration")
    with tenant_context(globex):
        do_create_api_key(name="theirs")
    admin_user = make_member(acme, roles=[Role.TENANT_ADMIN.value])
    admin = client_for(acme, admin_user)
    colleague = client_for(acme, make_member(acme))
    other = client_for(globex, make_member(globex))
    assert admin.post("/console/incidents/revoke-credentials/").status_code == 400  # not confirmed
    response = admin.post("/console/incidents/revoke-credentials/", {"confirm": "yes"})
    assert response.status_code == 302
    with tenant_context(acme):
        assert not ApiKey.objects.filter(revoked_at__isnull=True).exists()
        assert AuditEvent.objects.filter(kind="security.credentials_revoked").exists()
    with tenant_context(globex):
        assert ApiKey.objects.filter(revoked_at__isnull=True).exists()
    assert colleague.get("/chat/").status_code == 302  # signed out: sent to sign in
    assert other.get("/chat/").status_code == 200
    assert Session.objects.filter(session_key=other.session.session_key).exists()


def test_notice_banner_until_an_admin_acknowledges_it(acme: Tenant) -> None:
    incident = do_open_incident(
        kind=Incident.Kind.OTHER,
        title="t",
        detected_by="test",
        tenants=[("acme", "affected")],
        notify_platform=False,
    )
    with tenant_context(acme):
        notice = TenantNotice.objects.create(
            incident_id=incident.pk,
            reference=incident.reference,
            subject="Please read",
            body="b",
            sent_by_label="ops",
        )
    admin = client_for(acme, make_member(acme, roles=[Role.TENANT_ADMIN.value]))
    assert f'data-notice="{notice.pk}"' in admin.get("/console/usage/").content.decode()
    assert (
        f'data-notice="{notice.pk}"' not in client_for(acme, make_member(acme)).get("/chat/").content.decode()
    )
    admin.post(f"/console/incidents/notices/{notice.pk}/acknowledge/")
    assert 'role="alert" data-notice' not in admin.get("/console/usage/").content.decode()


def test_platform_admin_pages(tenants: dict[str, Tenant], acme: Tenant, mailoutbox: list[Any]) -> None:
    staff = make_member(
        tenants["public"], roles=[Role.PLATFORM_ADMIN.value], is_staff=True, email="ops@p.test"
    )
    platform = client_for(tenants["public"], staff)
    make_member(acme, roles=[Role.TENANT_ADMIN.value], email="boss@acme.test")
    incident = do_open_incident(
        kind=Incident.Kind.OTHER, title="Platform page test", detected_by="test",
        tenants=[("acme", IncidentTenant.Role.AFFECTED)], notify_platform=False,
    )  # fmt: skip
    assert incident.reference in platform.get("/platform/incidents/").content.decode()
    detail = platform.get(f"/platform/incidents/{incident.pk}/").content.decode()
    assert "boss@acme.test" in detail and 'id="send-notice-acme"' in detail
    platform.post(
        f"/platform/incidents/{incident.pk}/notice/", {"tenant": "acme", "subject": "Hello", "body": "Text"}
    )
    assert ["boss@acme.test"] in [m.to for m in mailoutbox]  # one e-mail per admin of acme
    platform.post(f"/platform/incidents/{incident.pk}/status/", {"status": "resolved", "note": "done"})
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.window_end is not None
