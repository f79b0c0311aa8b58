"""Incident actions: open, add to the timeline, change status, notify. Views, commands, the gateway's screen,
the anomaly rules, the status sync and other apps (evidence) call these; nothing else writes incidents.

The tables live in the public schema. These functions may be called from inside a tenant's context (the
gateway's screen runs in the receiving tenant's connection): the incident tables exist only in the public
schema, so the tenant's search_path (`tenant, public`) resolves them there. Anything that reads a table that
also exists in tenant schemas (users) switches to the public schema explicitly.
"""

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from accounts.models import Role, User
from incidents.models import Incident, IncidentEvent, IncidentNotification, IncidentTenant
from tenants.models import Tenant

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "ConvoSuite platform"


class IncidentRejected(ValueError):
    """A change an incident cannot take (unknown status, empty note); the message is shown as is."""


def _link_tenants(incident: Incident, tenants: Iterable[tuple[str, str]]) -> None:
    known = {t.schema_name: t for t in Tenant.objects.filter(schema_name__in=[s for s, _ in tenants])}
    for schema_name, role in tenants:
        IncidentTenant.objects.get_or_create(
            incident=incident,
            schema_name=schema_name,
            defaults={"tenant": known.get(schema_name), "role": role},
        )


def do_open_incident(
    *,
    kind: str,
    title: str,
    detected_by: str,
    severity: str = Incident.Severity.HIGH,
    summary: str = "",
    tenants: Sequence[tuple[str, str]] = (),
    details: dict[str, Any] | None = None,
    dedupe_key: str = "",
    notify_platform: bool = True,
    now: dt.datetime | None = None,
) -> Incident:
    """Open a platform incident, or, when an open incident has the same dedupe_key, add a 'seen again' line to
    its timeline and return it. Platform admins are e-mailed once, when it is opened (after commit).

    The API other apps use, e.g. evidence when a periodic signer refuses a head that does not extend the last:

        do_open_incident(kind=Incident.Kind.EVIDENCE, title="Signer refused a chain head of acme",
                         detected_by="evidence periodic signer", severity=Incident.Severity.CRITICAL,
                         tenants=[("acme", IncidentTenant.Role.AFFECTED)], details={"chain": "model_calls", ...},
                         dedupe_key="evidence:acme:model_calls")

    tenants: (schema name, IncidentTenant.Role) pairs. details: ids and hashes only, never tenant text."""
    if kind not in Incident.Kind.values:
        raise IncidentRejected(f"Unknown incident kind {kind!r}.")
    if severity not in Incident.Severity.values:
        raise IncidentRejected(f"Unknown severity {severity!r}.")
    moment = now or timezone.now()
    facts = details or {}
    if dedupe_key:
        existing = _active_by_dedupe_key(dedupe_key)
        if existing is not None:
            _note_seen_again(existing, detected_by, facts, tenants, moment)
            return existing
    try:
        with transaction.atomic():
            incident = Incident.objects.create(
                kind=kind,
                severity=severity,
                title=title[:200],
                summary=summary,
                detected_by=detected_by[:255],
                opened_at=moment,
                window_start=moment,
                dedupe_key=dedupe_key[:200],
                details=facts,
            )
            _link_tenants(incident, tenants)
            IncidentEvent.objects.create(
                incident=incident,
                at=moment,
                kind=IncidentEvent.Kind.DETECTED,
                actor_label=detected_by[:255],
                message=summary or title,
                details=facts,
            )
    except IntegrityError:
        # Another process opened the same incident a moment ago: join it.
        existing = _active_by_dedupe_key(dedupe_key)
        if existing is None:
            raise
        _note_seen_again(existing, detected_by, facts, tenants, moment)
        return existing
    logger.warning("incident opened %s kind=%s severity=%s", incident.reference, kind, severity)
    if notify_platform:
        incident_id = incident.pk
        transaction.on_commit(lambda: notify_platform_admins(incident_id))
    return incident


def _active_by_dedupe_key(dedupe_key: str) -> Incident | None:
    return Incident.objects.filter(
        dedupe_key=dedupe_key, status__in=[Incident.Status.OPEN, Incident.Status.CONTAINED]
    ).first()


def _note_seen_again(
    incident: Incident,
    detected_by: str,
    details: dict[str, Any],
    tenants: Sequence[tuple[str, str]],
    moment: dt.datetime,
) -> None:
    with transaction.atomic():
        _link_tenants(incident, tenants)
        IncidentEvent.objects.create(
            incident=incident,
            at=moment,
            kind=IncidentEvent.Kind.SEEN_AGAIN,
            actor_label=detected_by[:255],
            message="Detected again.",
            details=details,
        )


def access_incident_by_id(incident_id: Any) -> Incident:
    incident = Incident.objects.filter(pk=incident_id).first() if str(incident_id).isdigit() else None
    if incident is None:
        raise Http404("No such incident.")
    return incident


def access_tenant_incident_by_id(schema_name: str, incident_id: Any) -> Incident:
    """An incident the tenant is part of; another tenant's incident looks exactly like a missing one."""
    incident = access_incident_by_id(incident_id)
    if not incident.tenant_links.filter(schema_name=schema_name).exists():
        raise Http404("No such incident.")
    return incident


def incidents_of_tenant(schema_name: str) -> list[Incident]:
    return list(Incident.objects.filter(tenant_links__schema_name=schema_name).order_by("-opened_at")[:200])


def do_add_timeline_event(
    incident: Incident,
    *,
    kind: str,
    actor_label: str,
    message: str,
    details: dict[str, Any] | None = None,
) -> IncidentEvent:
    if kind not in IncidentEvent.Kind.values:
        raise IncidentRejected(f"Unknown timeline event kind {kind!r}.")
    if not message.strip():
        raise IncidentRejected("Write what happened.")
    return IncidentEvent.objects.create(
        incident=incident,
        kind=kind,
        actor_label=actor_label[:255],
        message=message.strip(),
        details=details or {},
    )


_STATUS_STAMPS = {
    Incident.Status.CONTAINED: "contained_at",
    Incident.Status.RESOLVED: "resolved_at",
    Incident.Status.CLOSED: "closed_at",
}
_STATUS_ORDER = [
    Incident.Status.OPEN,
    Incident.Status.CONTAINED,
    Incident.Status.RESOLVED,
    Incident.Status.CLOSED,
]


@transaction.atomic
def do_set_incident_status(
    incident: Incident, status: str, *, actor_label: str, note: str = "", now: dt.datetime | None = None
) -> Incident:
    """Move an incident along open -> contained -> resolved -> closed (steps may be skipped, never undone,
    except re-opening a resolved incident). Resolving ends its window; closing records the review note."""
    if status not in Incident.Status.values:
        raise IncidentRejected(f"Unknown status {status!r}.")
    locked = Incident.objects.select_for_update().get(pk=incident.pk)
    if locked.status == status:
        return locked
    moment = now or timezone.now()
    reopening = status == Incident.Status.OPEN and locked.status == Incident.Status.RESOLVED
    if (
        _STATUS_ORDER.index(Incident.Status(status)) < _STATUS_ORDER.index(Incident.Status(locked.status))
        and not reopening
    ):
        raise IncidentRejected(
            f"{locked.reference} is {locked.get_status_display().lower()}; it cannot go back to {status}."
        )
    previous = locked.status
    locked.status = status
    fields = ["status"]
    stamp = _STATUS_STAMPS.get(Incident.Status(status))
    if stamp and getattr(locked, stamp) is None:
        setattr(locked, stamp, moment)
        fields.append(stamp)
    if status in (Incident.Status.RESOLVED, Incident.Status.CLOSED) and locked.window_end is None:
        locked.window_end = moment
        fields.append("window_end")
    if reopening:
        locked.window_end = None
        locked.resolved_at = None
        fields += ["window_end", "resolved_at"]
    locked.save(update_fields=fields)
    IncidentEvent.objects.create(
        incident=locked,
        at=moment,
        kind=IncidentEvent.Kind.STATUS,
        actor_label=actor_label[:255],
        message=note.strip() or f"Status: {previous} → {status}.",
        details={"from": previous, "to": status},
    )
    return locked


def do_record_containment(
    incident: Incident, *, actor_label: str, message: str, details: dict[str, Any] | None = None
) -> Incident:
    """A containment step was taken (kill switch, freeze, keys revoked): a timeline line, and the incident is
    'contained' if it was still open."""
    do_add_timeline_event(
        incident, kind=IncidentEvent.Kind.CONTAINED, actor_label=actor_label, message=message, details=details
    )
    if incident.status == Incident.Status.OPEN:
        return do_set_incident_status(
            incident, Incident.Status.CONTAINED, actor_label=actor_label, note="Contained: " + message
        )
    return incident


@transaction.atomic
def do_write_review(incident: Incident, review: str, *, actor_label: str) -> Incident:
    incident.review = review.strip()
    incident.save(update_fields=["review"])
    do_add_timeline_event(
        incident, kind=IncidentEvent.Kind.NOTE, actor_label=actor_label, message="Review text updated."
    )
    return incident


# --- notifications ---------------------------------------------------------------------------------------


def platform_admin_emails() -> list[str]:
    """Platform staff with the platform_admin role (users of the public schema)."""
    with schema_context(get_public_schema_name()):
        return sorted(
            email
            for email in User.objects.filter(
                roles__contains=[Role.PLATFORM_ADMIN.value], is_active=True, is_staff=True
            ).values_list("email", flat=True)
            if email
        )


def send_incident_email(
    incident: Incident,
    *,
    audience: str,
    recipients: list[str],
    subject: str,
    body: str,
    schema_name: str = "",
) -> int:
    """Send one e-mail per recipient (so no one sees another organisation's addresses) and record each send,
    failed ones too, on the incident. Returns how many went out."""
    sent = 0
    for recipient in recipients:
        error = ""
        try:
            send_mail(
                subject=subject,
                message=body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[recipient],
            )
            sent += 1
        except Exception as failure:  # noqa: BLE001 - a mail outage must not hide the incident; it is recorded
            error = f"{type(failure).__name__}: {failure}"[:500]
            logger.warning("incident e-mail to %s failed for %s: %s", audience, incident.reference, error)
        IncidentNotification.objects.create(
            incident=incident,
            channel=IncidentNotification.Channel.EMAIL,
            audience=audience,
            schema_name=schema_name,
            recipient=recipient,
            subject=subject[:255],
            sent=not error,
            error=error,
        )
    return sent


def notify_platform_admins(incident_id: int) -> int:
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        return 0
    recipients = platform_admin_emails()
    tenants = ", ".join(f"{link.schema_name} ({link.role})" for link in incident.tenant_links.all()) or "none"
    body = (
        f"{incident.reference}: {incident.title}\n"
        f"Kind: {incident.get_kind_display()}. Severity: {incident.get_severity_display()}.\n"
        f"Detected by: {incident.detected_by} at {incident.opened_at:%Y-%m-%d %H:%M:%S} UTC.\n"
        f"Tenants: {tenants}.\n\n"
        f"{incident.summary}\n\n"
        f"Open the incident on the platform site: /platform/incidents/{incident.pk}/"
    )
    sent = send_incident_email(
        incident,
        audience=IncidentNotification.Audience.PLATFORM_ADMINS,
        recipients=recipients,
        subject=f"[ConvoSuite {incident.get_severity_display()}] {incident.reference} {incident.title}"[:255],
        body=body,
    )
    if not recipients:
        logger.error("incident %s: no platform admin has an e-mail address to alert", incident.reference)
    do_add_timeline_event(
        incident,
        kind=IncidentEvent.Kind.NOTIFIED,
        actor_label=SYSTEM_ACTOR,
        message=f"Platform admins alerted by e-mail ({sent} of {len(recipients)} sent).",
        details={"audience": "platform_admins", "sent": sent, "recipients": len(recipients)},
    )
    return sent
