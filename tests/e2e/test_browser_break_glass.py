"""Break-glass end to end: a platform admin opens a grant with a reason, reads one conversation, and the
tenant admin sees every page read in the console's audit events."""

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Stack
from tests.e2e.conftest import screenshot
from tests.e2e.test_browser_chat import PASSWORD, sign_in, start_conversation_and_ask

pytestmark = pytest.mark.browser
REASON = "INC-3141: Alice reports a wrong answer about the gym discount"


def sign_in_as_platform_staff(page: Page, stack: Stack) -> None:
    page.goto(f"http://localhost:{stack.web_port}/")
    page.click("#platform-sign-in")
    expect(page.locator("#username")).to_be_visible()
    page.fill("#username", "ops@convosuite.example")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(rf"http://localhost:{stack.web_port}/"))


def test_platform_admin_reads_under_a_grant_and_the_tenant_admin_sees_it(stack: Stack, new_page: Any) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="The gym discount is 20%.")
    alice = new_page()
    sign_in(alice, stack, "acme", "alice@acme.example")
    start_conversation_and_ask(alice, "What is the gym discount?")
    # Often the session's first model call: the worker loads LiteLLM on it (slow on a busy 2-core machine).
    expect(alice.locator("[data-role=assistant][data-status=done]").last).to_be_visible(timeout=60_000)

    ops = new_page()
    sign_in_as_platform_staff(ops, stack)
    ops.goto(f"http://localhost:{stack.web_port}/platform/break-glass/")
    ops.select_option("#grant-tenant", "acme")
    ops.fill("#grant-minutes", "15")
    ops.fill("#grant-reason", "too short")
    ops.evaluate("document.getElementById('grant-reason').removeAttribute('minlength')")
    ops.click("#open-grant")
    expect(ops.locator("#grant-error")).to_contain_text("at least 20 characters")
    ops.fill("#grant-reason", REASON)
    ops.click("#open-grant")
    expect(ops.locator("#break-glass-banner")).to_contain_text("Break-glass on Acme Corporation")
    ops.get_by_role("link", name="What is the gym discount?").first.click()
    expect(ops.locator("#grant-transcript")).to_contain_text("The gym discount is 20%.")
    screenshot(ops, "platform-break-glass-conversation")
    ops.goto(f"http://localhost:{stack.web_port}/platform/usage/")
    expect(ops.locator("[data-tenant=acme]")).to_be_visible()
    screenshot(ops, "platform-usage")

    admin = new_page()
    sign_in(admin, stack, "acme", "admin@acme.example")
    admin.goto(stack.url("acme", "/console/audit-events/?kind=break_glass."))
    expect(admin.locator("#audit-table")).to_contain_text(REASON)
    expect(admin.locator("tr[data-kind='break_glass.read']").first).to_contain_text("/conversations/")
    expect(admin.locator("tr[data-kind='break_glass.read']").first).to_contain_text("ops@convosuite.example")
    screenshot(admin, "console-audit-break-glass")
