"""Celery tasks of the chat. Each takes the tenant's schema name and ids, never objects."""

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from celery import shared_task
from django_tenants.utils import get_public_schema_name, tenant_context

from chat.actions import do_generate_assistant_reply, do_mark_reply_failed
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


# acks_late (settings) + idempotent body: a worker killed mid-call gets the task redelivered, and the
# gateway's request id keeps the provider call and its record single.
@shared_task(name="chat.generate_assistant_reply")
@requires_tenant_context
def generate_assistant_reply(tenant_schema: str, message_id: str) -> None:
    try:
        do_generate_assistant_reply(uuid.UUID(message_id))
    except Exception:
        # A bug must not leave the person watching a typing indicator forever: say so, then fail loudly.
        do_mark_reply_failed(uuid.UUID(message_id))
        raise
