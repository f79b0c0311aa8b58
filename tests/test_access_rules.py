"""Every route on a tenant's domain must go through the access gate (accounts.access); a new route without
a rule fails here."""

from collections.abc import Iterator
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

# mozilla-django-oidc's own views: the sign-in redirect and callback must be reachable before sign-in.
LIBRARY_VIEWS = {"oidc_authentication_init", "oidc_authentication_callback", "oidc_logout"}


def walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            namespace = f"{entry.namespace}:" if entry.namespace else ""
            yield from walk(entry.url_patterns, prefix + namespace)
        else:
            yield prefix + (entry.name or "?"), entry


def test_every_tenant_route_declares_its_access_rule() -> None:
    unguarded = [
        name
        for name, pattern in walk(get_resolver("convosuite.urls").url_patterns)
        if name not in LIBRARY_VIEWS and not hasattr(pattern.callback, "tenant_access")
    ]
    assert unguarded == []


def test_chat_routes_require_a_member_role() -> None:
    rules = {
        name: pattern.callback.tenant_access  # type: ignore[attr-defined]
        for name, pattern in walk(get_resolver("convosuite.urls").url_patterns)
        if name.startswith("chat:")
    }
    assert set(rules) == {
        "chat:home", "chat:new", "chat:conversation", "chat:send", "chat:message",
        "chat:rename", "chat:delete", "chat:export", "chat:message_stream", "chat:search",
        "chat:model", "chat:stop", "chat:regenerate", "chat:edit",
    }  # fmt: skip
    assert all(rule == {"end_user", "tenant_admin"} for rule in rules.values())


def test_console_routes_are_for_tenant_admins_only() -> None:
    rules = {
        name: pattern.callback.tenant_access  # type: ignore[attr-defined]
        for name, pattern in walk(get_resolver("convosuite.urls").url_patterns)
        if name.startswith("console:")
    }
    assert rules and all(rule == {"tenant_admin"} for rule in rules.values())


def test_every_platform_route_declares_its_access_rule() -> None:
    """On the platform domain: Django admin (staff only, its own gate) and declared pages, nothing else."""
    unguarded = [
        name
        for name, pattern in walk(get_resolver("convosuite.urls_public").url_patterns)
        if name not in LIBRARY_VIEWS
        and not name.startswith("admin:")
        and not hasattr(pattern.callback, "tenant_access")
    ]
    assert unguarded == []


def test_api_routes_go_through_the_api_gate() -> None:
    rules = {
        name: pattern.callback.tenant_access  # type: ignore[attr-defined]
        for name, pattern in walk(get_resolver("convosuite.urls").url_patterns)
        if name.startswith("api:")
    }
    assert set(rules) == {
        "api:chat_completions",
        "api:embeddings",
        "api:models",
        "api:model",
        "api:not_found",
    }
    assert all(rule == "api" for rule in rules.values())
    assert all(
        getattr(pattern.callback, "csrf_exempt", False)
        for name, pattern in walk(get_resolver("convosuite.urls").url_patterns)
        if name.startswith("api:")
    )


def test_prompt_console_routes_are_for_tenant_admins_only() -> None:
    rules = {
        name: pattern.callback.tenant_access  # type: ignore[attr-defined]
        for name, pattern in walk(get_resolver("convosuite.urls").url_patterns)
        if name.startswith("prompts:")
    }
    assert len(rules) >= 10
    assert all(rule == {"tenant_admin"} for rule in rules.values())
