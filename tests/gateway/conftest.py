"""Fixtures for gateway tests: a fresh tenant per test, so budgets, counters and kill switches set by one
test never leak into another (the session tenants acme and globex are shared by every test)."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from accounts.models import User
from lifecycle.actions import do_create_tenant
from tenants.models import Tenant
from tests.factories import UserFactory


@pytest.fixture
def fresh_tenant(tenants: dict[str, Tenant], django_db_blocker: Any) -> Tenant:
    """A new tenant with its own schema and the platform's default gateway policy, committed."""
    slug = f"gw_{uuid.uuid4().hex[:12]}"
    with django_db_blocker.unblock():
        return do_create_tenant(slug=slug, name=f"Gateway test {slug}", domains=[f"{slug}.localhost"])


@pytest.fixture
def member_of(django_db_blocker: Any) -> Callable[[Tenant], User]:
    def make(tenant: Tenant) -> User:
        with django_db_blocker.unblock(), tenant_context(tenant):
            return UserFactory.create()  # type: ignore[no-any-return]

    return make
