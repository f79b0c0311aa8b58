"""Celery tasks of the audit app. Tenant tasks take the schema first, plus ids, and refuse to run outside
that tenant (tenants.task_context.requires_tenant_context); the beat dispatchers run in the public schema and send
one task per tenant from inside that tenant's context, so the schema header is set on each message."""

from celery import shared_task

from audit.actions import do_expire_exports, do_sign_chain_heads
from tenants.task_context import requires_tenant_context, send_to_every_tenant


# No retries: the next beat tick signs whatever is still unsigned.
@shared_task(name="audit.checkpoint_every_tenant")
def checkpoint_every_tenant() -> int:
    return send_to_every_tenant(sign_chain_heads)


@shared_task(name="audit.expire_exports_every_tenant")
def expire_exports_every_tenant() -> int:
    return send_to_every_tenant(expire_exports)


@shared_task(name="audit.sign_chain_heads")
@requires_tenant_context
def sign_chain_heads(tenant_schema: str) -> int:
    return len(do_sign_chain_heads())


@shared_task(name="audit.expire_exports")
@requires_tenant_context
def expire_exports(tenant_schema: str) -> int:
    return do_expire_exports()
