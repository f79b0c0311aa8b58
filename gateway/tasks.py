"""Celery tasks of the gateway. The beat dispatcher runs in the public schema and sends one task per
tenant from inside that tenant's context; the tenant task refuses to run anywhere else."""

from celery import shared_task

from chat.tasks import requires_tenant_context, send_to_every_tenant


# No retries: the next beat tick (a minute later) checks again, and an alert is sent once per period.
@shared_task(name="gateway.send_budget_alerts_every_tenant")
def send_budget_alerts_every_tenant() -> int:
    return send_to_every_tenant(send_budget_alerts)


@shared_task(name="gateway.send_budget_alerts")
@requires_tenant_context
def send_budget_alerts(tenant_schema: str) -> int:
    from gateway.alerts import send_budget_alerts as send

    return send(tenant_schema)


@shared_task(name="gateway.finish_abandoned_calls_every_tenant")
def finish_abandoned_calls_every_tenant() -> int:
    return send_to_every_tenant(finish_abandoned_calls)


@shared_task(name="gateway.finish_abandoned_calls")
@requires_tenant_context
def finish_abandoned_calls(tenant_schema: str) -> int:
    from gateway.service import finish_abandoned_calls as finish

    return finish(tenant_schema)
