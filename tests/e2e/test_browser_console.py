"""The tenant admin console in headless Chromium: the usage charts render from real model calls made through
the chat (web, worker, simulator), refresh by themselves while people chat, and end-users are kept out."""

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from gateway import store
from tests.conftest import Stack
from tests.e2e.conftest import screenshot
from tests.e2e.test_browser_chat import sign_in, start_conversation_and_ask

pytestmark = pytest.mark.browser


def today_calls(page: Page) -> int:
    return int(page.locator("[data-stat=calls]").get_attribute("data-value") or "0")


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
    expect(admin.locator("#chart-tokens")).to_be_visible()
    admin.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('chart-tokens'))")
    assert chart_total(admin, "chart-tokens") > 0
    assert chart_total(admin, "chart-users") > 0
    calls_before = today_calls(admin)
    assert calls_before >= 2
    screenshot(admin, "console-usage")

    # Someone else chats; the open usage page picks it up by itself (htmx polling every 5 s).
    tokens_before = chart_total(admin, "chart-tokens")
    alice = new_page()
    sign_in(alice, stack, "acme", "alice@acme.example")
    start_conversation_and_ask(alice, "One more question for the usage chart")
    expect(alice.locator("[data-role=assistant][data-status=done]").last).to_be_visible(timeout=30_000)
    admin.wait_for_function(
        "(before) => { const el = document.querySelector('[data-stat=calls]');"
        " return el && parseInt(el.dataset.value, 10) > before; }",
        arg=calls_before,
        timeout=15_000,
    )
    assert chart_total(admin, "chart-tokens") > tokens_before
    expect(admin.locator("#table-by-user")).to_contain_text("Alice Archer")

    admin.click("[data-usage-view=tables]")
    expect(admin.locator("#table-by-model")).to_be_visible()
    screenshot(admin, "console-usage-tables")

    admin.click("[data-nav=model-calls]")
    expect(admin.locator("#model-call-table tbody tr").first).to_be_visible()
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


# Every number the usage page shows for today, read from the page itself.
USAGE_NUMBERS = """() => {
  const value = (selector) => Number(document.querySelector(selector).dataset.value || 0);
  const sum = (selector, attribute) => [...document.querySelectorAll(selector)]
    .reduce((total, row) => total + Number(row.dataset[attribute] || 0), 0);
  const chart = (id) => { const c = Chart.getChart(document.getElementById(id));
    return c.data.datasets.flatMap(d => d.data).reduce((a, b) => a + (b || 0), 0); };
  const report = JSON.parse(document.getElementById('usage-data').textContent);
  return {
    card_tokens: value('[data-stat=tokens]'),
    card_failed: value('[data-stat=failed]'),
    bar_today: Number(document.querySelector('[data-budget=daily_tokens]').dataset.used),
    hourly_tokens: sum('#table-series tbody tr[data-tokens]', 'tokens'),
    hourly_failed: sum('#table-series tbody tr[data-failed]', 'failed'),
    model_tokens: sum('#table-by-model tbody tr[data-tokens]', 'tokens'),
    model_failed: sum('#table-by-model tbody tr[data-failed]', 'failed'),
    people_tokens: sum('#table-by-user tbody tr[data-tokens]', 'tokens'),
    chart_tokens: chart('chart-tokens'),
    chart_models: chart('chart-models'),
    running: report.totals.running_calls,
  };
}"""


def test_usage_numbers_agree_across_cards_budget_bar_tables_and_charts(stack: Stack, new_page: Any) -> None:
    # The gateway's day counter of acme starts again from the records (as after a flushed Redis), so this test
    # does not depend on what other tests did to it; every call below is counted by the real gateway.
    prefix = store.tenant_prefix("acme")
    counters = [*store.client().keys(f"{prefix}:tok:*"), *store.client().keys(f"{prefix}:cost:*")]
    if counters:
        store.client().delete(*counters)
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="Counted answer.", prompt_tokens=37, completion_tokens=11)
    admin = new_page()
    sign_in(admin, stack, "acme", "admin@acme.example")
    expect(admin).to_have_url(re.compile(r"/chat/$"))
    for question in ["First counted question", "Second counted question"]:
        start_conversation_and_ask(admin, question)
        expect(admin.locator("[data-role=assistant][data-status=done]").last).to_contain_text("Counted answer.")
    stack.simulator.set_scenario(fail="500")
    start_conversation_and_ask(admin, "This one fails")
    expect(admin.locator("[data-role=assistant][data-status=failed]").last).to_be_visible(timeout=30_000)
    stack.simulator.reset()

    admin.goto(stack.url("acme", "/console/usage/?range=today"))
    admin.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('chart-models'))")
    # Wait until nothing is in progress (conversation titles are written by a call after each first answer).
    admin.wait_for_function(
        "() => JSON.parse(document.getElementById('usage-data').textContent).totals.running_calls === 0",
        timeout=30_000,
    )
    admin.reload()
    admin.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('chart-models'))")
    numbers = admin.evaluate(USAGE_NUMBERS)
    assert numbers["running"] == 0
    assert numbers["card_tokens"] > 0 and numbers["card_failed"] >= 1
    assert numbers["card_tokens"] == numbers["bar_today"], numbers
    assert numbers["card_tokens"] == numbers["hourly_tokens"] == numbers["model_tokens"], numbers
    assert numbers["card_tokens"] == numbers["people_tokens"] == numbers["chart_tokens"], numbers
    assert numbers["card_tokens"] == numbers["chart_models"], numbers
    assert numbers["card_failed"] == numbers["hourly_failed"] == numbers["model_failed"], numbers
    screenshot(admin, "console-usage-agree")
    admin.click("[data-usage-view=tables]")
    screenshot(admin, "console-usage-agree-tables")
    admin.click("[data-usage-view=charts]")

    # Another period: the picker's presets and dates; a backwards range is refused with the reason.
    admin.click("[data-range='7d']")
    expect(admin.locator("[data-range='7d']")).to_have_attribute("aria-current", "true")
    expect(admin.locator("#usage-stats")).to_have_attribute("data-range-end", re.compile(r"\d{4}-\d{2}-\d{2}"))
    week = admin.evaluate(USAGE_NUMBERS)
    assert week["card_tokens"] >= numbers["card_tokens"]
    assert week["card_tokens"] == week["hourly_tokens"] == week["chart_tokens"]
    admin.goto(stack.url("acme", "/console/usage/?from=2026-11-05&to=2026-11-03"))
    expect(admin.locator("#range-error")).to_contain_text("The start date is after the end date.")
