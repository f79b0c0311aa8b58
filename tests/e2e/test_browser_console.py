"""The tenant admin console in headless Chromium: the usage charts render from real model calls made through
the chat (web, worker, simulator), refresh by themselves while people chat, and end-users are kept out."""

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Stack
from tests.e2e.conftest import screenshot
from tests.e2e.test_browser_chat import sign_in, start_conversation_and_ask

pytestmark = pytest.mark.browser


def today_calls(page: Page) -> int:
    text = page.locator("[data-stat=today-calls]").inner_text()
    return int(re.match(r"(\d+)", text).group(1))  # type: ignore[union-attr]


def chart_total(page: Page, canvas_id: str) -> int:
    return int(
        page.evaluate(
            """(id) => { const chart = Chart.getChart(document.getElementById(id));
                 return chart ? chart.data.datasets.flatMap(d => d.data).reduce((a, b) => a + b, 0) : -1; }""",
            canvas_id,
        )
    )


def test_usage_chart_renders_and_refreshes_while_people_chat(stack: Stack, new_page: Any) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="Here is a short answer.")
    admin = new_page()
    sign_in(admin, stack, "acme", "admin@acme.example")
    expect(admin).to_have_url(re.compile(r"/chat/$"))
    for question in ["How many holidays do I have?", "Summarise the travel policy"]:
        start_conversation_and_ask(admin, question)
        expect(admin.locator("[data-role=assistant][data-status=done]").last).to_contain_text(
            "Here is a short answer.", timeout=30_000
        )

    admin.click("#console-link")
    expect(admin).to_have_url(re.compile(r"/console/usage/$"))
    expect(admin.locator("#chart-today")).to_be_visible()
    admin.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('chart-today'))")
    assert chart_total(admin, "chart-today") > 0
    assert (
        chart_total(admin, "chart-month") == chart_total(admin, "chart-today")
        or chart_total(admin, "chart-month") > 0
    )
    assert chart_total(admin, "chart-users") > 0
    calls_before = today_calls(admin)
    assert calls_before >= 2
    screenshot(admin, "console-usage")

    # Someone else chats; the open usage page picks it up by itself (htmx polling every 5 s).
    tokens_before = chart_total(admin, "chart-today")
    alice = new_page()
    sign_in(alice, stack, "acme", "alice@acme.example")
    start_conversation_and_ask(alice, "One more question for the usage chart")
    expect(alice.locator("[data-role=assistant][data-status=done]").last).to_be_visible(timeout=30_000)
    admin.wait_for_function(
        "(before) => { const el = document.querySelector('[data-stat=today-calls]');"
        " return el && parseInt(el.textContent, 10) > before; }",
        arg=calls_before,
        timeout=15_000,
    )
    assert chart_total(admin, "chart-today") > tokens_before
    expect(admin.locator("#table-by-user")).to_contain_text("Alice Archer")

    admin.click("[data-usage-view=tables]")
    expect(admin.locator("#table-by-model")).to_be_visible()
    screenshot(admin, "console-usage-tables")

    admin.click("[data-nav=model-calls]")
    expect(admin.locator("#model-call-table tbody tr")).to_have_count(calls_before + 1)
    screenshot(admin, "console-model-calls")
    admin.locator("#model-call-table tbody tr a").first.click()
    expect(admin.locator("#call-messages")).to_contain_text("One more question for the usage chart")
    expect(admin.locator("#call-response")).to_contain_text("Here is a short answer.")
    screenshot(admin, "console-model-call")

    admin.click("[data-nav=members]")
    expect(admin.locator("#member-table")).to_contain_text("admin@acme.example")
    screenshot(admin, "console-members")
    admin.click("[data-nav=budgets]")
    expect(admin.locator("#budgets-form")).to_be_visible()

    # An end-user has no console link and gets 403 on the console's address.
    expect(alice.locator("#console-link")).to_have_count(0)
    response = alice.goto(stack.url("acme", "/console/usage/"))
    assert response is not None and response.status == 403
    screenshot(alice, "console-end-user-403")
