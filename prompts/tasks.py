"""Celery tasks of the prompts app. Each takes the tenant's schema name and ids, never objects."""

import uuid

from celery import shared_task

from prompts.playground import RUN_TASK, do_run_playground_call
from tenants.task_context import requires_tenant_context


# acks_late (settings) + the run's request id: a worker killed mid-call gets the task again, and the gateway
# answers the redelivery from its record instead of calling the model twice.
@shared_task(name=RUN_TASK)
@requires_tenant_context
def run_playground_call(tenant_schema: str, run_id: str) -> None:
    do_run_playground_call(uuid.UUID(run_id))
