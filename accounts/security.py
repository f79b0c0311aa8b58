"""Security events: refused cross-tenant access. Logged for ops and recorded in the tenant's audit trail."""

import logging

from django.http import HttpRequest

from audit.actions import do_record_audit_event

security_log = logging.getLogger("convosuite.security")


def client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))


def notify_security_event(request: HttpRequest, kind: str, **details: str) -> None:
    tenant = getattr(request, "tenant", None)
    schema = getattr(tenant, "schema_name", "?")
    security_log.warning(
        "security event %s on tenant=%s path=%s ip=%s %s",
        kind,
        schema,
        request.path,
        client_address(request),
        " ".join(f"{k}={v}" for k, v in sorted(details.items())),
    )
    if tenant is not None and not tenant.is_platform:
        do_record_audit_event(
            kind=kind,
            actor_label="anonymous",
            details={"path": request.path, "ip": client_address(request), **details},
        )
