"""The incident pages in Chromium, against the real stack, with screenshots (desktop 1366x850 and phone
390x844): a platform admin works a cross-tenant leak incident (blast radius, draft notice, send), the tenant
admin sees the notice banner, reads and acknowledges it; the public status page and the degraded-model banner
in the chat; the console's incident list with thresholds and a compromise incident's audit replay; an outage's
post-mortem."""

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context, tenant_context
from playwright.sync_api import expect

from gateway import screening
from gateway.errors import CrossTenantBlocked
from gateway.service import complete
from incidents.actions import do_open_incident, do_set_incident_status
from incidents.anomalies import Trip, do_trip
from incidents.models import Incident
from incidents.postmortem import do_draft_postmortem
from incidents.status import do_set_status_note
from lifecycle.actions import do_create_tenant
from tenants.models import Tenant
from tests.conftest import Stack
from tests.e2e.conftest import DESKTOP, PHONE, screenshot
from tests.e2e.test_browser_break_glass import sign_in_as_platform_staff
from tests.e2e.test_browser_chat import sign_in

pytestmark = pytest.mark.browser
T = TypeVar("T")


@pytest.fixture
def db(django_db_blocker: Any) -> Iterator[Callable[[Callable[[], T]], T]]:
    """Runs a function against the database from a thread of its own (Playwright's event loop lives in this
    one, where Django refuses database calls); committed, so the stack sees it."""

    def run(function: Callable[[], T]) -> T:
        results: list[Any] = []

        def target() -> None:
            try:
                with django_db_blocker.unblock():
                    results.append(function())
            except BaseException as error:  # noqa: BLE001 - raised again in the test's thread
                results.append(error)
            finally:
                connection.close()

        worker = threading.Thread(target=target)
        worker.start()
        worker.join()
        if isinstance(results[0], BaseException):
            raise results[0]
        return results[0]  # type: ignore[no-any-return]

    yield run


def leak_incident(tenants: dict[str, Tenant]) -> tuple[int, str]:
    """A real blocked call: acme's marker in a call of a fresh tenant (containment off, so acme keeps working;
    the withheld record, which can never be deleted, lands in the fresh tenant, not in the shared acme)."""
    slug = f"leak_{uuid.uuid4().hex[:8]}"
    receiving = do_create_tenant(slug=slug, name="Initech", domains=[f"{slug.replace('_', '-')}.localhost"])
    with tenant_context(tenants["acme"]):
        prompt = screening.plant("Acme pricing sheet, internal.", "prompt")
    request_id = uuid.uuid4()
    with override_settings(INCIDENTS_LEAK_CONTAINMENT="off"), tenant_context(receiving):
        try:
            complete(tenant_schema=slug, request_id=request_id, user_id=None, model="sim-model",
                     messages=[{"role": "system", "content": prompt}, {"role": "user", "content": "Hi"}])  # fmt: skip
        except CrossTenantBlocked:
            pass
    return Incident.objects.get(details__request_id=str(request_id)).pk, slug


def resolve(incident_id: int) -> None:
    do_set_incident_status(Incident.objects.get(pk=incident_id), "resolved", actor_label="browser test")


def test_platform_admin_works_a_leak_and_the_tenant_admin_reads_the_notice(
    stack: Stack, new_page: Any, db: Any, tenants: dict[str, Tenant]
) -> None:
    admin = new_page(viewport=DESKTOP)
    sign_in(
        admin, stack, "acme", "admin@acme.example"
    )  # the identity provider's first sign-in makes the member
    expect(admin.locator("#console-link").first).to_be_visible()
    incident_id, receiving = db(lambda: leak_incident(tenants))
    try:
        ops = new_page(viewport=DESKTOP)
        sign_in_as_platform_staff(ops, stack)
        ops.goto(f"http://localhost:{stack.web_port}/platform/incidents/")
        expect(ops.locator(f"[data-incident='{incident_id}']")).to_contain_text("Cross-tenant leak")
        screenshot(ops, "incidents-platform-list")
        ops.click(f"[data-incident='{incident_id}'] a")
        expect(ops.locator(f"#tenant-{receiving} [data-chain=model_calls]")).to_have_count(1)
        expect(ops.locator(f"#tenant-{receiving}")).to_contain_text("chains intact")
        expect(ops.locator("#tenant-acme")).to_contain_text("source")
        expect(ops.locator("#notification-list")).to_contain_text("admin@acme.example")
        screenshot(ops, "incident-platform-leak")
        phone = new_page(viewport=PHONE)
        sign_in_as_platform_staff(phone, stack)
        phone.goto(f"http://localhost:{stack.web_port}/platform/incidents/{incident_id}/")
        screenshot(phone, "incident-platform-leak-phone")

        ops.click("#send-notice-acme")
        expect(ops.locator(".flash-stack, [role=status]").first).to_contain_text("Notice sent to acme")
        expect(ops.locator("#timeline")).to_contain_text("Notice sent to acme")

        admin.goto(stack.url("acme", "/console/usage/"))
        banner = admin.locator("#incident-banners [data-notice]")
        expect(banner).to_contain_text("your data was stopped before it reached another organisation")
        screenshot(admin, "console-incident-notice-banner")
        banner.locator("a").click()
        expect(admin.locator(".notice-body")).to_contain_text("stopped before any of the text reached")
        expect(admin.locator("body")).not_to_contain_text(receiving)
        expect(admin.locator("body")).not_to_contain_text("Initech")
        screenshot(admin, "console-incident-notice")
        admin.locator("form.form-actions button").click()
        admin.goto(stack.url("acme", "/console/usage/"))
        expect(admin.locator("#incident-banners [data-notice]")).to_have_count(0)
    finally:
        db(lambda: resolve(incident_id))


def test_status_page_and_the_degraded_banner(stack: Stack, new_page: Any, db: Any) -> None:
    ops = new_page(viewport=DESKTOP)
    sign_in_as_platform_staff(ops, stack)
    try:
        ops.goto(f"http://localhost:{stack.web_port}/platform/status/")
        ops.select_option("#override-sim-model", "outage")
        ops.fill("#note-sim-model", "The provider is investigating elevated errors; calls go to fallbacks.")
        ops.click("#save-sim-model")
        expect(ops.locator("tr[data-model=sim-model]")).to_contain_text("pinned")
        screenshot(ops, "platform-status-editor")

        for name, viewport in (("status-page-outage", DESKTOP), ("status-page-outage-phone", PHONE)):
            anyone = new_page(viewport=viewport)
            anyone.goto(f"http://localhost:{stack.web_port}/status/")
            expect(anyone.locator("[data-model-state=sim-model]")).to_have_text("Outage")
            expect(anyone.locator("#overall")).to_have_attribute("data-overall", "outage")
            expect(anyone.locator("body")).not_to_contain_text("acme")
            screenshot(anyone, name)

        for name, viewport in (("chat-degraded-banner", DESKTOP), ("chat-degraded-banner-phone", PHONE)):
            alice = new_page(viewport=viewport)
            sign_in(alice, stack, "acme", "alice@acme.example")
            expect(alice.locator("[data-degraded-model=sim-model]")).to_contain_text(
                "investigating elevated errors"
            )
            screenshot(alice, name)
    finally:
        db(lambda: do_set_status_note(alias="sim-model", override="", note="", actor_label="browser test"))
    anyone = new_page(viewport=DESKTOP)
    anyone.goto(f"http://localhost:{stack.web_port}/status/")
    expect(anyone.locator("[data-model-state=sim-model]")).not_to_have_text("Outage")


def test_console_incidents_thresholds_and_a_compromise_replay(
    stack: Stack, new_page: Any, db: Any, tenants: dict[str, Tenant]
) -> None:
    def trip() -> int:
        with tenant_context(tenants["acme"]):
            facts = {"model": "sim-fallback", "source": "key:browsertest1"}
            return do_trip("acme", Trip("new_model", "alert", facts, "sim-fallback")).pk

    incident_id = db(trip)
    try:
        admin = new_page(viewport=DESKTOP)
        sign_in(admin, stack, "acme", "admin@acme.example")
        admin.goto(stack.url("acme", "/console/incidents/"))
        expect(admin.locator(f"#tenant-incidents [data-incident='{incident_id}']")).to_contain_text(
            "Unusual activity"
        )
        expect(admin.locator("#thresholds [data-rule=spend] select")).to_have_value("contain")
        screenshot(admin, "console-incidents")
        admin.click(f"#tenant-incidents [data-incident='{incident_id}'] a")
        expect(admin.locator("#replay")).to_contain_text("security.anomaly_detected")
        screenshot(admin, "console-incident-compromise")
        phone = new_page(viewport=PHONE)
        sign_in(phone, stack, "acme", "admin@acme.example")
        phone.goto(stack.url("acme", "/console/incidents/"))
        screenshot(phone, "console-incidents-phone")
    finally:
        db(lambda: resolve(incident_id))


def test_outage_post_mortem_page(stack: Stack, new_page: Any, db: Any) -> None:
    def outage() -> int:
        with schema_context("public"):
            incident = do_open_incident(
                kind=Incident.Kind.PROVIDER_OUTAGE, title="sim-model (simulator) unavailable", detected_by="circuit breaker",
                details={"model": "sim-model", "provider": "simulator"}, notify_platform=False,
            )  # fmt: skip
            do_set_incident_status(
                incident, "resolved", actor_label="circuit breaker", note="sim-model answers again"
            )
            do_draft_postmortem(incident, actor_label="browser test")
            return incident.pk

    incident_id = db(outage)
    ops = new_page(viewport=DESKTOP)
    sign_in_as_platform_staff(ops, stack)
    ops.goto(f"http://localhost:{stack.web_port}/platform/incidents/{incident_id}/")
    expect(ops.locator("#postmortem-body")).to_contain_text(
        "| tenant | calls | served by the model | failed over"
    )
    screenshot(ops, "incident-platform-postmortem")
