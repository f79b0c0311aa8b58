"""Celery tasks of the incident tooling. Platform-level tasks run in the public schema (sent from it); the
per-tenant ones take the tenant's schema and refuse to run outside it."""

from celery import shared_task
from django_tenants.utils import get_public_schema_name, tenant_context

from accounts.models import Role, User
from gateway.actions import access_gateway_policy
from incidents.actions import send_incident_email
from incidents.anomalies import access_watch_settings
from incidents.models import Incident, IncidentNotification
from incidents.postmortem import do_draft_postmortem
from incidents.status import status_page_url, sync_model_statuses
from tenants.models import Tenant
from tenants.task_context import requires_tenant_context


# Beat, every INCIDENTS_STATUS_SYNC_SECONDS: half-open is a matter of time, no call announces it.
@shared_task(name="incidents.sync_service_status")
def sync_service_status() -> int:
    return len(sync_model_statuses())


# No retries: a tenant missing one outage e-mail still has the status page and the console banner.
@shared_task(name="incidents.announce_outage")
def announce_outage(incident_id: int, phase: str) -> int:
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        return 0
    if phase == "ended":
        do_draft_postmortem(incident, actor_label="ConvoSuite platform (automatic)")
    sent = 0
    for tenant in Tenant.objects.exclude(schema_name=get_public_schema_name()).order_by("schema_name"):
        with tenant_context(tenant):
            notify_tenant_of_outage.delay(tenant.schema_name, incident_id, phase)
        sent += 1
    return sent


@shared_task(name="incidents.notify_tenant_of_outage")
@requires_tenant_context
def notify_tenant_of_outage(tenant_schema: str, incident_id: int, phase: str) -> int:
    """E-mail the tenant's admins, if the tenant opted in and uses the model."""
    incident = Incident.objects.filter(pk=incident_id).first()
    alias = str(incident.details.get("model", "")) if incident else ""
    if incident is None or not access_watch_settings().outage_emails:
        return 0
    if alias not in access_gateway_policy().allowed_models:
        return 0
    recipients = sorted(
        email
        for email in User.objects.filter(
            roles__contains=[Role.TENANT_ADMIN.value], is_active=True
        ).values_list("email", flat=True)
        if email
    )
    if phase == "started":
        subject = f"[ConvoSuite status] {alias} is unavailable ({incident.reference})"
        body = (
            f"The model {alias}, which your organisation uses, stopped answering at "
            f"{incident.opened_at:%Y-%m-%d %H:%M} UTC. Calls go to your fallback model where you configured one "
            "(Console → Models), otherwise they are refused with a clear message until it is back.\n\n"
            f"Follow it on the status page: {status_page_url()}\n\n"
            "You receive this because outage e-mails are on (Console → Incidents → Thresholds)."
        )
    else:
        subject = f"[ConvoSuite status] {alias} is available again ({incident.reference})"
        body = (
            f"The model {alias} answers again since {incident.window_end or incident.resolved_at:%Y-%m-%d %H:%M} UTC. "
            f"Calls made during the outage are in your model-call log.\n\n"
            f"Status page: {status_page_url()}"
        )
    return send_incident_email(
        incident,
        audience=IncidentNotification.Audience.TENANT_SUBSCRIBERS,
        recipients=recipients,
        subject=subject,
        body=body,
        schema_name=tenant_schema,
    )
