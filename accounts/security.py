"""Security events: refused cross-tenant access. Logged for ops and recorded in the tenant's audit trail.

What a tenant's admins may learn of an identity that belongs elsewhere (docs/identity.md, "Security events"):
that the attempt came from this organisation, another organisation, the platform or an account with no
organisation, and a pseudonymous reference that is stable for one identity within this tenant only. Never
another tenant's name or slug, nor another tenant's subject ids: those go to the platform's security log alone
(`ops_only`), next to the same reference, so platform staff can follow an event up.
"""

import logging
from collections.abc import Mapping

from django.http import HttpRequest
from django.utils.crypto import salted_hmac
from django_tenants.utils import get_public_schema_name

from audit.actions import do_record_audit_event

security_log = logging.getLogger("convosuite.security")

IDENTITY_REF_SALT = "convosuite.security.identity_ref"


def client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))


def identity_origin(*, claimed_tenant: str, here: str) -> str:
    """Where an identity (or session) comes from, as the tenant `here` may be told it."""
    if claimed_tenant == here:
        return "this organisation"
    if not claimed_tenant:
        return "no organisation"
    if claimed_tenant == get_public_schema_name():
        return "the platform"
    return "another organisation"


def identity_ref(*, here: str, source: str) -> str:
    """A pseudonym for `source` (e.g. issuer and subject) that is stable within the tenant `here` and differs
    between tenants, so two tenants cannot match their events up; keyed by SECRET_KEY."""
    return salted_hmac(IDENTITY_REF_SALT, f"{here}|{source}").hexdigest()[:16]


def refused_identity_details(
    request: HttpRequest, *, claimed_tenant: str, issuer: str, subject: str
) -> tuple[dict[str, str], dict[str, str]]:
    """(what the tenant's audit trail keeps, what only the platform's security log keeps) for a verified
    identity refused on this tenant's domain."""
    here = request.tenant.schema_name  # type: ignore[attr-defined]
    origin = identity_origin(claimed_tenant=claimed_tenant, here=here)
    details = {"origin": origin, "identity_ref": identity_ref(here=here, source=f"{issuer}|{subject}")}
    if origin == "this organisation":
        details["subject"] = subject  # one of the tenant's own people (e.g. a member without a role)
    return details, {"token_tenant": claimed_tenant or "-", "subject": subject}


def notify_security_event(
    request: HttpRequest, kind: str, *, ops_only: Mapping[str, str] | None = None, **details: str
) -> None:
    """`details` go to the tenant's audit trail (its admins read them); `ops_only` to the platform's log only."""
    tenant = getattr(request, "tenant", None)
    schema = getattr(tenant, "schema_name", "?")
    security_log.warning(
        "security event %s on tenant=%s path=%s ip=%s %s",
        kind,
        schema,
        request.path,
        client_address(request),
        " ".join(f"{k}={v}" for k, v in sorted({**details, **(ops_only or {})}.items())),
    )
    if tenant is not None and not tenant.is_platform:
        do_record_audit_event(
            kind=kind,
            actor_label="anonymous",
            details={"path": request.path, "ip": client_address(request), **details},
        )
