"""Rehearsal: tenant compromise (docs/playbooks/tenant-compromise.md).

A tenant with a few days of ordinary usage (its baseline). A script holding its stolen API key bursts calls
at the real tenant API. Within a bounded number of calls the anomaly watch contains the tenant (kill switch),
spend stays far under budget, every call is recorded, the incident and audit events exist and the admins get a
notice; then the legitimate admin, in the console, replays the audit trail, revokes every key and session,
signs in again, rotates the keys, creates a new key and switches the assistant back on."""

import datetime as dt
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from io import StringIO
from typing import Any

import requests
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import tenant_context

from accounts.models import Role
from audit.models import AuditEvent
from gateway.actions import access_gateway_policy
from gateway.api.actions import do_create_api_key
from gateway.api.models import ApiKey
from gateway.config import get_model_route
from gateway.models import ModelCall
from incidents.anomalies import compute_baseline, forget_baseline, spend_threshold
from incidents.models import Incident, IncidentNotification
from incidents.tenant.models import TenantNotice, WatchSettings
from tenants.models import Tenant
from tests.factories import UserFactory
from tests.gameday.conftest import GameDay

BURST = 60
ATTACK_MESSAGES = [{"role": "user", "content": "Dump every customer record."}]
CONCURRENCY = 4
HISTORY_DAYS = 4


def seed_history(tenant: Tenant, calls_per_day: int = 240) -> None:
    """Ordinary usage over the last days, as records: one small chat call in some minutes of the day."""
    with tenant_context(tenant):
        ModelCall.objects.bulk_create(
            ModelCall(
                request_id=uuid.uuid4(), source="history", model_requested="sim-model", model_served="sim-model",
                model_alias_served="sim-model", provider="simulator", status="ok", tokens_in=20, tokens_out=6,
                max_tokens=128, cost=Decimal("0.000032"), messages=[], response="",
            )
            for _ in range(calls_per_day * HISTORY_DAYS)
        )  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE gateway_modelcall SET created_at = now() - make_interval(mins => 10 + floor(random() * %s)::int) "
                "WHERE source = 'history'",
                [HISTORY_DAYS * 24 * 60 - 20],
            )


def call_api(day: GameDay, tenant: Tenant, key: str) -> tuple[int, float, str]:
    started = time.monotonic()
    response = requests.post(
        day.url("/v1/chat/completions"),
        headers={"Host": day.host(tenant), "Authorization": f"Bearer {key}"},
        json={"model": "sim-model", "messages": ATTACK_MESSAGES},
        timeout=30,
    )
    code = response.json().get("error", {}).get("code", "") if response.status_code != 200 else ""
    return response.status_code, time.monotonic() - started, code


def test_tenant_compromise(day: GameDay, row: dict[str, Any]) -> None:
    tenant = day.new_tenant("victim")
    seed_history(tenant)
    with tenant_context(tenant):
        admin = UserFactory.create(roles=[Role.TENANT_ADMIN.value], email=f"admin@{tenant.schema_name}.test")
        stolen = do_create_api_key(name="reporting script", acting_user=admin)
        forget_baseline(tenant.schema_name)
        baseline = compute_baseline()
        settings_row = WatchSettings.objects.get_or_create(singleton=True)[0]
        threshold = spend_threshold(
            {f.name: getattr(settings_row, f.name) for f in WatchSettings._meta.fields}, baseline
        )
        policy = access_gateway_policy()
    assert baseline.history_days > 3 and baseline.busy_minute_tokens > 0  # compared with its own past
    day.simulator.set_scenario(reply="Here you go.", latency_ms=50, prompt_tokens=25, completion_tokens=40)

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        results = list(pool.map(lambda _: call_api(day, tenant, stolen.secret), range(BURST)))
    served = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 403 and r[2] == "tenant_disabled"]
    row["traffic"] = f"{BURST} API calls with a stolen key, {CONCURRENCY} at a time"

    # Contained within a bounded number of calls, every other call refused clearly.
    # The worst case the gateway reserves for one of these calls (its prompt count + max_tokens), as it counts it.
    route = get_model_route("sim-model")
    per_call = route.counter.prompt_tokens(ATTACK_MESSAGES) + route.max_tokens
    # Contained within: the calls the threshold lets through, the one that trips it, and the calls already past
    # their reservation on the other connections when the switch goes on.
    bound = threshold // per_call + 1 + CONCURRENCY
    assert len(served) <= bound, (len(served), bound, threshold, per_call)
    assert len(served) + len(refused) == BURST, results
    incident = Incident.objects.get(
        kind=Incident.Kind.TENANT_COMPROMISE, tenant_links__schema_name=tenant.schema_name
    )
    assert incident.status == "contained" and incident.details["rule"] == "spend"
    row["detection"] = (
        f"spend rule ({threshold} tokens/min = max(5 x usual busy minute {baseline.busy_minute_tokens}, floor)) "
        f"after {len(served)} calls"
    )

    # Spend under budget; every call recorded; audit events, the kill switch and the notice exist.
    with tenant_context(tenant):
        calls = ModelCall.objects.filter(source=f"key:{stolen.api_key.prefix}")
        assert calls.count() == BURST
        assert calls.filter(status="ok").count() == len(served)
        spent = sum(c.tokens_in + c.tokens_out for c in calls.filter(status="ok"))
        cost = sum((c.cost for c in calls), Decimal(0))
        assert spent < policy.daily_token_budget and cost < policy.monthly_spend_cap
        assert access_gateway_policy().kill_switch
        events = set(
            AuditEvent.objects.filter(details__incident=incident.reference).values_list("kind", flat=True)
        )
        assert {"security.anomaly_detected", "incident.notice_sent"} <= events
        assert AuditEvent.objects.filter(
            kind="gateway.kill_switch_on", actor_label__startswith="anomaly watch"
        ).exists()
        assert TenantNotice.objects.filter(incident_id=incident.pk).exists()
    assert IncidentNotification.objects.filter(incident=incident, recipient=admin.email, sent=True).exists()
    row["containment"] = (
        f"kill switch after {len(served)} served calls; {len(refused)} refused; {spent} tokens, ${cost:.4f}"
    )

    # Recovery by the legitimate admin, in the console.
    browser = day.browser(tenant, admin)
    listing = browser.get("/console/incidents/")
    assert listing.status_code == 200 and incident.reference in listing.text
    detail = browser.get(f"/console/incidents/{incident.pk}/")
    assert (
        detail.text.count(f'data-key="{stolen.api_key.prefix}"') == BURST
    )  # the replay: which calls, which key
    assert browser.post("/console/incidents/revoke-credentials/", {"confirm": "yes"}).status_code == 302
    assert browser.get("/console/incidents/").status_code == 302  # signed out: everyone signs in again
    assert call_api(day, tenant, stolen.secret)[0] == 401  # the stolen key is dead
    browser.sign_in(admin)
    out = StringIO()
    call_command(
        "incident_remediate",
        "--incident",
        incident.reference,
        "--tenant",
        tenant.schema_name,
        "rotate",
        stdout=out,
    )
    switched = browser.post("/console/kill-switch/set/", {"state": "off", "confirm": "yes"})
    assert switched.status_code in (200, 302), switched.text[:300]
    with tenant_context(tenant):
        fresh = do_create_api_key(name="reporting script (new)", acting_user=admin)
        assert not access_gateway_policy().kill_switch
        assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 1
    assert call_api(day, tenant, fresh.secret)[0] == 200
    call_command("incident", "status", "--incident", incident.reference, "--set", "resolved", stdout=out)
    row["evidence"] = (
        f"{BURST}/{BURST} calls recorded; replay lists the key's {BURST} calls; keys and sessions revoked, "
        "data key rotated, service restored"
    )
    assert dt.datetime.now(dt.UTC) > incident.opened_at
