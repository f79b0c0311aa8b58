"""What a tenant admin sees of a sign-in refused on their domain: that it came from another organisation and a
pseudonymous reference, never the other tenant's name or the person's subject id (docs/identity.md)."""

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import Stack
from tests.e2e.conftest import screenshot
from tests.e2e.test_browser_chat import sign_in

pytestmark = pytest.mark.browser

CAROL_SUBJECT = "c8e1b3f4-globex-carol"  # devtools/demo_users.json


def test_refused_sign_in_shows_acme_admin_no_identity_of_globex(stack: Stack, new_page: Any) -> None:
    carol = new_page()
    sign_in(carol, stack, "acme", "carol@globex.example")
    expect(carol.locator("body")).to_contain_text("belongs to another organisation")

    admin = new_page()
    sign_in(admin, stack, "acme", "admin@acme.example")
    expect(admin).to_have_url(re.compile(r"/chat/$"))
    admin.goto(stack.url("acme", "/console/audit-events/?kind=security.sign_in_refused"))
    events = admin.locator("main")
    expect(events).to_contain_text("security.sign_in_refused")
    expect(events).to_contain_text("another organisation")
    body = admin.locator("body").inner_text()
    assert "globex" not in body.lower() and CAROL_SUBJECT not in body and "carol" not in body.lower()
    screenshot(admin, "security-event-refused-sign-in")
