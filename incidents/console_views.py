"""The tenant console's incident pages (tenant admins): the incidents that involve the tenant (told in the
tenant's terms, never naming another tenant), the notices it received, its anomaly thresholds and outage
e-mails, and the containment button: revoke every API key and session."""

import datetime as dt
from typing import Any

from django.contrib import messages as flash
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.access import tenant_view
from accounts.models import Role
from accounts.requests import TenantRequest
from console.nav import nav_sections
from incidents.actions import access_tenant_incident_by_id, incidents_of_tenant
from incidents.anomalies import (
    EDITABLE_FIELDS,
    POSITIVE_FIELDS,
    WatchSettingsError,
    access_watch_settings,
    do_set_watch_settings,
)
from incidents.credentials import do_revoke_tenant_credentials
from incidents.models import Incident, IncidentTenant
from incidents.notices import access_notice_by_id, do_acknowledge_notice
from incidents.replay import replay_window
from incidents.status import status_page_url
from incidents.tenant.models import TenantNotice

ADMINS = [Role.TENANT_ADMIN.value]
ACTIVE = "incidents"
REPLAY_LOOKBACK = dt.timedelta(minutes=30)


def tenant_summary(incident: Incident, schema_name: str) -> str:
    """What the incident is, in this tenant's terms: another tenant is never named."""
    link = incident.tenant_links.filter(schema_name=schema_name).first()
    where = incident.details.get("where", "")
    if incident.kind == Incident.Kind.CROSS_TENANT_LEAK:
        if link is not None and link.role == IncidentTenant.Role.SOURCE:
            return f"Data of your organisation was stopped on its way to another organisation ({where})."
        return (
            f"Data of another organisation was stopped in your organisation's {where} before anyone saw it."
        )
    if incident.kind == Incident.Kind.TENANT_COMPROMISE:
        return "Unusual activity: " + incident.title.split(": ", 1)[-1]
    return incident.title


def _schema(request: TenantRequest) -> str:
    return str(request.tenant.schema_name)


def _page(request: TenantRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(
        request, template, {"nav": nav_sections(ACTIVE), "active": ACTIVE, **context}, status=status
    )


def _settings_rows(values: Any) -> list[dict[str, Any]]:
    rows = []
    for rule, label, help_text, numbers in (
        ("spend", "Tokens per minute far above the usual",
         "Trips when a minute's tokens pass the multiplier × your usual busy minute (last 7 days).",
         [("spend_multiplier", "× usual busy minute"), ("spend_min_tokens_per_minute", "tokens/min at least")]),
        ("new_key", "A new API key calling at volume",
         "A key younger than the hours given making more calls per minute than allowed.",
         [("new_key_hours", "hours old at most"), ("new_key_calls_per_minute", "calls/min")]),
        ("hours", "Calls at an unusual hour", "An hour of the day with no call in the last 14 days.", []),
        ("new_model", "A model never used before", "A model with no call in the last 30 days.", []),
        ("refused", "Many refused calls", "Refused by rate limits, budgets or the allow-list.",
         [("refused_per_minute", "refusals/min")]),
    ):  # fmt: skip
        rows.append(
            {
                "rule": rule,
                "label": label,
                "help": help_text,
                "enabled": getattr(values, f"{rule}_enabled"),
                "action": getattr(values, f"{rule}_action"),
                "numbers": [(name, unit, getattr(values, name)) for name, unit in numbers],
            }
        )
    return rows


def _incidents_page(request: TenantRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    schema = _schema(request)
    incidents = [(incident, tenant_summary(incident, schema)) for incident in incidents_of_tenant(schema)]
    settings_row = access_watch_settings()
    return _page(
        request,
        "incidents/console_list.html",
        {
            "incidents": incidents,
            "notices": list(TenantNotice.objects.all()[:20]),
            "watch": settings_row,
            "rules": _settings_rows(settings_row),
            "status_url": status_page_url(request),
            "error": error,
        },
        status=status,
    )


@require_GET
@tenant_view(roles=ADMINS)
def incidents(request: TenantRequest) -> HttpResponse:
    return _incidents_page(request)


@require_GET
@tenant_view(roles=ADMINS)
def incident(request: TenantRequest, incident_id: int) -> HttpResponse:
    schema = _schema(request)
    found = access_tenant_incident_by_id(schema, incident_id)
    replay = None
    if found.kind == Incident.Kind.TENANT_COMPROMISE:
        replay = replay_window(found.window_start - REPLAY_LOOKBACK, found.window_end or timezone.now())
    return _page(
        request,
        "incidents/console_detail.html",
        {
            "incident": found,
            "summary": tenant_summary(found, schema),
            "notices": list(TenantNotice.objects.filter(incident_id=found.pk)),
            "replay": replay,
        },
    )


@require_POST
@tenant_view(roles=ADMINS)
def acknowledge_notice(request: TenantRequest, notice_id: int) -> HttpResponse:
    do_acknowledge_notice(access_notice_by_id(notice_id), acting_user=request.user)
    flash.success(request, "Notice acknowledged.")
    return redirect(request.POST.get("next") or "/console/incidents/")


def _parse_watch_form(data: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in EDITABLE_FIELDS:
        if name.endswith("_enabled") or name == "outage_emails":
            values[name] = data.get(name) == "on"
        elif name.endswith("_action"):
            values[name] = data.get(name, "")
        elif name in POSITIVE_FIELDS:
            raw = str(data.get(name, "")).strip()
            if not raw.isdigit():
                raise WatchSettingsError(f"{name}: enter a whole number.")
            values[name] = int(raw)
    return values


@require_POST
@tenant_view(roles=ADMINS)
def save_watch_settings(request: TenantRequest) -> HttpResponse:
    try:
        do_set_watch_settings(_parse_watch_form(request.POST), actor=request.user)
    except WatchSettingsError as error:
        return _incidents_page(request, error=str(error), status=400)
    flash.success(request, "Thresholds saved.")
    return redirect("/console/incidents/#thresholds")


@require_POST
@tenant_view(roles=ADMINS)
def revoke_credentials(request: TenantRequest) -> HttpResponse:
    """Every API key revoked and every session ended, this admin's included: everyone signs in again."""
    if request.POST.get("confirm") != "yes":
        return _incidents_page(request, error="Confirm that every key and session should end.", status=400)
    tenant = request.tenant
    open_incident = (
        Incident.objects.filter(
            tenant_links__schema_name=tenant.schema_name,
            kind=Incident.Kind.TENANT_COMPROMISE,
            status__in=[Incident.Status.OPEN, Incident.Status.CONTAINED],
        )
        .order_by("-opened_at")
        .first()
    )
    do_revoke_tenant_credentials(tenant, acting_user=request.user, incident=open_incident)
    # This admin's session went with the others: the next page asks them to sign in again.
    return redirect("/")
