from typing import Any

from django.db import connection

from audit.models import AuditEvent


def do_record_audit_event(
    *, kind: str, actor: Any = None, actor_label: str = "", details: dict[str, Any] | None = None
) -> AuditEvent:
    """Write an audit event into the current tenant's schema. Callers run inside the tenant's context."""
    if connection.schema_name == "public":
        raise RuntimeError("Audit events belong to a tenant; no tenant schema is active.")
    return AuditEvent.objects.create(
        kind=kind,
        actor=actor,
        actor_label=actor_label or (str(actor) if actor else ""),
        details=details or {},
    )
