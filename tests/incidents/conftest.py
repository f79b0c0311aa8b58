"""Fixtures for the incident tests: fresh tenants (a leak freezes both tenants involved, which must not touch
the session's shared acme and globex) and a platform admin to alert."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django_tenants.utils import schema_context, tenant_context

from accounts.models import Role, User
from lifecycle.actions import do_create_tenant
from tenants.models import Tenant
from tests.factories import UserFactory


@pytest.fixture
def new_tenant(tenants: dict[str, Tenant], django_db_blocker: Any) -> Callable[[str], Tenant]:
    def create(prefix: str = "inc") -> Tenant:
        slug = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with django_db_blocker.unblock():
            return do_create_tenant(slug=slug, name=f"Incident test {slug}", domains=[f"{slug}.localhost"])

    return create


@pytest.fixture
def member(django_db_blocker: Any) -> Callable[..., User]:
    def make(tenant: Tenant, **fields: Any) -> User:
        with django_db_blocker.unblock(), tenant_context(tenant):
            return UserFactory.create(**fields)  # type: ignore[no-any-return]

    return make


@pytest.fixture
def platform_admin(tenants: dict[str, Tenant], django_db_blocker: Any) -> User:
    with django_db_blocker.unblock(), schema_context("public"):
        email = f"ops-{uuid.uuid4().hex[:6]}@platform.test"
        return UserFactory.create(roles=[Role.PLATFORM_ADMIN.value], is_staff=True, email=email)  # type: ignore[no-any-return]
