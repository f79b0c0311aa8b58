"""Notices to tenant admins about an incident: a draft written from the blast radius, edited by a platform
admin, then sent — e-mailed to the tenant's admins and shown as a banner in its console until an admin
acknowledges it. Each notice is a row in the tenant's schema (its own record of what it was told), an audit
event in its chain and a line on the incident's timeline. A notice never names another tenant."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import Role, User
from audit.actions import do_record_audit_event
from incidents.actions import IncidentRejected, do_add_timeline_event, send_incident_email
from incidents.blast_radius import BlastRadius, TenantExposure
from incidents.models import Incident, IncidentEvent, IncidentNotification, IncidentTenant, PostMortem
from incidents.tenant.models import TenantNotice
from tenants.models import Tenant

MAX_SUBJECT = 200
MAX_BODY = 20_000


@dataclass(frozen=True)
class Draft:
    schema_name: str
    subject: str
    body: str
    recipients: list[str]


def _when(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d at %H:%M} UTC"


def _record_lines(exposure: TenantExposure) -> str:
    lines = []
    for record in exposure.records:
        if record.chain == "audit_events":
            continue
        where = {
            "model_calls": "model-call record",
            "chat_messages": "chat message",
            "knowledge_chunks": "knowledge passage",
        }.get(record.chain, record.chain)
        seq = f" #{record.seq}" if record.seq else ""
        at = f" ({_when(record.at)})" if record.at else ""
        lines.append(f"- {where}{seq} {record.ident}{at}: {record.summary}")
    return "\n".join(lines) or "- none"


def _people_lines(exposure: TenantExposure) -> str:
    return "\n".join(f"- {p.name} <{p.email}>: {p.why}" for p in exposure.people) or "- none"


def draft_notice(radius: BlastRadius, exposure: TenantExposure) -> Draft:
    incident = radius.incident
    ref = incident.reference
    containment = "Nothing had to be stopped in your organisation."
    for event in incident.events.filter(kind=IncidentEvent.Kind.CONTAINED).order_by("at"):
        if exposure.schema_name in (event.details or {}).get("tenants", []):
            paused = "frozen (read-only)" if event.details.get("mode") == "tenant" else "paused (kill switch)"
            containment = (
                f"Model calls of your organisation were {paused} on {_when(event.at)} while we investigate; "
                "we will switch them back on with you."
            )
            break
    if incident.kind == Incident.Kind.CROSS_TENANT_LEAK and exposure.role == IncidentTenant.Role.SOURCE:
        subject = f"[ConvoSuite security] {ref}: your data was stopped before it reached another organisation"
        opening = (
            f"On {_when(incident.opened_at)} a safety check in ConvoSuite's model gateway stopped a model request "
            "that carried data from your organisation while it was being sent on behalf of another "
            "organisation. It was stopped before any of the text reached the model provider, the other "
            "organisation's records or any person."
        )
        ask = "Nothing is required from you. You will receive our review once the cause is fixed."
    elif incident.kind == Incident.Kind.CROSS_TENANT_LEAK:
        subject = f"[ConvoSuite security] {ref}: data of another organisation was stopped in your workspace"
        opening = (
            f"On {_when(incident.opened_at)} a safety check in ConvoSuite's model gateway stopped a model request "
            "made in your organisation's name that carried data belonging to another organisation. It was "
            "stopped before the text reached the model provider, your users or your records (the record of "
            "the request is kept with its text withheld)."
        )
        ask = "Nothing is required from you. You will receive our review once the cause is fixed."
    elif incident.kind == Incident.Kind.PROVIDER_OUTAGE:
        model = incident.details.get("model", "a model")
        subject = f"[ConvoSuite status] {ref}: {model} was unavailable"
        ended = f" until {_when(incident.window_end)}" if incident.window_end else ", and it is not over yet"
        opening = (
            f"The model {model}, which your organisation uses, was unavailable from {_when(incident.opened_at)}"
            f"{ended}. Calls went to your fallback model where one is configured, otherwise they were refused "
            "with a clear message; each one is in your model-call log."
        )
        ask = "Nothing is required from you. Consider a fallback model (Console → Models) if you have none."
        figures = _outage_figures(incident, exposure.schema_name)
        body = (
            f"Hello,\n\n{opening}\n\n"
            f"Your calls to {model} in that time: {figures}\n\n"
            f"What you need to do: {ask}\n\n"
            f"Reference: {ref}. Reply to this message with any question.\n\n— The ConvoSuite platform team"
        )
        return Draft(exposure.schema_name, subject[:MAX_SUBJECT], body, list(exposure.admins))
    elif incident.kind == Incident.Kind.TENANT_COMPROMISE:
        subject = f"[ConvoSuite security] {ref}: unusual activity in your workspace"
        opening = (
            f"On {_when(incident.opened_at)} ConvoSuite detected activity in your workspace that is far from its "
            f"usual pattern ({incident.title}). This can mean an API key or an account is being misused."
        )
        ask = (
            "Please review the calls below. If they were not yours: revoke every API key and session from the "
            "console (Incidents → Revoke all keys and sessions), create new keys for your integrations, then "
            "switch the assistant back on (Kill switch). Tell us if you want your data key rotated."
        )
    else:
        subject = f"[ConvoSuite] {ref}: {incident.title}"
        opening = f"On {_when(incident.opened_at)}: {incident.title}."
        ask = "Nothing is required from you."
    body = (
        f"Hello,\n\n{opening}\n\n"
        f"What was involved in your organisation ({_when(radius.window_start)} to {_when(radius.window_end)}):\n"
        f"{_record_lines(exposure)}\n\n"
        f"People involved:\n{_people_lines(exposure)}\n\n"
        f"What we did: {containment}\n\n"
        f"What you need to do: {ask}\n\n"
        f"Reference: {ref}. Reply to this message with any question.\n\n— The ConvoSuite platform team"
    )
    return Draft(exposure.schema_name, subject[:MAX_SUBJECT], body, list(exposure.admins))


def _outage_figures(incident: Incident, schema_name: str) -> str:
    post_mortem = PostMortem.objects.filter(incident=incident).first()
    rows = (post_mortem.figures.get("tenants", []) if post_mortem else []) or []
    row = next((r for r in rows if r.get("tenant") == schema_name), None)
    if row is None:
        return "none recorded (yet: the figures come from the post-mortem)."
    return (
        f"{row['calls']} call(s): {row['served']} answered by it, {row['failed_over']} by your fallback, "
        f"{row['failed']} refused as unavailable."
    )


def do_send_tenant_notice(
    incident: Incident, *, schema_name: str, subject: str, body: str, actor_label: str
) -> TenantNotice:
    """Write the notice into the tenant's schema (banner), audit it there, e-mail its admins, and put it on the
    incident's timeline."""
    subject, body = subject.strip(), body.strip()
    if not subject or not body:
        raise IncidentRejected("A notice needs a subject and a text.")
    if len(subject) > MAX_SUBJECT or len(body) > MAX_BODY:
        raise IncidentRejected(
            f"Keep the subject under {MAX_SUBJECT} and the text under {MAX_BODY} characters."
        )
    if not incident.tenant_links.filter(schema_name=schema_name).exists():
        raise IncidentRejected(f"{schema_name} is not part of {incident.reference}.")
    tenant = Tenant.objects.filter(schema_name=schema_name).first()
    if tenant is None:
        raise IncidentRejected(f"{schema_name} no longer exists.")
    with tenant_context(tenant):
        recipients = sorted(
            email
            for email in User.objects.filter(
                roles__contains=[Role.TENANT_ADMIN.value], is_active=True
            ).values_list("email", flat=True)
            if email
        )
        with transaction.atomic():
            notice = TenantNotice.objects.create(
                incident_id=incident.pk,
                reference=incident.reference,
                subject=subject,
                body=body,
                severity=incident.severity,
                sent_by_label=actor_label,
                recipients=recipients,
            )
            do_record_audit_event(
                kind="incident.notice_sent",
                actor_label=actor_label,
                details={"incident": incident.reference, "notice_id": notice.pk, "subject": subject},
            )
    sent = send_incident_email(
        incident,
        audience=IncidentNotification.Audience.TENANT_ADMINS,
        recipients=recipients,
        subject=subject,
        body=body,
        schema_name=schema_name,
    )
    IncidentNotification.objects.create(
        incident=incident,
        channel=IncidentNotification.Channel.BANNER,
        audience=IncidentNotification.Audience.TENANT_ADMINS,
        schema_name=schema_name,
        subject=subject[:255],
    )
    do_add_timeline_event(
        incident,
        kind=IncidentEvent.Kind.NOTIFIED,
        actor_label=actor_label,
        message=f"Notice sent to {schema_name}: e-mail to {sent} of {len(recipients)} admins, console banner.",
        details={"schema_name": schema_name, "notice_id": notice.pk, "recipients": len(recipients)},
    )
    return notice


def open_notices() -> list[TenantNotice]:
    """Notices of the current tenant no admin has acknowledged yet (the console banner)."""
    return list(TenantNotice.objects.filter(acknowledged_at__isnull=True)[:5])


def access_notice_by_id(notice_id: Any) -> TenantNotice:
    notice = TenantNotice.objects.filter(pk=notice_id).first() if str(notice_id).isdigit() else None
    if notice is None:
        raise Http404("No such notice.")
    return notice


@transaction.atomic
def do_acknowledge_notice(notice: TenantNotice, *, acting_user: User) -> TenantNotice:
    if notice.acknowledged_at is not None:
        return notice
    notice.acknowledged_at = timezone.now()
    notice.acknowledged_by = acting_user
    notice.save(update_fields=["acknowledged_at", "acknowledged_by"])
    do_record_audit_event(
        kind="incident.notice_acknowledged",
        actor=acting_user,
        details={"incident": notice.reference, "notice_id": notice.pk},
    )
    return notice


AUTOMATIC = "ConvoSuite platform (automatic)"


def auto_notice(incident: Incident, schema_name: str) -> TenantNotice | None:
    """The notice sent by itself when the platform contained a tenant (anomaly rule set to contain)."""
    if incident.kind != Incident.Kind.TENANT_COMPROMISE:
        return None
    subject = (
        f"[ConvoSuite security] {incident.reference}: the assistant was switched off after unusual activity"
    )
    body = (
        "Hello,\n\n"
        f"On {_when(timezone.now())} ConvoSuite switched the assistant of your organisation off automatically: "
        f"{incident.title.split(': ', 1)[-1]}. This can mean an API key or an account is being misused; your "
        "budgets were not exceeded.\n\n"
        "What to do now, in the console (Incidents):\n"
        "1. Look at the incident and the calls it lists. If they were yours, switch the assistant back on "
        "(Kill switch) and raise the threshold under Incidents → Thresholds.\n"
        "2. If they were not: press “Revoke all API keys and sessions” (everyone signs in again, integrations "
        "need new keys), create new keys, then switch the assistant back on.\n"
        "3. Ask us to rotate your data key if you think stored data was reached.\n\n"
        f"Reference: {incident.reference}.\n\n— The ConvoSuite platform team"
    )
    return do_send_tenant_notice(
        incident, schema_name=schema_name, subject=subject, body=body, actor_label=AUTOMATIC
    )
