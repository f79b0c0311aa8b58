"""The chat's controls in headless Chromium, against the real web process, worker, identity provider and
provider simulator: Stop mid-stream, Regenerate and Try again, Edit and resend, Copy (message and code),
search, the model picker, keyboard shortcuts, dark mode and the phone layout. Every page runs under the
Content-Security-Policy and the test fails on any violation or script error (tests/e2e/conftest.py).
Screenshots (desktop 1366x850, phone 390x844) land in test-artifacts/screenshots/."""

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from django.db import connection
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from chat.models import Conversation, Message
from gateway import policy as gateway_policy
from gateway.actions import do_set_model_allow_list
from gateway.models import ModelCall
from gateway.testing import restore_shared_tenant_policy
from tenants.models import Tenant
from tests.conftest import Stack
from tests.e2e.conftest import DESKTOP, PHONE, screenshot
from tests.e2e.test_browser_chat import sign_in

pytestmark = pytest.mark.browser

LONG_REPLY = " ".join(f"word{i}" for i in range(120))
CODE_REPLY = (
    'Here is the script:\n\n```python\nimport sys\n\ndef greet(name):\n    print(f"Hello, {name}!")\n'
    "    return {'greeting': 'Hello', 'name': name, 'padding': '"
    + "x" * 180
    + "'}\n```\n\nRun it with `python greet.py`."
)


def ask(page: Page, question: str) -> None:
    page.fill("#message-input", question)
    page.click("#send-button")


def answers(page: Page, status: str = "done") -> Any:
    return page.locator(f"[data-role=assistant][data-status={status}]")


def no_horizontal_scroll(page: Page) -> None:
    overflow = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert overflow[0] <= overflow[1], f"the page scrolls sideways: {overflow[0]} > {overflow[1]}"


def clipboard(page: Page) -> str:
    text: str = page.evaluate("() => navigator.clipboard.readText()")
    return text


T = TypeVar("T")


@pytest.fixture
def in_acme(tenants: dict[str, Tenant], django_db_blocker: Any) -> Iterator[Callable[[Callable[[], T]], T]]:
    """Runs a function in acme's schema from the test process (committed: the stack sees its changes), in a
    thread of its own: Playwright's sync API keeps an event loop in this one, where Django refuses database
    calls. acme's shared gateway policy is put back afterwards."""

    def run(function: Callable[[], T]) -> T:
        results: list[Any] = []

        def target() -> None:
            try:
                with django_db_blocker.unblock(), tenant_context(tenants["acme"]):
                    results.append(function())
            except BaseException as error:  # noqa: BLE001 - raised again in the test's thread
                results.append(error)
            finally:
                connection.close()  # this thread's own connection

        worker = threading.Thread(target=target)
        worker.start()
        worker.join()
        if isinstance(results[0], BaseException):
            raise results[0]
        return results[0]  # type: ignore[no-any-return]

    yield run
    run(lambda: restore_shared_tenant_policy(tenants["acme"].schema_name))


def test_stop_mid_stream_keeps_the_partial_answer_recorded_and_settled(
    stack: Stack, new_page: Any, in_acme: Any
) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply=LONG_REPLY, token_delay_ms=60)
    page = new_page(viewport=DESKTOP)
    sign_in(page, stack, "acme", "alice@acme.example")
    ask(page, "Count for me, slowly")
    streaming = page.locator("[data-role=assistant][data-status=pending] [data-streaming-body]")
    expect(streaming).to_contain_text("word5", timeout=20_000)
    # While the answer is written: Send is disabled (Enter does nothing), Stop is offered.
    expect(page.locator("#send-button")).to_be_disabled()
    expect(page.locator("#stop-button")).to_be_visible()
    page.fill("#message-input", "an impatient second question")
    page.press("#message-input", "Enter")
    screenshot(page, "chat-stop-desktop")
    page.click("#stop-button")

    stopped = page.locator("[data-role=assistant][data-status=stopped]")
    expect(stopped).to_have_count(1, timeout=20_000)
    expect(stopped.locator("[data-stopped]")).to_have_text("Stopped")
    shown = stopped.locator(".message__body").inner_text()
    assert shown.startswith("word0 word1") and "word119" not in shown
    expect(page.locator("#stop-button")).to_be_hidden()
    expect(page.locator("#send-button")).to_be_enabled()
    # The second question was not sent while the first answer was written.
    expect(page.locator("[data-role=user]")).to_have_count(1)
    expect(stopped.locator("[data-reply-details]")).to_contain_text("tokens")
    screenshot(page, "chat-stopped-desktop")

    conversation_id = page.url.rstrip("/").split("/")[-1]

    def stored() -> tuple[Message, ModelCall, list[str]]:
        message = Message.objects.get(conversation_id=conversation_id, role=Message.Role.ASSISTANT)
        assert message.request_id is not None
        record = ModelCall.objects.get(request_id=message.request_id)
        return message, record, gateway_policy.open_reservations("acme")

    message, record, open_reservations = in_acme(stored)
    assert message.status == Message.Status.STOPPED and message.content == shown
    assert (record.status, record.error_code) == (ModelCall.Status.CUT_OFF, "stopped")
    assert record.response == message.content
    assert 0 < record.tokens_out < 120 and record.cost > 0
    assert str(message.request_id) not in open_reservations

    # The stopped answer is part of the conversation: a follow-up can be asked at once.
    stack.simulator.set_scenario(reply="Carrying on.")
    ask(page, "Go on")
    expect(answers(page).last).to_contain_text("Carrying on.", timeout=30_000)


def test_regenerate_replaces_the_last_answer_and_try_again_follows_a_failure(
    stack: Stack, new_page: Any
) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="The first answer.")
    page = new_page(viewport=DESKTOP)
    sign_in(page, stack, "acme", "bob@acme.example")
    ask(page, "Give me an answer")
    expect(answers(page).last).to_contain_text("The first answer.", timeout=30_000)

    stack.simulator.set_scenario(reply="A better answer.")
    answers(page).last.locator("[data-regenerate]").click()
    expect(answers(page)).to_have_count(1, timeout=30_000)
    expect(answers(page).last).to_contain_text("A better answer.", timeout=30_000)
    expect(page.locator("body")).not_to_contain_text("The first answer.")

    # A failed answer offers "Try again", which asks the same question again.
    stack.simulator.set_scenario(fail="503", fail_times=2, reply="Worked the second time.")
    ask(page, "Second question")
    failed = answers(page, "failed")
    expect(failed).to_have_count(1, timeout=30_000)
    retry = failed.locator("[data-regenerate]")
    expect(retry).to_have_text("Try again")
    # Only the last answer can be written again.
    expect(answers(page).first.locator("[data-regenerate]")).to_be_hidden()
    screenshot(page, "chat-try-again-desktop")
    retry.click()
    expect(answers(page).last).to_contain_text("Worked the second time.", timeout=30_000)
    expect(page.locator("[data-role=user]")).to_have_count(2)
    expect(answers(page, "failed")).to_have_count(0)


def test_edit_and_resend_replaces_the_answers_after_the_edited_message(stack: Stack, new_page: Any) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply_mode="echo")
    page = new_page(viewport=DESKTOP)
    sign_in(page, stack, "acme", "alice@acme.example")
    ask(page, "What is the capital of Frnace?")
    expect(answers(page)).to_have_count(1, timeout=30_000)
    ask(page, "And its population?")
    expect(answers(page)).to_have_count(2, timeout=30_000)

    first = page.locator("[data-role=user]").first
    first.locator("[data-edit-message]").click()
    editor = first.locator(".message__edit textarea")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("What is the capital of Frnace?")
    editor.fill("What is the capital of France?")
    screenshot(page, "chat-edit-desktop")
    first.locator("[data-save-edit]").click()

    expect(answers(page)).to_have_count(1, timeout=30_000)
    expect(answers(page).last).to_contain_text("Echo: What is the capital of France?")
    users = page.locator("[data-role=user]")
    expect(users).to_have_count(1)
    expect(users.first).to_contain_text("What is the capital of France?")
    expect(users.first.locator(".message__tag")).to_have_text("Edited")
    expect(page.locator("body")).not_to_contain_text("And its population?")
    # Up in the empty message box edits the last message; Esc leaves it as it was.
    page.focus("#message-input")
    page.keyboard.press("ArrowUp")
    expect(users.first.locator(".message__edit textarea")).to_be_focused()
    page.keyboard.press("Escape")
    expect(users.first.locator(".message__edit")).to_be_hidden()


def test_copy_message_and_code_and_code_blocks_are_labelled_highlighted_and_scroll(
    stack: Stack, new_page: Any
) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply=CODE_REPLY, token_delay_ms=5)
    page = new_page(viewport=DESKTOP, permissions=["clipboard-read", "clipboard-write"])
    sign_in(page, stack, "acme", "alice@acme.example")
    ask(page, "Write me a greeting script")
    answer = answers(page).last
    expect(answer).to_contain_text("Run it with", timeout=30_000)

    block = answer.locator(".code-block")
    expect(block.locator(".code-block__lang")).to_have_text("python")
    expect(block.locator("code.hljs .hljs-keyword").first).to_have_text("import")
    # The long line scrolls inside its block; nothing is cut off and the page itself does not scroll.
    pre = block.locator("pre")
    assert pre.evaluate("el => el.scrollWidth > el.clientWidth")
    assert pre.evaluate("el => getComputedStyle(el).overflowX") == "auto"
    no_horizontal_scroll(page)
    screenshot(page, "chat-code-desktop")

    block.locator("[data-copy-code]").click()
    expect(block.locator("[data-copy-code]")).to_have_text("Copied")
    assert clipboard(page).startswith("import sys\n\ndef greet(name):")
    assert not clipboard(page).endswith("\n")

    answer.locator("[data-copy-message]").click()
    assert clipboard(page) == CODE_REPLY
    page.locator("[data-role=user]").last.locator("[data-copy-message]").click()
    assert clipboard(page) == "Write me a greeting script"
    # Ctrl+Shift+; copies the last answer.
    page.evaluate("() => navigator.clipboard.writeText('')")
    page.locator("body").press("Control+Shift+Semicolon")
    page.wait_for_function("async () => (await navigator.clipboard.readText()).length > 0")
    assert clipboard(page) == CODE_REPLY


def test_search_finds_only_the_persons_own_conversations_and_marks_the_words(
    stack: Stack, new_page: Any
) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply_mode="echo")
    word = f"quokka{uuid.uuid4().hex[:6]}"
    bob = new_page()
    sign_in(bob, stack, "acme", "bob@acme.example")
    ask(bob, f"Bob's private note about the {word}")
    expect(answers(bob)).to_have_count(1, timeout=30_000)

    alice = new_page(viewport=DESKTOP)
    sign_in(alice, stack, "acme", "alice@acme.example")
    ask(alice, f"Tell me about the {word} on Rottnest island")
    expect(answers(alice)).to_have_count(1, timeout=30_000)
    alice.click("#new-conversation")
    ask(alice, "Something else entirely")
    expect(answers(alice)).to_have_count(1, timeout=30_000)

    alice.keyboard.press("Control+k")
    expect(alice.locator("#conversation-search")).to_be_focused()
    alice.keyboard.type(f"{word.upper()} island")
    hits = alice.locator("[data-search-hit]")
    expect(hits).to_have_count(1)
    expect(hits.first).to_contain_text("Rottnest")
    expect(hits.first.locator("mark").first).to_have_text(word, ignore_case=True)
    expect(alice.locator("#conversation-list")).not_to_contain_text("Bob's private note")
    screenshot(alice, "chat-search-desktop")

    alice.fill("#conversation-search", f"{word} volcano")
    expect(alice.locator("#search-heading")).to_have_text(re.compile("No results"))
    alice.click("[data-clear-search]")
    expect(alice.locator("#conversation-list .conversation-list__item").first).to_be_visible()
    hits.first.wait_for(state="detached")
    # Without JavaScript the same search is a page of its own.
    alice.goto(stack.url("acme", f"/chat/search/?q={word}"))
    expect(alice.locator("[data-search-hit]")).to_have_count(1)


def test_model_picker_offers_the_allow_list_and_each_answer_says_who_answered(
    stack: Stack, new_page: Any, in_acme: Any
) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="Picked.", prompt_tokens=12, completion_tokens=3)
    in_acme(
        lambda: do_set_model_allow_list(
            allowed_models=["sim-model", "sim-fallback", "sim-embedding"], default_model="sim-model"
        )
    )
    page = new_page(viewport=DESKTOP)
    sign_in(page, stack, "acme", "alice@acme.example")
    picker = page.locator("#model-select")
    # Chat models on the allow-list only (no embedding model), the default first and marked.
    options = picker.locator("option")
    expect(options).to_have_count(2)
    expect(options.first).to_have_text("sim-model (default)")
    picker.select_option("sim-fallback")
    screenshot(page, "chat-home-model-picker-desktop")
    ask(page, "Which model are you?")
    details = answers(page).last.locator("[data-reply-details]")
    expect(details).to_contain_text("sim-fallback", timeout=30_000)
    expect(details).to_contain_text("15 tokens")
    expect(details).to_contain_text("$0.000")
    request = [r for r in stack.simulator.requests() if r["path"].endswith("/chat/completions")][-1]
    assert request["body"]["model"] == "sim-fallback"

    # In the conversation the picker changes the model of the next answers.
    expect(page.locator("#model-select")).to_have_value("sim-fallback")
    with page.expect_response(re.compile(r"/model/$")):
        page.select_option("#model-select", "sim-model")
    ask(page, "And now?")
    expect(answers(page)).to_have_count(2, timeout=30_000)
    expect(answers(page).last.locator("[data-answered-by]")).to_have_text("sim-model")
    expect(answers(page).first.locator("[data-answered-by]")).to_have_text("sim-fallback")
    screenshot(page, "chat-model-details-desktop")
    conversation_id = page.url.rstrip("/").split("/")[-1]
    assert in_acme(lambda: Conversation.objects.get(id=conversation_id).model) == "sim-model"


def test_keyboard_shortcuts_dialog_new_conversation_and_escape_stops(stack: Stack, new_page: Any) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply=LONG_REPLY, token_delay_ms=60)
    page = new_page(viewport=DESKTOP)
    sign_in(page, stack, "acme", "bob@acme.example")
    # In the message box "?" is just a character; elsewhere it opens the list of shortcuts.
    page.press("#message-input", "?")
    expect(page.locator("#message-input")).to_have_value("?")
    page.fill("#message-input", "")
    page.evaluate("() => document.activeElement.blur()")
    page.keyboard.press("?")
    dialog = page.locator("#shortcuts-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Stop the answer being written")
    screenshot(page, "chat-shortcuts-desktop")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    ask(page, "Talk to me")
    expect(page.locator("[data-streaming-body]")).to_contain_text("word3", timeout=20_000)
    page.keyboard.press("Escape")
    expect(answers(page, "stopped")).to_have_count(1, timeout=20_000)
    conversation_url = page.url
    page.keyboard.press("Control+Shift+O")
    expect(page).to_have_url(re.compile(r"/chat/$"))
    assert page.url != conversation_url


def test_dark_mode_follows_the_system_and_the_toggle_is_remembered(stack: Stack, new_page: Any) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply=CODE_REPLY)
    page = new_page(viewport=DESKTOP, color_scheme="dark")
    sign_in(page, stack, "acme", "alice@acme.example")
    html = page.locator("html")
    expect(html).to_have_attribute("data-theme", "dark")
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 17, 23)", background
    ask(page, "Show me code in the dark")
    expect(answers(page).last).to_contain_text("Run it with", timeout=30_000)
    screenshot(page, "chat-dark-desktop")

    page.click("[data-theme-toggle]")
    expect(html).to_have_attribute("data-theme", "light")
    page.reload()
    expect(html).to_have_attribute("data-theme", "light")  # the choice wins over the system's
    page.click("[data-theme-toggle]")
    expect(html).to_have_attribute("data-theme", "dark")

    phone = new_page(viewport=PHONE, color_scheme="dark", is_mobile=True, has_touch=True)
    sign_in(phone, stack, "acme", "alice@acme.example")
    expect(phone.locator("html")).to_have_attribute("data-theme", "dark")
    screenshot(phone, "chat-dark-phone")


TAP_TARGETS = (
    "button:visible, a.btn:visible, [role=button]:visible, input:not([type=hidden]):visible, "
    "select:visible, textarea:visible, summary:visible, .conversation-list__link:visible, "
    ".topbar a:visible, .agent-card:visible, .message__action:visible"
)


def small_targets(page: Page) -> list[str]:
    """Interactive elements in view smaller than 24 x 24 CSS px (WCAG 2.2 target size, minimum)."""
    found: list[str] = page.evaluate(
        """(selector) => Array.from(document.querySelectorAll(selector.replaceAll(':visible', '')))
            .filter((el) => el.offsetParent !== null || el.tagName === 'BODY')
            .map((el) => [el, el.getBoundingClientRect()])
            .filter(([el, r]) => r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight
                                 && r.right > 0 && r.left < innerWidth)
            .filter(([el, r]) => r.width < 24 || r.height < 24)
            .map(([el, r]) => `${el.tagName.toLowerCase()}#${el.id}.${el.className} ${r.width}x${r.height}`)""",
        TAP_TARGETS,
    )
    return found


def test_phone_layout_has_no_sideways_scroll_and_tappable_controls(stack: Stack, new_page: Any) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply=CODE_REPLY)
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    # A tenant admin: the top bar also carries the Chat / Console links.
    sign_in(page, stack, "acme", "admin@acme.example")
    expect(page).to_have_url(re.compile(r"/chat/$"))
    tenant = page.locator(".topbar__tenant")
    expect(tenant).to_have_text("Acme Corporation")
    assert tenant.evaluate("el => el.scrollWidth <= el.clientWidth"), "the tenant name is cut off"
    no_horizontal_scroll(page)
    assert small_targets(page) == []
    screenshot(page, "chat-home-phone")

    ask(page, "A script please")
    expect(answers(page).last).to_contain_text("Run it with", timeout=30_000)
    no_horizontal_scroll(page)
    assert small_targets(page) == []
    title = page.locator("#conversation-title")
    assert title.evaluate("el => el.getBoundingClientRect().width") > 120, "the title is squeezed"
    screenshot(page, "chat-conversation-phone")

    toggle = page.locator("[data-sidebar-toggle]")
    box = toggle.bounding_box()
    assert box is not None and box["width"] >= 24 and box["height"] >= 24
    toggle.tap()
    expect(page.locator("#sidebar")).to_be_visible()
    page.wait_for_function("() => getComputedStyle(document.getElementById('sidebar')).transform === 'none'")
    expect(page.locator("#conversation-search")).to_be_visible()
    assert small_targets(page) == []
    screenshot(page, "chat-sidebar-phone")
    page.locator("#sidebar .conversation-list__link").first.tap()
    expect(page.locator("#thread")).to_be_visible()

    page.locator("[data-role=user]").last.locator("[data-edit-message]").tap()
    no_horizontal_scroll(page)
    screenshot(page, "chat-edit-phone")
