from typing import Any

from audit.models import AuditEvent
from tenants.context import in_tenant_schema


def do_record_audit_event(
    *, kind: str, actor: Any = None, actor_label: str = "", details: dict[str, Any] | None = None
) -> AuditEvent:
    """Write an audit event into the current tenant's schema. Callers run inside the tenant's context."""
    if not in_tenant_schema():
        raise RuntimeError("Audit events belong to a tenant; no tenant schema is active.")
    return AuditEvent.objects.create(
        kind=kind,
        actor=actor,
        actor_label=actor_label or (str(actor) if actor else ""),
        details=details or {},
    )
