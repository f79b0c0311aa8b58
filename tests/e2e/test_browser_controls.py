"""The console's controls in headless Chromium, against the real stack (web, worker, identity provider,
simulator): the tenant admin sets a budget and flips the kill switch, an end-user's chat shows the refusal,
the admin flips it back and the chat answers again; models and API keys pages; screenshots of each."""

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Stack
from tests.e2e.conftest import screenshot
from tests.e2e.test_browser_chat import sign_in, start_conversation_and_ask

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
REASON = "Spending review, back this afternoon."


def manage(stack: Stack, *args: str) -> None:
    """The operator's command line (same actions): a safety net so a failing test never leaves acme off."""
    subprocess.run(  # noqa: S603 - fixed arguments, our own manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**os.environ, **stack.env}, check=True,
        capture_output=True,
    )  # fmt: skip


def flip_kill_switch(admin: Page, stack: Stack, *, reason: str | None) -> None:
    admin.goto(stack.url("acme", "/console/kill-switch/"))
    if reason is not None:
        admin.fill("#kill-reason", reason)
    admin.click("#kill-switch-button")
    expect(admin.locator("#kill-switch-confirm")).to_be_visible()
    admin.click("#kill-switch-confirm-button")


def test_admin_sets_budget_and_kill_switch_stops_and_resumes_the_chat(stack: Stack, new_page: Any) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="Here is a short answer.")
    admin = new_page()
    sign_in(admin, stack, "acme", "admin@acme.example")
    expect(admin).to_have_url(re.compile(r"/chat/$"))
    try:
        admin.goto(stack.url("acme", "/console/budgets/"))
        original_daily = admin.input_value("#id_daily_token_budget")
        admin.fill("#id_daily_token_budget", "-1")
        admin.click("#save-budgets")
        expect(admin.locator("#id_daily_token_budget-error")).to_have_text("Enter 0 or more.")
        admin.fill("#id_daily_token_budget", "150000")
        admin.fill("#id_budget_alert_percent", "80")
        admin.click("#save-budgets")
        expect(admin.locator(".notice--success")).to_contain_text("Budgets and limits saved.")
        expect(admin.locator("[data-budget=daily_tokens] .meter__meta")).to_contain_text("of 150,000 tokens")
        screenshot(admin, "console-budgets")

        admin.goto(stack.url("acme", "/console/kill-switch/"))
        admin.click("#kill-switch-button")  # no reason yet: the dialog does not open
        expect(admin.locator("#kill-switch-confirm")).to_be_hidden()
        admin.fill("#kill-reason", REASON)
        admin.click("#kill-switch-button")
        expect(admin.locator("#kill-switch-confirm")).to_be_visible()
        screenshot(admin, "console-kill-switch-confirm")
        admin.click("#kill-switch-confirm-button")
        expect(admin.locator("#kill-switch-state")).to_have_attribute("data-state", "on")
        expect(admin.locator("#kill-switch-banner")).to_contain_text(REASON)
        screenshot(admin, "console-kill-switch-on")
        admin.click("[data-nav=usage]")
        expect(admin.locator("#kill-switch-banner")).to_be_visible()
        expect(admin.locator("#budget-bars")).to_be_visible()
        screenshot(admin, "console-usage-kill-switch-on")

        # The end-user is told before typing: a banner with the reason, and the message box is off.
        alice = new_page()
        sign_in(alice, stack, "acme", "alice@acme.example")
        banner = alice.locator("#assistant-unavailable")
        expect(banner).to_contain_text("switched off for this workspace by an administrator")
        expect(banner).to_contain_text(REASON)
        expect(alice.locator("#message-input")).to_be_disabled()
        expect(alice.locator("#send-button")).to_be_disabled()
        screenshot(alice, "chat-kill-switch-banner")

        flip_kill_switch(admin, stack, reason=None)
        expect(admin.locator("#kill-switch-state")).to_have_attribute("data-state", "off")
        expect(admin.locator("#kill-switch-banner")).to_have_count(0)
        screenshot(admin, "console-kill-switch-off")

        alice.reload()
        expect(alice.locator("#assistant-unavailable")).to_have_count(0)
        start_conversation_and_ask(alice, "And now?")
        expect(alice.locator("[data-role=assistant][data-status=done]").last).to_contain_text(
            "Here is a short answer.", timeout=30_000
        )

        admin.goto(stack.url("acme", "/console/budgets/"))
        admin.fill("#id_daily_token_budget", original_daily)
        admin.click("#save-budgets")
        expect(admin.locator(".notice--success")).to_be_visible()
    finally:
        manage(stack, "kill_switch", "off", "--tenant", "acme")


def test_admin_manages_models_and_api_keys(stack: Stack, new_page: Any) -> None:
    admin = new_page()
    sign_in(admin, stack, "acme", "admin@acme.example")
    expect(admin).to_have_url(re.compile(r"/chat/$"))
    admin.goto(stack.url("acme", "/console/models/"))
    expect(admin.locator("#allow-sim-unpriced")).to_be_disabled()
    expect(admin.locator("[data-model=sim-unpriced]")).to_contain_text("No price in the catalogue")
    screenshot(admin, "console-models")

    admin.click("[data-nav=api-keys]")
    admin.fill("#key-name", "Browser test script")
    admin.fill("#key-rpm", "30")
    admin.click("#create-key")
    secret = admin.locator("#new-key-secret")
    expect(secret).to_contain_text("cs-acme.")
    # The snippets are ready to paste: this tenant's base URL and the key itself.
    expect(admin.locator("#snippet-curl")).to_contain_text(f"{stack.url('acme', '/v1')}/chat/completions")
    expect(admin.locator("#snippet-python")).to_contain_text(secret.inner_text())
    screenshot(admin, "console-api-key-created")
    admin.click("#copy-key")
    expect(admin.locator("#copy-key")).to_have_text(re.compile("Copied|Copy"))

    # Reloading the page that showed the secret (POST-redirect-GET) creates nothing and shows no secret.
    admin.reload()
    expect(admin.locator("#secret-gone")).to_contain_text("was shown once")
    expect(admin.locator("#new-key-secret")).to_have_count(0)
    admin.go_back()
    expect(admin.locator("#new-key-secret")).to_have_count(0)
    admin.click("[data-nav=api-keys]")
    expect(admin.locator("#new-key-secret")).to_have_count(0)  # shown once
    expect(admin.locator("tr[data-key='Browser test script']")).to_have_count(1)
    expect(admin.locator("tr[data-key='Browser test script']")).to_contain_text("30 requests/min")
    row = admin.locator("tr[data-key='Browser test script']").first
    row.locator("button[data-open-dialog]").click()
    dialog = row.locator("dialog")
    expect(dialog).to_be_visible()
    screenshot(admin, "console-api-key-revoke-confirm")
    dialog.locator("[data-confirm-revoke]").click()
    expect(admin.locator(".notice--success")).to_contain_text("is revoked")
    # One-off messages can be dismissed.
    admin.click("[data-dismiss-notice]")
    expect(admin.locator(".notice--success")).to_have_count(0)
    expect(admin.locator("tr[data-key='Browser test script']").first).to_contain_text("Revoked")
    screenshot(admin, "console-api-keys")
