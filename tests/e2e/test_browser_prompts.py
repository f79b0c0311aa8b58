"""End to end: a tenant admin edits a prompt, compares versions and rolls back; the chat follows the
version labelled production, and the end-user never sees the prompt."""

import io
import re
import uuid
import zipfile
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from gateway import screening
from tests.conftest import Stack
from tests.e2e.conftest import screenshot
from tests.e2e.test_browser_chat import sign_in
from tests.support.processes import LOG_DIR

pytestmark = pytest.mark.browser


def system_prompt_of_last_call(stack: Stack) -> str:
    """The system text the provider received, without the tenant's planted canary note."""
    requests = [r for r in stack.simulator.requests() if r["path"].endswith("/chat/completions")]
    messages = requests[-1]["body"]["messages"]
    assert messages[0]["role"] == "system"
    # Without the tenant's canary note the chat appends (gateway.screening).
    return screening.unplant(str(messages[0]["content"]))


def ask(page: Page, question: str, answers_before: int) -> None:
    page.fill("#message-input", question)
    page.click("#send-button")
    done = page.locator("[data-role=assistant][data-status=done]")
    expect(done).to_have_count(answers_before + 1, timeout=30_000)
    expect(done.last).to_contain_text(f"Echo: {question}")


def test_admin_edits_compares_and_rolls_back_and_the_chat_follows(stack: Stack, new_page: Any) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply_mode="echo")
    tag = uuid.uuid4().hex[:8]  # only in the prompt bodies
    name = f"Travel desk {uuid.uuid4().hex[:6]}"
    first_body = f"You are the travel desk of $tenant_name (first version {tag}).\nKeep answers short."
    second_body = f"You are the travel desk of $tenant_name (second version {tag}).\nKeep answers short."

    admin = new_page()
    sign_in(admin, stack, "acme", "admin@acme.example")
    expect(admin).to_have_url(re.compile(r"/chat/$"))
    admin.click("#console-link")
    admin.click("[data-nav=prompts]")
    expect(admin).to_have_url(re.compile(r"/console/prompts/$"))
    admin.click("#new-template")
    admin.fill("#name", name)
    admin.fill("#description", "Trips and expenses")
    admin.fill("#body", first_body)
    admin.fill("#message", "First version")
    # Not live until the admin says so: the box is unticked until ticked here.
    expect(admin.locator("#make-production")).not_to_be_checked()
    admin.check("#make-production")
    screenshot(admin, "prompts-create")
    admin.click("#publish-button")
    expect(admin.locator(".notice--success")).to_contain_text("version 1 is in the chat now")
    expect(admin.locator("#production-version")).to_have_text("version 1")
    template_url = admin.url

    admin.click("#edit-template")
    expect(admin.locator("#body")).to_have_value(first_body)
    admin.fill("#body", second_body)
    admin.fill("#message", "Say which version")
    admin.check("#label-production")
    admin.click("#publish-button")
    expect(admin.locator("#production-version")).to_have_text("version 2")
    # The diff of the two latest versions is on the template's page.
    expect(admin.locator(".diff__line--del")).to_contain_text(f"first version {tag}")
    expect(admin.locator(".diff__line--add")).to_contain_text(f"second version {tag}")
    screenshot(admin, "prompts-detail-diff")
    # Picking other versions swaps the diff in place (htmx).
    admin.select_option("#diff-old", "2")
    admin.select_option("#diff-new", "1")
    expect(admin.locator(".diff")).to_have_attribute("data-old", "2")
    expect(admin.locator(".diff__line--add")).to_contain_text(f"first version {tag}")

    alice = new_page()
    sign_in(alice, stack, "acme", "alice@acme.example")
    expect(alice).to_have_url(re.compile(r"/chat/$"))
    # Publishing an agent adds a choice; the general assistant stays the default.
    expect(alice.locator(".agent-card", has_text=name)).to_be_visible()
    expect(alice.locator(".agent-card", has_text="General assistant").locator("input")).to_be_checked()
    screenshot(alice, "chat-home-agent-picker")
    alice.locator(".agent-card", has_text=name).click()
    ask(alice, "Can I book a train?", 0)
    expect(alice.locator("#conversation-agent")).to_have_text(name)
    assert system_prompt_of_last_call(stack) == second_body.replace("$tenant_name", "Acme Corporation")
    screenshot(alice, "prompts-chat-with-agent")

    admin.click("tr[data-version='1'] [data-action=rollback]")
    expect(admin.locator(".notice--success")).to_contain_text("Rolled back: production is now version 1")
    expect(admin.locator("#production-version")).to_have_text("version 1")
    expect(admin.locator("#history li").first).to_contain_text("rolled back production from v2 to v1")
    expect(admin.locator("#history li").first).to_contain_text("Ada Admin")
    screenshot(admin, "prompts-after-rollback")
    admin.click(".breadcrumbs a")
    expect(admin.locator("#template-table")).to_contain_text(name)
    screenshot(admin, "prompts-list")
    # A hostile zip is refused with the reason, and nothing changes.
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("manifest.json", "{}")
        archive.writestr("../../etc/cron.d/evil", "* * * * * root true")
    admin.set_input_files(
        "#bundle", files=[{"name": "evil.zip", "mimeType": "application/zip", "buffer": evil.getvalue()}]
    )
    admin.click("#import-button")
    expect(admin.locator("#import-error")).to_contain_text(
        "Nothing was imported. Unexpected file '../../etc/cron.d/evil'"
    )
    expect(admin.locator("#template-table")).to_contain_text("production · v1")
    screenshot(admin, "prompts-import-refused")

    ask(alice, "And a plane?", 1)
    assert system_prompt_of_last_call(stack) == first_body.replace("$tenant_name", "Acme Corporation")
    # The end-user never sees the prompt, and the console is not there for her.
    assert tag not in alice.content()
    alice.goto(template_url)
    expect(alice.locator("body")).not_to_contain_text(tag)
    expect(alice.locator(".card__code")).to_have_text("404")

    # Neither the web process nor the worker logged the prompt text.
    for process in ("web", "worker"):
        assert f"version {tag}" not in (LOG_DIR / f"{process}.log").read_text(errors="replace"), process


def test_admin_tries_a_draft_in_the_playground_next_to_production_then_makes_it_live(
    stack: Stack, new_page: Any
) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply_mode="echo")
    name = f"Helpdesk {uuid.uuid4().hex[:6]}"
    admin = new_page()
    sign_in(admin, stack, "acme", "admin@acme.example")
    expect(admin).to_have_url(re.compile(r"/chat/$"))
    admin.goto(stack.url("acme", "/console/prompts/new/"))
    admin.fill("#name", name)
    admin.fill("#body", "You are the helpdesk of $company. Answer in one sentence.")
    admin.fill("#variables", "company = Acme Corporation")
    admin.check("#make-production")
    admin.click("#publish-button")
    expect(admin.locator("#production-version")).to_have_text("version 1")
    admin.click("#edit-template")
    admin.fill("#body", "You are the friendly helpdesk of $company. Greet $user_name first.")
    admin.fill("#message", "Friendlier")
    admin.click("#publish-button")
    # Publishing without the label says, in the page's own words, that the chat still uses version 1.
    expect(admin.locator(".notice--success")).to_contain_text("The chat still uses version 1")
    expect(admin.locator("#live-state")).to_contain_text("version 2 is newer and not live yet")

    admin.click("#open-playground")
    expect(admin.locator("#pg-version")).to_have_value("2")
    expect(admin.locator("#pg-compare")).to_have_value("1")
    expect(admin.locator("#var-company")).to_have_value("Acme Corporation")
    admin.fill("#var-company", "Acme Travel")
    admin.fill("#pg-message", "Where do I file expenses?")
    admin.click("#run-playground")
    candidate = admin.locator("[data-side=candidate]")
    baseline = admin.locator("[data-side=baseline]")
    expect(candidate).to_have_attribute("data-status", "ok", timeout=30_000)
    expect(baseline).to_have_attribute("data-status", "ok", timeout=30_000)
    expect(candidate.locator("[data-answer]")).to_contain_text("Echo: Where do I file expenses?")
    expect(candidate).to_contain_text(re.compile(r"Tokens\s*\d+ in · \d+ out"))
    screenshot(admin, "prompts-playground")
    # The draft's system prompt, as the model got it, with the sample values filled in.
    requests = [r for r in stack.simulator.requests() if r["path"].endswith("/chat/completions")]
    systems = {screening.unplant(r["body"]["messages"][0]["content"]) for r in requests[-2:]}
    assert "You are the friendly helpdesk of Acme Travel. Greet Ada Admin first." in systems
    assert "You are the helpdesk of Acme Travel. Answer in one sentence." in systems
    # Reloading the results page runs nothing again.
    admin.reload()
    expect(candidate).to_have_attribute("data-status", "ok")
    assert len([r for r in stack.simulator.requests() if r["path"].endswith("/chat/completions")]) == len(requests)
    # The calls are in the model-call log as the playground's, made by the admin.
    candidate.get_by_role("link", name="model call").click()
    expect(admin.locator("#call-caller")).to_contain_text("Ada Admin")
    expect(admin.locator("#call-facts")).to_contain_text("Prompt playground")
    admin.go_back()
    candidate.locator("[data-action=promote]").click()
    expect(admin.locator("#production-version")).to_have_text("version 2")
