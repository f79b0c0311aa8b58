"""Every console page and platform page, as a tenant admin (and platform staff) sees it on a phone (390x844)
and on a laptop (1366x850): no sideways scrolling, every tap target at least 24 x 24 CSS pixels (WCAG 2.5.8;
links inside a sentence excepted, as WCAG allows), the brand and the section links never overlap, and the
active section is marked in the navigation. Screenshots of each page in both sizes."""

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from django_tenants.utils import tenant_context
from playwright.sync_api import Browser, Page, ViewportSize, expect

from accounts.models import User
from audit.actions import do_record_audit_event
from gateway.api.actions import do_create_api_key
from gateway.models import ModelCall
from knowledge.actions import do_create_knowledge_base
from prompts.actions import VersionDraft, do_create_prompt_template, do_publish_prompt_version
from tenants.models import Tenant
from tests.conftest import Stack
from tests.e2e.conftest import SCREENSHOTS, screenshot
from tests.e2e.test_browser_break_glass import sign_in_as_platform_staff
from tests.e2e.test_browser_chat import sign_in
from tests.factories import ModelCallFactory

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1366, "height": 850}
MIN_TARGET = 24

# Measured in the page: how far the document scrolls sideways, and every visible interactive element smaller
# than the minimum target. A checkbox or radio counts with its label (clicking the label ticks it); a link
# that sits inside a line of text is exempt (WCAG 2.5.8's "inline" exception).
LAYOUT_PROBE = """(minimum) => {
  const doc = document.scrollingElement;
  const small = [];
  const seen = new Set();
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button]';
  for (const el of document.querySelectorAll(selector)) {
    let target = el;
    if (el.matches('input[type=checkbox], input[type=radio]')) target = el.closest('label') || el;
    if (seen.has(target)) continue;
    seen.add(target);
    const style = getComputedStyle(target);
    if (style.visibility === 'hidden' || style.display === 'none') continue;
    if (target.closest('dialog:not([open]), details:not([open]) > :not(summary), [hidden]')) continue;
    const box = target.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (target.tagName === 'A' && style.display === 'inline') {
      const line = target.parentElement.textContent.replace(/\\s+/g, ' ').trim();
      const own = target.textContent.replace(/\\s+/g, ' ').trim();
      if (line.length > own.length + 3) continue;
    }
    if (box.width < minimum - 0.5 || box.height < minimum - 0.5) {
      const name = (target.id ? '#' + target.id : target.tagName.toLowerCase() + '.' + [...target.classList].join('.'));
      small.push(`${name} "${target.textContent.trim().slice(0, 30)}" ${box.width.toFixed(1)}x${box.height.toFixed(1)}`);
    }
  }
  const overlaps = [];
  const brand = document.querySelector('.brand__name');
  if (brand && brand.getBoundingClientRect().width) {
    const b = brand.getBoundingClientRect();
    for (const link of document.querySelectorAll('.topbar a, .topbar button')) {
      if (link.contains(brand) || brand.contains(link)) continue;
      const r = link.getBoundingClientRect();
      if (!r.width || getComputedStyle(link).visibility === 'hidden') continue;
      if (r.left < b.right && b.left < r.right && r.top < b.bottom && b.top < r.bottom) {
        overlaps.push(link.textContent.trim().slice(0, 20));
      }
    }
  }
  return {overflow: doc.scrollWidth - doc.clientWidth, small: small, overlaps: overlaps};
}"""


# For the reader of a failure: the elements that stick out on the right.
WIDE_ELEMENTS = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  const clipped = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== 'visible') return true;
    }
    return false;
  };
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 0.5 && !clipped(el)) {
      wide.push(`sticks out: ${el.tagName.toLowerCase()}.${[...el.classList].join('.')}#${el.id} to ${box.right.toFixed(0)} px`);
    }
  }
  return wide.slice(0, 8);
}"""


def layout_problems(page: Page) -> list[str]:
    probe = page.evaluate(LAYOUT_PROBE, MIN_TARGET)
    problems = []
    if probe["overflow"] > 0:
        problems.append(f"scrolls sideways by {probe['overflow']} px")
    problems += [f"tap target too small: {item}" for item in probe["small"]]
    problems += [f"'ConvoSuite' overlaps {item!r}" for item in probe["overlaps"]]
    return problems


def seed_sample_data(acme: Tenant) -> dict[str, str]:
    """Something on every page: a template with two versions, a knowledge base, calls by a person and by a
    key, audit events, an API key."""
    tag = uuid.uuid4().hex[:6]
    with tenant_context(acme):
        admin = User.objects.filter(email="admin@acme.example").first()
        draft = VersionDraft(
            body="You are the travel desk of $tenant_name. Keep answers short and friendly.",
            model="sim-model",
            temperature=Decimal("0.70"),
            max_tokens=64,
            message="First version",
        )
        template = do_create_prompt_template(
            name=f"Travel desk {tag}", description="Trips and expenses", draft=draft, acting_user=admin
        )
        draft.body += " Mention the travel policy."
        draft.message = "Mention the policy"
        do_publish_prompt_version(template, draft, acting_user=admin)
        knowledge_base = do_create_knowledge_base(f"Handbook {tag}", acting_user=admin)
        key = do_create_api_key(name=f"Nightly report {tag}", daily_token_budget=50_000).api_key
        call = ModelCallFactory.create(user=None, source=key.call_source, tokens_in=120, tokens_out=40)
        ModelCallFactory.create(user=admin, source="chat", status=ModelCall.Status.ERROR, tokens_out=0)
        do_record_audit_event(
            kind="layout.sample", actor=admin, details={"version": {"from": 1, "to": 2}, "enabled": False}
        )
    return {
        "template": str(template.id),
        "knowledge_base": str(knowledge_base.pk),
        "call": str(call.id),
        "key": str(key.id),
    }


@pytest.fixture
def sample_data(acme: Tenant, django_db_blocker: Any) -> dict[str, str]:
    # In a thread of its own: Playwright's event loop runs in this one, and Django refuses ORM calls there.
    with django_db_blocker.unblock(), ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(seed_sample_data, acme).result()


CONSOLE_PAGES = [
    ("usage", "/console/usage/", "usage"),
    ("model-calls", "/console/model-calls/", "model-calls"),
    ("model-call", "/console/model-calls/{call}/", "model-calls"),
    ("audit-events", "/console/audit-events/", "audit"),
    ("evidence", "/console/audit/", "evidence"),
    ("incidents", "/console/incidents/", "incidents"),
    ("prompts", "/console/prompts/", "prompts"),
    ("prompt", "/console/prompts/{template}/", "prompts"),
    ("prompt-new", "/console/prompts/new/", "prompts"),
    ("prompt-edit", "/console/prompts/{template}/edit/", "prompts"),
    ("knowledge", "/console/knowledge/", "knowledge"),
    ("knowledge-base", "/console/knowledge/{knowledge_base}/", "knowledge"),
    ("models", "/console/models/", "models"),
    ("budgets", "/console/budgets/", "budgets"),
    ("kill-switch", "/console/kill-switch/", "kill-switch"),
    ("members", "/console/members/", "members"),
    ("api-keys", "/console/api-keys/", "api-keys"),
    ("api-key-created", "/console/api-keys/{key}/created/", "api-keys"),
]
PLATFORM_PAGES = [("platform-usage", "/platform/usage/"), ("platform-break-glass", "/platform/break-glass/")]


def open_signed_in(browser: Browser, viewport: ViewportSize) -> Any:
    context = browser.new_context(viewport=viewport, device_scale_factor=1)
    context.set_default_timeout(20_000)
    return context


def report(name: str, problems: dict[str, list[str]]) -> None:
    """Everything found, for the reader of a failure (pytest truncates long assertion diffs)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / f"layout-problems-{name}.json").write_text(json.dumps(problems, indent=2))


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_console_pages_fit_the_screen_with_tappable_targets(
    stack: Stack, browser: Browser, sample_data: dict[str, str], size: str
) -> None:
    viewport = PHONE if size == "phone" else DESKTOP
    context = open_signed_in(browser, viewport)
    try:
        page = context.new_page()
        sign_in(page, stack, "acme", "admin@acme.example")
        expect(page).to_have_url(re.compile(r"/chat/$"))
        problems: dict[str, list[str]] = {}
        for name, path, nav_key in CONSOLE_PAGES:
            response = page.goto(stack.url("acme", path.format(**sample_data)))
            assert response is not None and response.status == 200, (name, response and response.status)
            page.wait_for_load_state("networkidle")
            # The page's section is marked in the navigation (highlighted, aria-current).
            expect(page.locator(f".console__nav [data-nav='{nav_key}']")).to_have_attribute("aria-current", "page")
            # And the console's tab in the top bar (prompts, knowledge and evidence pages included).
            expect(page.locator(".topbar__link[href='/console/']").first).to_have_attribute("aria-current", "page")
            found = layout_problems(page)
            if found:
                problems[name] = found + page.evaluate(WIDE_ELEMENTS)
            screenshot(page, f"layout-{size}-{name}")
        report(f"console-{size}", problems)
        assert problems == {}
    finally:
        context.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_platform_pages_fit_the_screen_with_tappable_targets(stack: Stack, browser: Browser, size: str) -> None:
    context = open_signed_in(browser, PHONE if size == "phone" else DESKTOP)
    try:
        page = context.new_page()
        sign_in_as_platform_staff(page, stack)
        problems: dict[str, list[str]] = {}
        for name, path in PLATFORM_PAGES:
            response = page.goto(f"http://localhost:{stack.web_port}{path}")
            assert response is not None and response.status == 200, name
            found = layout_problems(page)
            if found:
                problems[name] = found
            screenshot(page, f"layout-{size}-{name}")
        report(f"platform-{size}", problems)
        assert problems == {}
    finally:
        context.close()
