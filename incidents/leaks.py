"""Cross-tenant leak: what happens when the gateway's screen finds another tenant's marker (gateway.screening
calls report_cross_tenant_hit, registered in incidents.apps).

In order, each step on its own so that one failing does not stop the next (the call itself is already blocked
by the gateway, whatever happens here):
1. a platform incident (critical), joined by later hits of the same pair of tenants while it is open;
2. an audit event in the receiving tenant's chain and in each source tenant's chain; neither names the other
   tenant (the platform's incident does);
3. containment (settings.INCIDENTS_LEAK_CONTAINMENT): "model_calls" switches on the kill switch of every
   tenant involved, "tenant" freezes them (read-only domain, no model calls), "off" leaves them running;
4. platform admins are e-mailed when the incident opens (incidents.actions.do_open_incident).
"""

import logging
from typing import Any

from django.conf import settings
from django_tenants.utils import tenant_context

from audit.actions import do_record_audit_event
from gateway.actions import access_gateway_policy, do_set_kill_switch
from gateway.screening import HitReport
from incidents.actions import do_open_incident, do_record_containment
from incidents.models import Incident, IncidentTenant
from lifecycle.actions import do_freeze_tenant
from tenants.models import Tenant

logger = logging.getLogger(__name__)

DETECTOR = "gateway canary screen"
CONTAINMENT_CHOICES = ("model_calls", "tenant", "off")


def containment_label(incident: Incident) -> str:
    return f"platform security ({incident.reference})"


def paused_reason(incident: Incident) -> str:
    return (
        "Paused by the platform's security team while a security incident is investigated "
        f"({incident.reference}). Your administrators have been told."
    )


def report_cross_tenant_hit(report: HitReport) -> str:
    receiving = report.tenant_schema
    owners = sorted({finding.owner for finding in report.findings})
    facts: dict[str, Any] = {
        "where": report.where,
        "request_id": report.request_id,
        "model": report.model,
        "source": report.source,
        "caller_user_id": report.user_id,
        "receiving_tenant": receiving,
        "source_tenants": owners,
        "markers": [
            {"owner": finding.owner, "kind": finding.kind, "canary_id": finding.canary_id}
            for finding in report.findings
        ],
        **report.details,
    }
    incident = do_open_incident(
        kind=Incident.Kind.CROSS_TENANT_LEAK,
        severity=Incident.Severity.CRITICAL,
        title=f"Another tenant's data blocked in a {report.where} of {receiving}",
        summary=(
            f"The {report.where} of a {report.source or 'model'} call for {receiving} carried the canary "
            f"marker of {', '.join(owners)}. The gateway stopped it before the text reached the provider, "
            "the records or the caller."
            if report.where in ("prompt", "response")
            else f"A {report.where} for {receiving} carried the canary marker of {', '.join(owners)} and was stopped."
        ),
        detected_by=f"{DETECTOR} ({report.where})",
        tenants=[(receiving, IncidentTenant.Role.RECEIVING)]
        + [(owner, IncidentTenant.Role.SOURCE) for owner in owners],
        details=facts,
        dedupe_key=f"leak:{'+'.join(owners)}->{receiving}",
    )
    _record_in_audit_chains(incident, report, receiving, owners)
    _contain(incident, [receiving, *owners])
    return incident.reference


def _record_in_audit_chains(incident: Incident, report: HitReport, receiving: str, owners: list[str]) -> None:
    common: dict[str, Any] = {
        "incident": incident.reference,
        "where": report.where,
        "request_id": report.request_id,
    }
    targets: list[tuple[str, str, dict[str, Any]]] = [
        (receiving, "security.cross_tenant_blocked", {**common, "origin": "another organisation"})
    ]
    for owner in owners:
        kinds = sorted({finding.kind for finding in report.findings if finding.owner == owner})
        targets.append(
            (
                owner,
                "security.cross_tenant_exposure_blocked",
                {**common, "marker": kinds, "destination": "another organisation"},
            )
        )
    for schema_name, kind, details in targets:
        tenant = Tenant.objects.filter(schema_name=schema_name).first()
        if tenant is None:
            continue
        try:
            with tenant_context(tenant):
                do_record_audit_event(kind=kind, actor_label=DETECTOR, details=details)
        except Exception:  # noqa: BLE001 - the incident holds the facts; go on with containment
            logger.exception("incident %s: audit event in %s failed", incident.reference, schema_name)


def _contain(incident: Incident, schema_names: list[str]) -> None:
    mode = settings.INCIDENTS_LEAK_CONTAINMENT
    if mode == "off":
        return
    done = []
    for tenant in Tenant.objects.filter(schema_name__in=schema_names).order_by("schema_name"):
        try:
            if mode == "tenant":
                if tenant.status == Tenant.Status.ACTIVE:
                    do_freeze_tenant(
                        tenant, reason=paused_reason(incident), acting_label=containment_label(incident)
                    )
                    done.append(tenant.schema_name)
                continue
            with tenant_context(tenant):
                if not access_gateway_policy().kill_switch:
                    do_set_kill_switch(
                        on=True, reason=paused_reason(incident), actor_label=containment_label(incident)
                    )
                    done.append(tenant.schema_name)
        except Exception:  # noqa: BLE001 - the next tenant must still be contained
            logger.exception("incident %s: containing %s failed", incident.reference, tenant.schema_name)
    if done:
        what = (
            "frozen (read-only, no model calls)" if mode == "tenant" else "model calls paused (kill switch)"
        )
        do_record_containment(
            incident,
            actor_label=containment_label(incident),
            message=f"{', '.join(done)}: {what}.",
            details={"mode": mode, "tenants": done},
        )
