"""The post-mortem of a provider outage, prefilled from the records: the timeline (incident events and status
changes), the tenants whose calls met the model in the window, and per tenant how many calls were served by the
model, served by a fallback, failed or were refused. Platform admins then edit the text."""

import datetime as dt
from dataclasses import asdict, dataclass

from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, tenant_context

from gateway.models import ModelCall
from incidents.actions import do_add_timeline_event
from incidents.models import Incident, IncidentEvent, IncidentTenant, PostMortem, StatusChange
from tenants.models import Tenant

MARGIN = dt.timedelta(minutes=5)


@dataclass
class TenantFigures:
    tenant: str
    calls: int = 0
    served: int = 0  # answered by the model itself
    failed_over: int = 0  # answered by a fallback
    failed: int = 0  # no model answered ("unavailable")
    refused: int = 0


def outage_figures(alias: str, start: dt.datetime, end: dt.datetime) -> list[TenantFigures]:
    figures = []
    for tenant in Tenant.objects.exclude(schema_name=get_public_schema_name()).order_by("schema_name"):
        with tenant_context(tenant):
            calls = ModelCall.objects.filter(created_at__gte=start, created_at__lt=end).filter(
                Q(model_requested=alias) | Q(model_alias_served=alias)
            )
            row = TenantFigures(tenant=tenant.schema_name)
            for status, fallback, served_alias in calls.values_list(
                "status", "fallback_taken", "model_alias_served"
            ):
                row.calls += 1
                if status == ModelCall.Status.REFUSED:
                    row.refused += 1
                elif status in (ModelCall.Status.ERROR, ModelCall.Status.CUT_OFF):
                    row.failed += 1
                elif fallback and served_alias != alias:
                    row.failed_over += 1
                else:
                    row.served += 1
        if row.calls:
            figures.append(row)
    return figures


def do_draft_postmortem(incident: Incident, *, actor_label: str) -> PostMortem:
    incident.refresh_from_db()  # its window may have ended since the caller read it
    alias = str(incident.details.get("model", ""))
    start = incident.window_start - MARGIN
    end = (incident.window_end or timezone.now()) + MARGIN
    figures = outage_figures(alias, start, end) if alias else []
    for row in figures:
        IncidentTenant.objects.get_or_create(
            incident=incident,
            schema_name=row.tenant,
            defaults={
                "tenant": Tenant.objects.filter(schema_name=row.tenant).first(),
                "role": IncidentTenant.Role.AFFECTED,
            },
        )
    lines = [
        f"# Post-mortem {incident.reference}: {incident.title}",
        "",
        f"Window: {start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S} UTC "
        f"(outage {incident.opened_at:%H:%M:%S}–{incident.window_end:%H:%M:%S} UTC)."
        if incident.window_end
        else f"Window: from {start:%Y-%m-%d %H:%M:%S} UTC (still going).",
        "",
        "## Timeline (UTC)",
    ]
    events = [(e.at, f"{e.kind}: {e.message} ({e.actor_label})") for e in incident.events.all()]
    changes = [
        (
            c.at,
            f"status page: {c.alias} {c.state}{' — ' + c.note if c.note else ''} ({c.get_source_display()})",
        )
        for c in StatusChange.objects.filter(alias=alias, at__gte=start, at__lt=end)
    ]
    for at, text in sorted(events + changes, key=lambda item: item[0]):
        lines.append(f"- {at:%H:%M:%S} {text}")
    total = TenantFigures(tenant="all tenants")
    for row in figures:
        for name in ("calls", "served", "failed_over", "failed", "refused"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    lines += [
        "",
        f"## Affected tenants ({len(figures)})",
        "",
        "| tenant | calls | served by the model | failed over | failed | refused |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in [*figures, total]:
        lines.append(
            f"| {row.tenant} | {row.calls} | {row.served} | {row.failed_over} | {row.failed} | {row.refused} |"
        )
    lines += [
        "",
        "## Cause",
        "",
        "(what failed at the provider, from its status page or support)",
        "",
        "## What went well / what to improve",
        "",
        "- ",
        "",
        "## Actions",
        "",
        "- ",
    ]
    post_mortem, created = PostMortem.objects.update_or_create(
        incident=incident,
        defaults={
            "figures": {"model": alias, "tenants": [asdict(row) for row in figures], "total": asdict(total)},
            "body": "\n".join(lines),
            "edited_by": actor_label,
        },
    )
    do_add_timeline_event(
        incident,
        kind=IncidentEvent.Kind.NOTE,
        actor_label=actor_label,
        message=f"Post-mortem {'drafted' if created else 'redrafted'} from the records: {len(figures)} tenant(s), "
        f"{total.calls} call(s), {total.failed_over} failed over, {total.failed} failed.",
    )
    return post_mortem
