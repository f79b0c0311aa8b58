"""Containment of a compromised tenant: revoke every API key and end every session (everyone signs in again),
from the console (tenant admins) or the command line (platform). Audited in the tenant's chain and, when an
incident is named, on its timeline."""

from dataclasses import dataclass
from typing import Any

from django.contrib.sessions.models import Session
from django.db import transaction
from django_tenants.utils import tenant_context

from accounts.middleware import SESSION_TENANT_KEY
from audit.actions import do_record_audit_event
from gateway.api.actions import do_revoke_api_key
from gateway.api.models import ApiKey
from incidents.actions import do_add_timeline_event
from incidents.models import Incident, IncidentEvent
from tenants.models import Tenant


@dataclass(frozen=True)
class Revoked:
    keys: list[str]  # prefixes
    sessions: int


def end_tenant_sessions(schema_name: str) -> int:
    """Sessions live in the public schema; those bound to the tenant are deleted (their holders sign in again)."""
    doomed = [
        session.pk
        for session in Session.objects.iterator(chunk_size=2000)
        if session.get_decoded().get(SESSION_TENANT_KEY) == schema_name
    ]
    Session.objects.filter(pk__in=doomed).delete()
    return len(doomed)


def do_revoke_tenant_credentials(
    tenant: Tenant, *, acting_user: Any = None, actor_label: str = "", incident: Incident | None = None
) -> Revoked:
    with tenant_context(tenant), transaction.atomic():
        keys = list(ApiKey.objects.filter(revoked_at__isnull=True).order_by("created_at"))
        for key in keys:
            do_revoke_api_key(key, acting_user=acting_user, actor_label=actor_label)
        sessions = end_tenant_sessions(tenant.schema_name)
        do_record_audit_event(
            kind="security.credentials_revoked",
            actor=acting_user,
            actor_label=actor_label,
            details={
                "api_keys": [key.prefix for key in keys],
                "sessions_ended": sessions,
                "incident": incident.reference if incident else None,
            },
        )
    revoked = Revoked(keys=[key.prefix for key in keys], sessions=sessions)
    if incident is not None:
        do_add_timeline_event(
            incident,
            kind=IncidentEvent.Kind.CONTAINED,
            actor_label=actor_label or str(acting_user),
            message=f"{tenant.schema_name}: {len(revoked.keys)} API key(s) revoked, {sessions} session(s) ended.",
            details={"tenants": [tenant.schema_name], "keys": revoked.keys, "sessions": sessions},
        )
    return revoked
