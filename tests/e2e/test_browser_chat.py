"""End to end in headless Chromium: the identity provider's real login page, the web process, the Celery
worker and the provider simulator, all separate processes."""

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Stack
from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.browser
PASSWORD = "convosuite-demo"


def sign_in(page: Page, stack: Stack, tenant: str, username: str) -> None:
    page.goto(stack.url(tenant, "/"))
    # Sent to the identity provider's own login page.
    expect(page.locator("#username")).to_be_visible()
    assert page.url.startswith(stack.issuer.rsplit("/o", 1)[0])
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def start_conversation_and_ask(page: Page, question: str) -> None:
    page.click("#new-conversation")
    expect(page.locator("#message-input")).to_be_visible()
    page.fill("#message-input", question)
    page.click("#send-button")


def test_acme_user_chats_and_globex_user_sees_none_of_it(stack: Stack, new_page: Any) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="Our **refund policy** is 30 days.")
    alice = new_page()
    sign_in(alice, stack, "acme", "alice@acme.example")
    expect(alice).to_have_url(re.compile(r"http://acme\.localhost:\d+/chat/$"))
    screenshot(alice, "chat-home")

    start_conversation_and_ask(alice, "What is the acme refund policy?")
    answer = alice.locator("[data-role=assistant][data-status=done]").last
    expect(answer).to_contain_text("Our refund policy is 30 days.", timeout=30_000)
    expect(answer.locator("strong")).to_have_text("refund policy")
    expect(alice.locator("[data-role=user]").last).to_contain_text("What is the acme refund policy?")
    # The conversation is listed in the sidebar, titled after the first message.
    expect(alice.locator("[data-conversation-id]").first).to_contain_text("What is the acme refund policy?")
    screenshot(alice, "chat-conversation")

    carol = new_page()
    sign_in(carol, stack, "globex", "carol@globex.example")
    expect(carol).to_have_url(re.compile(r"http://globex\.localhost:\d+/chat/$"))
    expect(carol.locator("body")).not_to_contain_text("refund policy")
    assert carol.locator("[data-conversation-id]").count() == 0
    # Alice's conversation URL on carol's own domain: not found, whatever the id.
    carol.goto(alice.url.replace("acme.localhost", "globex.localhost"))
    expect(carol.locator("body")).not_to_contain_text("refund policy")


def test_answer_with_html_is_shown_as_text(stack: Stack, new_page: Any) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="<script>document.title='pwned'</script> done")
    bob = new_page()
    sign_in(bob, stack, "acme", "bob@acme.example")
    start_conversation_and_ask(bob, "Say something dangerous")
    answer = bob.locator("[data-role=assistant][data-status=done]").last
    expect(answer).to_contain_text("<script>document.title='pwned'</script> done", timeout=30_000)
    assert bob.title() != "pwned"
    assert answer.locator("script").count() == 0


def test_user_of_another_tenant_is_refused_at_sign_in(stack: Stack, new_page: Any) -> None:
    page = new_page()
    sign_in(page, stack, "acme", "carol@globex.example")
    expect(page.locator("body")).to_contain_text("belongs to another organisation")
    page.goto(stack.url("acme", "/chat/"))
    # Still not signed in on acme: back at the identity provider (which remembers carol, so it may
    # immediately redirect back and refuse again).
    expect(page.locator("body")).to_contain_text(re.compile("belongs to another organisation|Sign in"))
    screenshot(page, "sign-in-refused")


def test_sign_out_ends_the_session_here_and_at_the_identity_provider(stack: Stack, new_page: Any) -> None:
    page = new_page()
    sign_in(page, stack, "globex", "dave@globex.example")
    expect(page).to_have_url(re.compile(r"/chat/$"))
    page.click("#logout-button")
    expect(page.locator("body")).to_contain_text("signed out")
    expect(page).to_have_url(re.compile(r"http://globex\.localhost:\d+/$"))
    screenshot(page, "signed-out")
    # Both sessions are gone: the chat asks the identity provider, which shows its login form again.
    page.goto(stack.url("globex", "/chat/"))
    expect(page.locator("#username")).to_be_visible()


def test_answer_streams_into_the_page_then_renders(stack: Stack, new_page: Any) -> None:
    stack.simulator.reset()
    words = "Here is **the plan**: first we gather the facts, then we compare the options, and finally we decide together."
    stack.simulator.set_scenario(reply=words, token_delay_ms=120)
    page = new_page()
    sign_in(page, stack, "acme", "alice@acme.example")
    start_conversation_and_ask(page, "What is the plan?")
    streaming = page.locator("[data-role=assistant][data-status=pending] [data-streaming-body]").last
    # Part of the answer is on screen while the rest is still being written, already rendered as Markdown
    # (rendered and sanitised on the server like the final answer).
    expect(streaming.locator("strong")).to_have_text("the plan", timeout=20_000)
    partial = streaming.inner_text()
    assert "**" not in partial
    assert "decide together" not in partial
    screenshot(page, "chat-streaming")
    answer = page.locator("[data-role=assistant][data-status=done]").last
    expect(answer).to_contain_text("finally we decide together.", timeout=30_000)
    expect(answer.locator("strong")).to_have_text("the plan")
    assert page.locator("[data-streaming-body]").count() == 0
    screenshot(page, "chat-streamed-answer")


def test_page_falls_back_to_polling_when_the_event_stream_is_blocked(stack: Stack, new_page: Any) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="Answer by **polling**.", token_delay_ms=50)
    page = new_page()
    page.route("**/stream/", lambda route: route.abort())
    sign_in(page, stack, "acme", "bob@acme.example")
    start_conversation_and_ask(page, "Can you hear me?")
    answer = page.locator("[data-role=assistant][data-status=done]").last
    expect(answer.locator("strong")).to_have_text("polling", timeout=30_000)


def test_answer_broken_mid_way_keeps_the_partial_text_and_says_why(stack: Stack, new_page: Any) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="The first part arrives but the rest never does", fail_after_chunks=5)
    page = new_page()
    sign_in(page, stack, "acme", "alice@acme.example")
    start_conversation_and_ask(page, "Tell me everything")
    answer = page.locator("[data-role=assistant][data-status=failed]").last
    expect(answer.locator(".message__error")).to_contain_text("stopped answering", timeout=30_000)
    expect(answer.locator(".message__body")).to_have_text("The first part arrives")
    screenshot(page, "chat-stream-cut")
