"""Fixtures for the audit tests."""

from typing import Any

import pytest
from django_tenants.utils import tenant_context

from gateway.actions import do_set_rate_limits
from lifecycle.actions import do_create_tenant
from tenants.models import Tenant


@pytest.fixture(scope="session")
def chain_tenant(tenants: dict[str, Tenant], django_db_blocker: Any) -> Tenant:
    """A tenant of their own for the chain tests, which make a few hundred model calls within a minute:
    in the shared acme they would exhaust its per-minute rate limit for every later test of the session."""
    with django_db_blocker.unblock():
        tenant = do_create_tenant(
            slug="audit_chain", name="Audit chain tests", domains=["audit-chain.localhost"]
        )
        with tenant_context(tenant):
            do_set_rate_limits(
                requests_per_minute=100_000, tokens_per_minute=100_000_000, actor_label="audit tests"
            )
    return tenant
