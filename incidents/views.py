"""Platform incident pages (platform domain, platform admins): the list, one incident with its timeline, blast
radius, draft notices and remediation, and the status page editor. Thin: parse, call one action, redirect."""

from typing import Any

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.access import platform_view
from incidents.actions import (
    IncidentRejected,
    access_incident_by_id,
    do_add_timeline_event,
    do_set_incident_status,
    do_write_review,
)
from incidents.blast_radius import compute_blast_radius
from incidents.credentials import do_revoke_tenant_credentials
from incidents.models import Incident, IncidentEvent, ModelStatus, PostMortem, ServiceState
from incidents.notices import do_send_tenant_notice, draft_notice
from incidents.postmortem import do_draft_postmortem
from incidents.remediation import do_purge_leaked_artefacts, do_rotate_tenant_secrets
from incidents.status import do_set_status_note, status_page_context, sync_model_statuses
from tenants.models import Tenant

PAGE_SIZE = 100


def staff_label(request: HttpRequest) -> str:
    user = request.user
    return f"platform admin {getattr(user, 'email', '') or user}"


@require_GET
@platform_view
def incident_list(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show", "active")
    kind = request.GET.get("kind", "")
    incidents = Incident.objects.prefetch_related("tenant_links")
    if show == "active":
        incidents = incidents.filter(status__in=[Incident.Status.OPEN, Incident.Status.CONTAINED])
    if kind in Incident.Kind.values:
        incidents = incidents.filter(kind=kind)
    counts = {status: Incident.objects.filter(status=status).count() for status in Incident.Status.values}
    return render(
        request,
        "incidents/platform_list.html",
        {
            "incidents": list(incidents[:PAGE_SIZE]),
            "show": show,
            "kind": kind,
            "kinds": Incident.Kind.choices,
            "counts": counts,
        },
    )


@require_GET
@platform_view
def incident_detail(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = access_incident_by_id(incident_id)
    radius = compute_blast_radius(incident)
    drafts = {tenant.schema_name: draft_notice(radius, tenant) for tenant in radius.tenants if tenant.present}
    post_mortem = PostMortem.objects.filter(incident=incident).first()
    return render(
        request,
        "incidents/platform_detail.html",
        {
            "incident": incident,
            "radius": radius,
            "exposures": [(tenant, drafts.get(tenant.schema_name)) for tenant in radius.tenants],
            "events": list(incident.events.all()),
            "notifications": list(incident.notifications.all()[:200]),
            "post_mortem": post_mortem,
            "statuses": Incident.Status.choices,
        },
    )


def _back(incident_id: int, anchor: str = "") -> HttpResponse:
    return redirect(f"/platform/incidents/{incident_id}/{'#' + anchor if anchor else ''}")


def _run(request: HttpRequest, incident_id: int, anchor: str, action: Any) -> HttpResponse:
    """Call one action; its refusal is shown as an error notice on the incident page."""
    try:
        done = action()
    except IncidentRejected as rejected:
        flash.error(request, str(rejected))
    else:
        if done:
            flash.success(request, done)
    return _back(incident_id, anchor)


@require_POST
@platform_view
def incident_status(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = access_incident_by_id(incident_id)
    status, note = request.POST.get("status", ""), request.POST.get("note", "")

    def act() -> str:
        changed = do_set_incident_status(incident, status, actor_label=staff_label(request), note=note)
        return f"{changed.reference} is now {changed.get_status_display().lower()}."

    return _run(request, incident_id, "timeline", act)


@require_POST
@platform_view
def incident_note(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = access_incident_by_id(incident_id)

    def act() -> str:
        do_add_timeline_event(
            incident,
            kind=IncidentEvent.Kind.NOTE,
            actor_label=staff_label(request),
            message=request.POST.get("text", ""),
        )
        return "Note added to the timeline."

    return _run(request, incident_id, "timeline", act)


@require_POST
@platform_view
def incident_review(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = access_incident_by_id(incident_id)

    def act() -> str:
        do_write_review(incident, request.POST.get("review", ""), actor_label=staff_label(request))
        return "Review saved."

    return _run(request, incident_id, "review", act)


@require_POST
@platform_view
def incident_notice(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = access_incident_by_id(incident_id)
    schema_name = request.POST.get("tenant", "")

    def act() -> str:
        notice = do_send_tenant_notice(
            incident,
            schema_name=schema_name,
            subject=request.POST.get("subject", ""),
            body=request.POST.get("body", ""),
            actor_label=staff_label(request),
        )
        return (
            f"Notice sent to {schema_name}: {len(notice.recipients)} admin(s) e-mailed, console banner shown."
        )

    return _run(request, incident_id, f"tenant-{schema_name}", act)


@require_POST
@platform_view
def incident_remediate(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = access_incident_by_id(incident_id)
    schema_name, what = request.POST.get("tenant", ""), request.POST.get("action", "")

    def act() -> str:
        if what == "purge":
            return do_purge_leaked_artefacts(
                incident, schema_name=schema_name, actor_label=staff_label(request)
            ).summary()
        if what == "rotate":
            return do_rotate_tenant_secrets(
                incident, schema_name=schema_name, actor_label=staff_label(request), log=lambda line: None
            )
        if what == "revoke":
            tenant = Tenant.objects.filter(schema_name=schema_name).first()
            if tenant is None or not incident.tenant_links.filter(schema_name=schema_name).exists():
                raise IncidentRejected(f"{schema_name} is not a tenant of {incident.reference}.")
            revoked = do_revoke_tenant_credentials(
                tenant, actor_label=staff_label(request), incident=incident
            )
            return (
                f"{schema_name}: {len(revoked.keys)} API key(s) revoked, {revoked.sessions} session(s) ended."
            )
        raise IncidentRejected("Choose purge, rotate or revoke.")

    return _run(request, incident_id, f"tenant-{schema_name}", act)


@require_POST
@platform_view
def incident_postmortem(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = access_incident_by_id(incident_id)

    def act() -> str:
        if request.POST.get("draft"):
            do_draft_postmortem(incident, actor_label=staff_label(request))
            return "Post-mortem drafted from the records."
        post_mortem = PostMortem.objects.filter(incident=incident).first()
        if post_mortem is None:
            raise IncidentRejected("Draft the post-mortem first.")
        post_mortem.body = request.POST.get("body", "").strip()
        post_mortem.edited_by = staff_label(request)
        post_mortem.save(update_fields=["body", "edited_by", "updated_at"])
        return "Post-mortem saved."

    return _run(request, incident_id, "post-mortem", act)


@require_GET
@platform_view
def status_admin(request: HttpRequest) -> HttpResponse:
    sync_model_statuses(throttle=True)
    return render(
        request,
        "incidents/platform_status.html",
        {**status_page_context(), "states": ServiceState.choices, "rows": list(ModelStatus.objects.all())},
    )


@require_POST
@platform_view
def status_update(request: HttpRequest) -> HttpResponse:
    try:
        do_set_status_note(
            alias=request.POST.get("alias", ""),
            override=request.POST.get("override", ""),
            note=request.POST.get("note", ""),
            actor_label=staff_label(request),
        )
    except IncidentRejected as rejected:
        flash.error(request, str(rejected))
    else:
        flash.success(request, "Status page updated.")
    return redirect("/platform/status/")
