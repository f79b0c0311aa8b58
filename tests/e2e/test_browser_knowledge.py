"""End to end in headless Chromium: a tenant admin uploads a document in the console, watches it become
ready, tests retrieval, then asks in the chat and sees the answer's source, which opens."""

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import Stack
from tests.e2e.conftest import screenshot
from tests.e2e.test_browser_chat import sign_in, start_conversation_and_ask

pytestmark = pytest.mark.browser


def test_admin_uploads_a_document_and_the_chat_answer_cites_it(
    stack: Stack, new_page: Any, tmp_path: Path
) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="Visitors park in garage B, level 2 [1].")
    handbook = tmp_path / "visitor-guide.md"
    handbook.write_text(
        "# Visitor guide\n\nVisitors park in garage B, level 2. Show the QR code at the gate.\n\n"
        "# Wi-Fi\n\nThe guest network is called Acme-Guest; the password changes every Monday."
    )
    notes = tmp_path / "broken.pdf"
    notes.write_bytes(b"this is not really a pdf")

    page = new_page()
    sign_in(page, stack, "acme", "admin@acme.example")
    expect(page).to_have_url(re.compile(r"/chat/$"))
    page.goto(stack.url("acme", "/console/knowledge/"))
    expect(page.locator("h1")).to_have_text("Knowledge bases")
    screenshot(page, "knowledge-home")
    kb_name = f"Visitor info {uuid.uuid4().hex[:6]}"
    page.fill("#kb-name", kb_name)
    page.check("#kb-use-in-chat")
    page.click("#create-kb-button")
    expect(page.locator("h1")).to_have_text(kb_name)

    page.set_input_files("#upload-files", [str(handbook), str(notes)])
    page.click("#upload-button")
    expect(page.locator('[data-document="visitor-guide.md"][data-state="ready"]')).to_be_visible(
        timeout=60_000
    )
    failed = page.locator('[data-document="broken.pdf"][data-state="failed"]')
    expect(failed).to_contain_text("The file is not a PDF")

    page.fill("#query-input", "Where can visitors park?")
    page.click("#query-button")
    expect(page.locator(".kb-result").first).to_contain_text("garage B")
    screenshot(page, "knowledge-console")

    page.goto(stack.url("acme", "/chat/"))
    start_conversation_and_ask(page, "Where do I park when I visit?")
    answer = page.locator("[data-role=assistant][data-status=done]").last
    expect(answer).to_contain_text("garage B", timeout=30_000)
    citation = answer.locator("[data-citation]").first
    expect(citation).to_contain_text("visitor-guide.md")
    screenshot(page, "knowledge-chat-citation")

    conversation_url = page.url
    citation.click()
    # The passage, rendered (the heading is a heading, not "# Visitor guide"), highlighted, with a way back.
    expect(page.locator("#cited-passage #passage-text")).to_contain_text("Visitors park in garage B")
    expect(page.locator("#cited-passage")).to_have_class(re.compile("passage--cited"))
    assert "# Visitor" not in page.locator("#passage-text").inner_text()
    screenshot(page, "knowledge-passage")
    page.click("#passage-back")
    expect(page).to_have_url(conversation_url)
    # What the model was sent: the passage, quoted apart from the instructions.
    [request] = [r for r in stack.simulator.requests() if r["path"].endswith("/chat/completions")]
    assert "<<<PASSAGE 1>>>" in str(request["body"]) and "garage B" in str(request["body"])
