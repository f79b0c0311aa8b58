"""The audit console in headless Chromium: a tenant admin starts an export, watches its progress and gets
a download link; the page shows the public key and the verifier download."""

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import Stack
from tests.e2e.conftest import screenshot
from tests.e2e.test_browser_chat import sign_in, start_conversation_and_ask

pytestmark = pytest.mark.browser


def test_tenant_admin_exports_model_calls_from_the_audit_console(stack: Stack, new_page: Any) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="Noted.")
    admin = new_page()
    sign_in(admin, stack, "acme", "admin@acme.example")
    expect(admin).to_have_url(re.compile(r"/chat/$"))
    start_conversation_and_ask(admin, "Please note this for the auditors.")
    expect(admin.locator("[data-role=assistant][data-status=done]").last).to_contain_text(
        "Noted.", timeout=30_000
    )

    admin.goto(stack.url("acme", "/console/audit/"))
    expect(admin.locator("h1")).to_have_text("Evidence export")
    expect(admin.locator("#public-key")).to_contain_text("BEGIN PUBLIC KEY")
    expect(admin.locator("#download-verifier")).to_have_attribute(
        "href", "/console/audit/verifier/verify_export.py"
    )
    rows = admin.locator("#exports tbody tr")
    before = rows.count()
    admin.click("#start-export")
    expect(rows).to_have_count(before + 1)
    newest = rows.first  # newest first; it polls itself until the worker has written the file
    expect(newest.get_by_role("link", name="Download")).to_be_visible(timeout=30_000)
    expect(newest).to_contain_text("Ready")
    expect(newest).not_to_contain_text(" 0 records")
    screenshot(admin, "audit-console")
    # The events themselves are on the Audit events page, in words, not notation.
    admin.click("#events-pointer a")
    expect(admin.locator("h1")).to_have_text("Audit events")
    completed = admin.locator("tr[data-kind='audit.export_completed']").first
    expect(completed).to_contain_text("Audit: export completed")
    expect(completed.locator("[data-details]")).not_to_contain_text("{")

    alice = new_page()
    sign_in(alice, stack, "acme", "alice@acme.example")
    expect(alice).to_have_url(re.compile(r"/chat/$"))
    alice.goto(stack.url("acme", "/console/audit/"))
    expect(alice.locator("body")).not_to_contain_text("Evidence export")
