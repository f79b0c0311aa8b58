"""Audit actions: recording events, signing chain heads, requesting exports, pruning by retention.

Every state change here writes its own audit event in the same transaction (docs/audit.md).
"""

import datetime as dt
import getpass
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.http import Http404
from django.utils import timezone

from audit.chain import (
    ChainHead,
    append_to_chain,
    canonical_json,
    chained_models,
    format_timestamp,
    lock_chain,
    read_head,
    spec_for,
)
from audit.models import AuditEvent, AuditExport, AuditSettings, ChainCheckpoint, RedactionPolicy
from evidence.signing import platform_key
from tenants.context import current_schema, in_tenant_schema
from tenants.task_context import send_tenant_task_on_commit


def do_record_audit_event(
    *, kind: str, actor: Any = None, actor_label: str = "", details: dict[str, Any] | None = None
) -> AuditEvent:
    """Append an audit event to the current tenant's audit chain. Callers run inside the tenant's context,
    normally inside the transaction of the change they record (keep it short: it holds the chain lock)."""
    if not in_tenant_schema():
        raise RuntimeError("Audit events belong to a tenant; no tenant schema is active.")
    return append_to_chain(
        AuditEvent,
        kind=kind,
        actor=actor,
        actor_label=actor_label or (str(actor) if actor else ""),
        details=details or {},
    )


def cli_actor_label() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except OSError:
        return "cli:unknown"


# --- checkpoints --------------------------------------------------------------------------------------


def checkpoint_statement(
    *, chain: str, head: ChainHead, reason: str, signed_at: dt.datetime, key_id: str
) -> bytes:
    return canonical_json(
        {
            "type": "convosuite.chain-checkpoint/1",
            "tenant": current_schema(),
            "chain": chain,
            "seq": head.seq,
            "head_hash": head.record_hash,
            "head_timestamp": format_timestamp(head.timestamp) if head.timestamp else None,
            "reason": reason,
            "signed_at": format_timestamp(signed_at),
            "key_id": key_id,
        }
    )


def _sign_head(model_class: type[models.Model], head: ChainHead, reason: str) -> ChainCheckpoint:
    key = platform_key()
    chain = spec_for(model_class).name
    signed_at = timezone.now()
    statement = checkpoint_statement(
        chain=chain, head=head, reason=reason, signed_at=signed_at, key_id=key.key_id
    )
    return ChainCheckpoint.objects.create(
        chain=chain,
        seq=head.seq,
        head_hash=head.record_hash,
        head_timestamp=head.timestamp,
        reason=reason,
        signed_at=signed_at,
        statement=statement.decode("utf-8"),
        signature=key.sign(statement),
        key_id=key.key_id,
    )


def do_sign_chain_heads() -> list[ChainCheckpoint]:
    """Sign the head of each of the current tenant's chains that moved since its last checkpoint."""
    signed = []
    for model_class in chained_models():
        head = read_head(model_class)
        chain = spec_for(model_class).name
        last = ChainCheckpoint.objects.filter(chain=chain).order_by("-seq", "-signed_at").first()
        if head.seq == 0 or (
            last is not None and last.seq == head.seq and last.head_hash == head.record_hash
        ):
            continue
        signed.append(_sign_head(model_class, head, ChainCheckpoint.Reason.PERIODIC))
    return signed


def latest_checkpoint(chain: str) -> ChainCheckpoint | None:
    return ChainCheckpoint.objects.filter(chain=chain).order_by("-seq", "-signed_at").first()


# --- retention ----------------------------------------------------------------------------------------


@transaction.atomic
def do_prune_chain(model_class: type[models.Model], *, before: dt.datetime, actor_label: str) -> int:
    """Delete the chain's rows older than `before`, leaving a signed retention checkpoint at the last
    deleted row (the anchor later exports start from). The only code path allowed past the guard."""
    spec = spec_for(model_class)
    lock_chain(model_class)
    last_pruned = (
        model_class._default_manager.filter(seq__isnull=False, **{f"{spec.timestamp_field}__lt": before})
        .order_by("-seq")
        .values_list("seq", "record_hash", spec.timestamp_field)
        .first()
    )
    if last_pruned is None:
        return 0
    boundary = ChainHead(seq=last_pruned[0], record_hash=last_pruned[1], timestamp=last_pruned[2])
    checkpoint = _sign_head(model_class, boundary, ChainCheckpoint.Reason.RETENTION)
    table = connection.ops.quote_name(model_class._meta.db_table)
    with connection.cursor() as cursor:
        # Transaction-local: the guard lets DELETE through only until this transaction ends.
        cursor.execute("SELECT set_config('convosuite.chain_retention', 'on', true)")
        cursor.execute(f"DELETE FROM {table} WHERE seq <= %s", [boundary.seq])  # noqa: S608 - quoted table name
        deleted = cursor.rowcount
        cursor.execute("SELECT set_config('convosuite.chain_retention', 'off', true)")
    do_record_audit_event(
        kind="audit.chain_pruned",
        actor_label=actor_label,
        details={
            "chain": spec.name,
            "before": format_timestamp(before),
            "deleted": deleted,
            "through_seq": boundary.seq,
            "through_hash": boundary.record_hash,
            "checkpoint_id": checkpoint.pk,
        },
    )
    return deleted


# --- settings and exports -------------------------------------------------------------------------------


def audit_settings() -> AuditSettings:
    found = AuditSettings.objects.order_by("pk").first()
    return found or AuditSettings.objects.create()


@transaction.atomic
def do_set_redaction_policy(policy: str, *, acting_user: Any) -> AuditSettings:
    if policy not in RedactionPolicy.values:
        raise ValueError(f"Unknown redaction policy {policy!r}.")
    current = audit_settings()
    if current.redaction_policy != policy:
        previous = current.redaction_policy
        current.redaction_policy = policy
        current.save(update_fields=["redaction_policy", "updated_at"])
        do_record_audit_event(
            kind="audit.redaction_policy_changed",
            actor=acting_user,
            details={"from": previous, "to": policy},
        )
    return current


class ExportRejected(ValueError):
    pass


MAX_EXPORT_WINDOW = dt.timedelta(days=3660)


def check_export_window(window_start: dt.datetime, window_end: dt.datetime) -> None:
    if timezone.is_naive(window_start) or timezone.is_naive(window_end):
        raise ExportRejected("The window's start and end need a time zone.")
    if window_end <= window_start:
        raise ExportRejected("The window must end after it starts.")
    if window_end - window_start > MAX_EXPORT_WINDOW:
        raise ExportRejected("The window may span at most ten years.")


@transaction.atomic
def do_request_model_call_export(
    *, window_start: dt.datetime, window_end: dt.datetime, acting_user: Any, acting_label: str = ""
) -> AuditExport:
    """Queue an export of the tenant's model calls; a worker writes the file (gateway.tasks).

    Platform staff under break-glass have no user row in the tenant's schema: they pass acting_user=None and
    an acting_label naming them."""
    check_export_window(window_start, window_end)
    export = AuditExport.objects.create(
        requested_by=acting_user,
        requested_by_label=acting_label or str(acting_user),
        window_start=window_start,
        window_end=window_end,
        redaction_policy=audit_settings().redaction_policy,
    )
    do_record_audit_event(
        kind="audit.export_requested",
        actor=acting_user,
        actor_label=acting_label,
        details={
            "export_id": str(export.id),
            "window_start": format_timestamp(window_start),
            "window_end": format_timestamp(window_end),
            "redaction_policy": export.redaction_policy,
        },
    )
    send_tenant_task_on_commit("audit.build_model_call_export", str(export.id))
    return export


def access_export_by_id(export_id: Any) -> AuditExport:
    """Exports of the current tenant (its schema); the same 404 for missing and malformed ids."""
    export = AuditExport.objects.filter(id=export_id).first()
    if export is None:
        raise Http404("No such export.")
    return export


def export_file_path(export: AuditExport) -> str:
    import os

    return os.path.join(settings.AUDIT_EXPORT_DIR, current_schema(), export.file_name)


def do_expire_exports(now: dt.datetime | None = None) -> int:
    import os

    now = now or timezone.now()
    expired = 0
    for export in AuditExport.objects.filter(status=AuditExport.Status.READY, expires_at__lte=now):
        path = export_file_path(export)
        if os.path.exists(path):
            os.remove(path)
        export.status = AuditExport.Status.EXPIRED
        export.save(update_fields=["status"])
        expired += 1
    return expired
