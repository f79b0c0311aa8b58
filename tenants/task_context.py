"""What every app's Celery tasks share: each tenant task runs inside an explicit tenant context and fails
loudly without one, beat dispatchers fan out once per tenant, and actions send tasks by name after commit.

Tenant tasks take the schema first, plus ids. The worker switches schema from the message header
(tenant-schemas-celery sets it from the sender's connection); requires_tenant_context checks the two agree.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from celery import current_app
from django.db import transaction
from django_tenants.utils import get_public_schema_name, tenant_context

from tenants.context import current_schema, in_tenant_schema
from tenants.models import Tenant

F = TypeVar("F", bound=Callable[..., Any])


class TenantContextMissing(RuntimeError):
    """A tenant task ran without (or in another than) the tenant context it was sent for."""


def requires_tenant_context(func: F) -> F:
    """The worker switches schema from the message header (tenant-schemas-celery); the explicit
    tenant_schema argument must agree with it. A task sent from outside a tenant fails loudly."""

    @wraps(func)
    def wrapper(tenant_schema: str, *args: Any, **kwargs: Any) -> Any:
        active = current_schema()
        if not in_tenant_schema() or active != tenant_schema:
            raise TenantContextMissing(
                f"{func.__name__} for tenant {tenant_schema!r} is running in schema {active!r}; refusing."
            )
        return func(tenant_schema, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def send_to_every_tenant(task: Any) -> int:
    """For beat dispatchers, which run in the public schema: send `task(tenant_schema)` once per tenant, from
    inside that tenant's context so the message carries its schema header. Returns how many were sent."""
    sent = 0
    for tenant in Tenant.objects.exclude(schema_name=get_public_schema_name()).order_by("schema_name"):
        with tenant_context(tenant):
            task.delay(tenant.schema_name)
        sent += 1
    return sent


def send_tenant_task_on_commit(task_name: str, *args: str) -> None:
    """Send the current tenant's task `task_name(tenant_schema, *args)` once the transaction commits, so a
    worker never looks for a row that was rolled back. By name, so an action never imports the module of
    the worker that runs it (the task's own app, or one above it)."""
    if not in_tenant_schema():
        raise TenantContextMissing(f"{task_name} is a tenant task; no tenant schema is active.")
    tenant_schema = current_schema()
    transaction.on_commit(lambda: current_app.send_task(task_name, args=[tenant_schema, *args]))
