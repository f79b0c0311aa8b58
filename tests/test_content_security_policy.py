"""The Content-Security-Policy: every page carries it, and no template relies on what it refuses (inline
scripts, inline event handlers, hx-on, style attributes and elements). The browser tests (tests/e2e) then
fail on any violation a page reports."""

import re
from pathlib import Path

import pytest
from django.test import Client

from tenants.models import Tenant
from tests.conftest import client_for, make_member

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"

FORBIDDEN = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
    "inline event handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "hx-on attribute": re.compile(r"\shx-on[:-]", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "style element": re.compile(r"<style[\s>]", re.I),
}


def test_no_template_uses_what_the_policy_refuses() -> None:
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = re.sub(r"{#.*?#}", "", path.read_text(), flags=re.S)  # comments may name what they avoid
        for what, pattern in FORBIDDEN.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(TEMPLATES)}:{line}: {what}")
    assert found == []


@pytest.mark.django_db
def test_tenant_pages_send_a_strict_policy(acme: Tenant) -> None:
    response = client_for(acme, make_member(acme)).get("/chat/")
    assert response.status_code == 200
    policy = dict(
        (directive.split(" ", 1) + [""])[:2] for directive in response["Content-Security-Policy"].split("; ")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_platform_and_error_pages_carry_it_too(tenants: dict[str, Tenant]) -> None:
    assert "script-src 'self'" in Client(HTTP_HOST="localhost").get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in Client(HTTP_HOST="localhost").get("/nowhere/")["Content-Security-Policy"]


@pytest.mark.django_db
def test_favicon_ico_leads_to_the_icon(acme: Tenant) -> None:
    response = client_for(acme).get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("/img/favicon.svg")
