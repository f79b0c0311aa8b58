"""The model catalogue and circuit breakers in the platform admin, in a real browser: the list, an edit the
form refuses with a clear error, and closing an open circuit."""

import json
import re
import threading
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import override_settings
from playwright.sync_api import expect

from gateway import breaker
from lifecycle.actions import do_offboard_tenant
from tenants.models import Tenant
from tests.conftest import Stack
from tests.e2e.conftest import screenshot
from tests.e2e.test_browser_break_glass import sign_in_as_platform_staff
from tests.e2e.test_browser_chat import sign_in

pytestmark = pytest.mark.browser


def test_platform_admin_edits_the_catalogue_and_closes_a_circuit(stack: Stack, new_page: Any) -> None:
    with override_settings(GATEWAY_BREAKER_THRESHOLD=1, GATEWAY_BREAKER_COOLDOWN_SECONDS=600):
        breaker.record_failure(
            "sim-fallback", "InternalServerError: the provider answered 503 Service Unavailable"
        )
    try:
        ops = new_page()
        sign_in_as_platform_staff(ops, stack)
        ops.goto(f"http://localhost:{stack.web_port}/admin/catalogue/catalogueentry/")
        expect(ops.locator("#result_list")).to_contain_text("sim-model")
        expect(ops.locator("#result_list")).to_contain_text("no price (cannot be allowed)")  # sim-unpriced
        screenshot(ops, "admin-catalogue-list")

        ops.click("#result_list a:text-is('sim-model')")
        expect(ops.locator("h1")).to_contain_text("Change model")
        screenshot(ops, "admin-catalogue-change")
        ops.fill("#id_input_cost_per_token", "-0.000001")
        ops.click("input[name=_save]")
        expect(ops.locator(".errorlist")).to_contain_text("A price cannot be negative.")
        screenshot(ops, "admin-catalogue-refused")

        ops.goto(f"http://localhost:{stack.web_port}/admin/catalogue/catalogueentry/")
        ops.click(".object-tools a:text-is('Circuit breakers')")
        row = ops.locator("#circuit-sim-fallback")
        expect(row).to_contain_text("open")
        expect(row).to_contain_text("503 Service Unavailable")
        screenshot(ops, "admin-circuits")
        row.locator("input[type=submit]").click()
        expect(ops.locator(".messagelist")).to_contain_text("The circuit of sim-fallback is closed.")
        expect(ops.locator("#circuit-sim-fallback")).to_contain_text("closed")
        expect(ops.locator("#content-main")).to_contain_text(
            "sim-fallback by platform admin ops@convosuite.example"
        )
        ops.goto(f"http://localhost:{stack.web_port}/admin/catalogue/cataloguechange/")
        expect(ops.locator("#result_list")).to_contain_text("Circuit reset")
        screenshot(ops, "admin-catalogue-changes")
    finally:
        breaker.reset("sim-fallback")


def test_platform_admin_onboards_a_tenant_from_the_admin(
    stack: Stack, new_page: Any, tmp_path: Any, django_db_blocker: Any
) -> None:
    slug = f"web_{uuid.uuid4().hex[:6]}"
    host = slug.replace("_", "-")
    ops = new_page()
    sign_in_as_platform_staff(ops, stack)
    ops.goto(f"http://localhost:{stack.web_port}/admin/tenants/tenant/add/")
    expect(ops.locator("h1")).to_contain_text("Onboard a tenant")
    ops.fill("#id_slug", "Not A Slug")
    ops.fill("#id_name", "Web Onboarded Ltd")
    ops.fill("#id_domains", f"{host}.localhost\nacme.localhost")
    ops.click("input[value='Onboard tenant']")
    expect(ops.locator(".errornote")).to_contain_text("Please correct the errors below.")
    expect(ops.locator("#content-main")).to_contain_text("Already used by another tenant: acme.localhost.")
    screenshot(ops, "admin-onboard-refused")
    ops.fill("#id_slug", slug)
    ops.fill("#id_domains", f"{host}.localhost")
    ops.click("input[value='Onboard tenant']")
    expect(ops.locator(".messagelist")).to_contain_text(f"Web Onboarded Ltd is ready at {host}.localhost")
    screenshot(ops, "admin-onboarded")
    # Its first admin, added to the development identity provider's users file (docs/identity.md), signs in
    # on the new domain at once: no restart, no redirect URI to register by hand.
    users = json.loads(stack.users_file.read_text())
    users["users"].append({
        "sub": f"{slug}-admin", "username": f"admin@{host}.example", "password": "convosuite-demo",
        "email": f"admin@{host}.example", "name": "Wendy Web", "tenant": slug, "roles": ["tenant_admin", "end_user"],
    })  # fmt: skip
    stack.users_file.write_text(json.dumps(users))
    wendy = new_page()
    sign_in(wendy, stack, host, f"admin@{host}.example")
    expect(wendy).to_have_url(re.compile(rf"http://{host}\.localhost:\d+/chat/$"))
    wendy.goto(f"http://{host}.localhost:{stack.web_port}/console/usage/")
    expect(wendy.locator("h1")).to_have_text("Usage")
    screenshot(wendy, "onboarded-tenant-console")
    # Playwright's sync API keeps an event loop in this thread, where Django refuses database calls.
    failures: list[BaseException] = []

    def offboard() -> None:
        try:
            with django_db_blocker.unblock():
                do_offboard_tenant(
                    Tenant.objects.get(schema_name=slug), archive_dir=tmp_path, acting_label="test"
                )
        except BaseException as error:  # noqa: BLE001 - reported below, in the test's thread
            failures.append(error)
        finally:
            connection.close()  # this thread's own connection; left open it would block dropping the test DB

    cleanup = threading.Thread(target=offboard)
    cleanup.start()
    cleanup.join()
    assert failures == []
