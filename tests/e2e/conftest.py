from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# The flags the machine's Chromium needs as root in a closed network (see docs/development.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Package scope: Playwright's sync API runs an event loop in the main thread while it is open, and Django
# refuses ORM calls from a thread with a running loop, so close it before the other tests run.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# Chromium reports a Content-Security-Policy violation as a console error ("Refused to ...") and as a
# securitypolicyviolation event; the event is forwarded to the console too, with the directive and the source.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"} `
    + `in ${event.sourceFile || event.documentURI}:${event.lineNumber}`);
});
"""
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 850}


@dataclass
class BrowserProblems:
    """What the pages of one test reported: CSP violations and uncaught JavaScript errors."""

    csp_violations: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self.script_errors.append(f"{page.url}: {error}"))

    def _console(self, page: Page, message: ConsoleMessage) -> None:
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or text.startswith("CSP violation")):
            self.csp_violations.append(f"{page.url}: {text}")


@pytest.fixture
def browser_problems() -> BrowserProblems:
    return BrowserProblems()


@pytest.fixture
def new_page(browser: Browser, browser_problems: BrowserProblems) -> Iterator[Callable[..., Page]]:
    """Each call opens a fresh browser profile (its own cookies), like a different person's laptop.
    Keyword arguments go to the browser context (viewport, color_scheme, has_touch, permissions...).
    Every page runs under the site's Content-Security-Policy; the test fails if any page reported a
    violation or an uncaught script error."""
    contexts = []

    def open_page(**options: Any) -> Page:
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = browser.new_context(**options)
        context.set_default_timeout(20_000)
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        context.on("page", browser_problems.watch)
        contexts.append(context)
        page = context.new_page()
        return page

    yield open_page
    for context in contexts:
        context.close()
    violations, errors = browser_problems.csp_violations, browser_problems.script_errors
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(dict.fromkeys(violations))
    assert not errors, "uncaught JavaScript errors:\n" + "\n".join(errors)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
