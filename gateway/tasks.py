"""Celery tasks of the gateway. The beat dispatcher runs in the public schema and sends one task per
tenant from inside that tenant's context; the tenant task refuses to run anywhere else."""

import datetime as dt
import logging
import os
import uuid
from typing import Any

from celery import shared_task
from celery.signals import worker_init
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.actions import do_record_audit_event
from audit.models import AuditExport
from gateway import alerts, protocol, service
from gateway.errors import CrossTenantBlocked
from gateway.exports import write_model_call_export
from tenants.task_context import requires_tenant_context, send_to_every_tenant

logger = logging.getLogger(__name__)
EXPORT_TIME_LIMIT = 3660


@worker_init.connect
def load_provider_client(**kwargs: object) -> None:
    """Import the model client once in the worker's parent process, so forked workers start warm. (The
    worker imports this module, like every app's tasks module, before it sends worker_init.)"""
    service.load_provider_client()


# No retries: the next beat tick (a minute later) checks again, and an alert is sent once per period.
@shared_task(name="gateway.send_budget_alerts_every_tenant")
def send_budget_alerts_every_tenant() -> int:
    return send_to_every_tenant(send_budget_alerts)


@shared_task(name="gateway.send_budget_alerts")
@requires_tenant_context
def send_budget_alerts(tenant_schema: str) -> int:
    return alerts.send_budget_alerts(tenant_schema)


@shared_task(name="gateway.finish_abandoned_calls_every_tenant")
def finish_abandoned_calls_every_tenant() -> int:
    return send_to_every_tenant(finish_abandoned_calls)


@shared_task(name="gateway.finish_abandoned_calls")
@requires_tenant_context
def finish_abandoned_calls(tenant_schema: str) -> int:
    return protocol.finish_abandoned_calls(tenant_schema)


# A year of model calls is millions of rows: allow an hour, far beyond the default 150 s. acks_late
# (settings) redelivers it if the worker dies; a finished export is not rebuilt.
@shared_task(name="audit.build_model_call_export", soft_time_limit=3600, time_limit=EXPORT_TIME_LIMIT)
@requires_tenant_context
def build_model_call_export(tenant_schema: str, export_id: str) -> None:
    # Claim the export: a redelivered message (the broker's visibility timeout is shorter than a long
    # export) must not start a second writer; a claim older than the time limit belonged to a dead worker.
    now = timezone.now()
    claimable = Q(status=AuditExport.Status.PENDING) | Q(
        status=AuditExport.Status.RUNNING, started_at__lt=now - dt.timedelta(seconds=EXPORT_TIME_LIMIT)
    )
    file_name = f"{tenant_schema}-model-calls-{export_id}.zip"
    claimed = AuditExport.objects.filter(claimable, id=uuid.UUID(export_id)).update(
        status=AuditExport.Status.RUNNING, started_at=now, file_name=file_name
    )
    export = AuditExport.objects.filter(id=uuid.UUID(export_id)).first()
    if not claimed or export is None:
        return
    directory = os.path.join(settings.AUDIT_EXPORT_DIR, tenant_schema)
    path = os.path.join(directory, export.file_name)

    def progress(done: int, total: int) -> None:
        AuditExport.objects.filter(id=export.id).update(records_done=done, records_total=total)

    try:
        result = write_model_call_export(
            out_path=path,
            window_start=export.window_start,
            window_end=export.window_end,
            redaction=export.redaction_policy,
            exported_by=export.requested_by_label or "unknown",
            progress=progress,
        )
    except CrossTenantBlocked as blocked:
        # Another tenant's data in this tenant's records: the platform has an incident; nothing was written.
        AuditExport.objects.filter(id=export.id).update(
            status=AuditExport.Status.FAILED, error=blocked.user_message[:500], finished_at=timezone.now()
        )
        return
    except Exception as failure:
        logger.exception("audit export failed tenant=%s export_id=%s", tenant_schema, export_id)
        AuditExport.objects.filter(id=export.id).update(
            status=AuditExport.Status.FAILED, error=f"{type(failure).__name__}", finished_at=timezone.now()
        )
        raise
    finished = timezone.now()
    with transaction.atomic():
        AuditExport.objects.filter(id=export.id).update(
            status=AuditExport.Status.READY,
            records_done=result.count,
            records_total=result.count,
            file_size=os.path.getsize(path),
            finished_at=finished,
            expires_at=finished + dt.timedelta(hours=settings.AUDIT_EXPORT_RETENTION_HOURS),
        )
        do_record_audit_event(
            kind="audit.export_completed",
            actor=export.requested_by,
            actor_label=export.requested_by_label,
            details=_export_details(export.id, result.manifest),
        )


def _export_details(export_id: uuid.UUID, manifest: dict[str, Any]) -> dict[str, Any]:
    keys = ("window", "count", "first", "last", "redaction_policy", "records_sha256")
    return {"export_id": str(export_id), **{key: manifest.get(key) for key in keys}}
