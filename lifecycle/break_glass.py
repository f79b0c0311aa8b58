"""Break-glass: the only way platform staff can read a tenant's content.

A grant names the staff member, the tenant, a written reason and a duration (at most an hour). Opening it,
every page read under it and closing it are audit events in the tenant's own schema, which the tenant's
admins see in their console; opening it also e-mails them. An expired or closed grant opens nothing.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.members import tenant_admin_emails
from accounts.models import Role, User
from audit.actions import do_record_audit_event
from tenants.models import BreakGlassGrant, Tenant


class BreakGlassRejected(ValueError):
    """The grant request is incomplete or not allowed; the message is shown to the platform admin."""


def staff_label(staff: User) -> str:
    return f"platform admin {staff.email or staff.username} (break-glass)"


def check_break_glass_request(tenant: Tenant | None, reason: str, minutes: int) -> str:
    if tenant is None or tenant.is_platform:
        raise BreakGlassRejected("Choose the tenant whose data you need to read.")
    if tenant.status == Tenant.Status.KILLED:
        raise BreakGlassRejected("This tenant is being removed; its data can no longer be opened.")
    reason = reason.strip()
    if len(reason) < BreakGlassGrant.MIN_REASON_LENGTH:
        raise BreakGlassRejected(
            f"Write down why you need access (at least {BreakGlassGrant.MIN_REASON_LENGTH} characters): "
            "the tenant's administrators will read it."
        )
    if not 1 <= minutes <= BreakGlassGrant.MAX_MINUTES:
        raise BreakGlassRejected(f"A grant lasts between 1 and {BreakGlassGrant.MAX_MINUTES} minutes.")
    return reason


def notify_tenant_admins_of_grant(grant: BreakGlassGrant, recipients: list[str]) -> None:
    if not recipients:
        return
    send_mail(
        subject=f"[ConvoSuite] Platform staff opened break-glass access to {grant.tenant.name}",
        message=(
            f"{grant.staff.email or grant.staff.username} of the ConvoSuite platform team opened read access to "
            f"your organisation's data at {grant.opened_at:%Y-%m-%d %H:%M} UTC, "
            f"until {grant.expires_at:%Y-%m-%d %H:%M} UTC.\n\n"
            f"Reason given:\n{grant.reason}\n\n"
            "Every page they read is listed in your console under Audit events."
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )


@transaction.atomic
def do_open_break_glass_grant(
    staff: User, tenant: Tenant | None, *, reason: str, minutes: int
) -> BreakGlassGrant:
    if not staff.has_role(Role.PLATFORM_ADMIN):
        raise PermissionDenied
    reason = check_break_glass_request(tenant, reason, minutes)
    assert tenant is not None  # noqa: S101 - checked just above, for the type checker
    now = timezone.now()
    grant = BreakGlassGrant.objects.create(
        staff=staff, tenant=tenant, reason=reason, opened_at=now, expires_at=now + timedelta(minutes=minutes)
    )
    with tenant_context(tenant):
        do_record_audit_event(
            kind="break_glass.opened",
            actor_label=staff_label(staff),
            details={
                "grant": grant.pk,
                "reason": reason,
                "opened_at": now.isoformat(),
                "expires_at": grant.expires_at.isoformat(),
            },
        )
        recipients = tenant_admin_emails()
    transaction.on_commit(lambda: notify_tenant_admins_of_grant(grant, recipients))
    return grant


@transaction.atomic
def do_close_break_glass_grant(grant: BreakGlassGrant, *, staff: User) -> BreakGlassGrant:
    if grant.closed_at is not None:
        return grant
    grant.closed_at = timezone.now()
    grant.save(update_fields=["closed_at"])
    with tenant_context(grant.tenant):
        do_record_audit_event(
            kind="break_glass.closed",
            actor_label=staff_label(staff),
            details={"grant": grant.pk, "closed_at": grant.closed_at.isoformat()},
        )
    return grant


def access_active_grant_by_id(staff: User, grant_id: int) -> BreakGlassGrant:
    """The staff member's own grant, if it is still open; someone else's grant looks like a missing one."""
    grant = BreakGlassGrant.objects.select_related("tenant", "staff").filter(pk=grant_id, staff=staff).first()
    if grant is None:
        raise Http404("No such grant.")
    if not grant.is_active_at(timezone.now()):
        raise PermissionDenied("This break-glass grant has expired or was closed.")
    return grant


def do_record_break_glass_read(grant: BreakGlassGrant, *, path: str, what: str, **details: Any) -> None:
    """Called inside tenant_context(grant.tenant) for every page read under the grant."""
    do_record_audit_event(
        kind="break_glass.read",
        actor_label=staff_label(grant.staff),
        details={"grant": grant.pk, "path": path, "what": what, **details},
    )
