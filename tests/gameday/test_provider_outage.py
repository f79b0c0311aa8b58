"""Rehearsal: provider outage (docs/playbooks/provider-outage.md).

Two tenants call the real tenant API: one with a fallback for sim-model, one without. Mid-traffic the
provider of sim-model stops answering (requests hang). No request may hang past its timeout: each is served by
the fallback or refused with a clear message, and every one is recorded. The public status page tells the truth
before (operational), during (outage), while the breaker half-opens (degraded) and after (operational); the
breaker closes when the provider returns; the subscribed tenant is e-mailed at the start and the end, and the
post-mortem is drafted from the records with the right counts."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import Role
from gateway import breaker
from gateway.actions import do_set_model_allow_list
from gateway.api.actions import do_create_api_key
from gateway.config import get_model_route
from gateway.models import ModelCall
from incidents.anomalies import do_set_watch_settings
from incidents.models import Incident, IncidentNotification, PostMortem
from tenants.models import Tenant
from tests.factories import UserFactory
from tests.gameday.conftest import GameDay

CALLS_PER_TENANT = 16
UNAVAILABLE = "The assistant is unavailable right now. Please try again."


def status_of(day: GameDay, alias: str) -> str:
    page = requests.get(
        day.url("/status/status.json"), headers={"Host": day.host("public")}, timeout=10
    ).json()
    return next(model["state"] for model in page["models"] if model["model"] == alias)


def wait_for_status(day: GameDay, alias: str, wanted: str, timeout: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if status_of(day, alias) == wanted:
            return time.monotonic() - started
        time.sleep(0.3)
    raise AssertionError(f"the status page never said {alias} is {wanted}")


def call(day: GameDay, tenant: Tenant, key: str) -> dict[str, Any]:
    started = time.monotonic()
    response = requests.post(
        day.url("/v1/chat/completions"),
        headers={"Host": day.host(tenant), "Authorization": f"Bearer {key}"},
        json={"model": "sim-model", "messages": [{"role": "user", "content": "Status of my order?"}]},
        timeout=60,
    )
    body = response.json()
    return {
        "tenant": tenant.schema_name,
        "status": response.status_code,
        "seconds": time.monotonic() - started,
        "answer": (body.get("choices") or [{}])[0].get("message", {}).get("content", ""),
        "message": body.get("error", {}).get("message", ""),
    }


def test_provider_outage(day: GameDay, row: dict[str, Any]) -> None:
    with_fallback, without = day.new_tenant("fb"), day.new_tenant("nofb")
    keys = {}
    with tenant_context(with_fallback):
        admin = UserFactory.create(
            roles=[Role.TENANT_ADMIN.value], email=f"admin@{with_fallback.schema_name}.test"
        )
        do_set_model_allow_list(
            allowed_models=["sim-model", "sim-fallback"], fallbacks={"sim-model": ["sim-fallback"]}
        )
        do_set_watch_settings({"outage_emails": True}, actor=admin)
        keys[with_fallback.schema_name] = do_create_api_key(name="app").secret
    with tenant_context(without):
        keys[without.schema_name] = do_create_api_key(name="app").secret
    timeout = get_model_route("sim-model").timeout_seconds
    day.simulator.set_scenario(model="sim-model", reply="Primary answer.", latency_ms=100)
    day.simulator.set_scenario(model="sim-fallback", reply="Fallback answer.", latency_ms=100)

    started_at = timezone.now()
    # Before: the service is up and warm (the web process has loaded its model client), the page says so.
    for tenant in (with_fallback, without):
        first = call(day, tenant, keys[tenant.schema_name])
        assert (first["status"], first["answer"]) == (200, "Primary answer."), first
    assert status_of(day, "sim-model") == "operational"

    # Traffic from both tenants; the provider of sim-model goes down (hangs) after the first calls.
    jobs = [
        (tenant, keys[tenant.schema_name])
        for _ in range(CALLS_PER_TENANT)
        for tenant in (with_fallback, without)
    ]
    results: list[dict[str, Any]] = []
    done = threading.Event()

    def traffic() -> None:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results.extend(pool.map(lambda job: call(day, *job), jobs))
        done.set()

    runner = threading.Thread(target=traffic)
    runner.start()
    time.sleep(1.0)
    day.simulator.set_scenario(model="sim-model", fail="timeout")
    outage_seen_after = wait_for_status(day, "sim-model", "outage", timeout=60)
    runner.join(timeout=180)
    assert done.is_set(), "traffic did not finish"
    row["traffic"] = f"{len(jobs)} API calls from 2 tenants (one with a fallback); provider hangs after 1 s"

    # No request hung past its timeout; each one was served (fallback) or refused clearly; all recorded.
    slowest = max(r["seconds"] for r in results)
    assert slowest < timeout + 3, sorted(
        (round(r["seconds"], 1), r["tenant"][:4], r["status"], r["answer"]) for r in results
    )
    fb = [r for r in results if r["tenant"] == with_fallback.schema_name]
    nofb = [r for r in results if r["tenant"] == without.schema_name]
    assert all(r["status"] == 200 for r in fb), fb
    assert any(r["answer"] == "Fallback answer." for r in fb)
    assert all(r["status"] == 200 or (r["status"] == 503 and r["message"] == UNAVAILABLE) for r in nofb), nofb
    refused = [r for r in nofb if r["status"] == 503]
    assert refused
    for tenant, made in ((with_fallback, fb), (without, nofb)):
        with tenant_context(tenant):
            assert (
                ModelCall.objects.filter(source__startswith="key:").count() == len(made) + 1
            )  # + the warm-up
    incident = Incident.objects.get(
        kind=Incident.Kind.PROVIDER_OUTAGE, details__model="sim-model", opened_at__gte=started_at
    )
    row["detection"] = (
        f"breaker open; status page said outage {outage_seen_after:.1f} s after the provider hung"
    )

    # The provider returns: the breaker half-opens (status: degraded), the next call closes it.
    day.simulator.set_scenario(model="sim-model", reply="Primary answer.", latency_ms=100)
    wait_for_status(day, "sim-model", "degraded", timeout=30)
    assert breaker.states(["sim-model"])["sim-model"].state == "half-open"
    assert call(day, without, keys[without.schema_name])["status"] == 200
    assert breaker.states(["sim-model"])["sim-model"].state == "closed"
    wait_for_status(day, "sim-model", "operational", timeout=10)
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.window_end is not None
    row["containment"] = (
        f"{sum(r['answer'] == 'Fallback answer.' for r in fb)} served by the fallback, {len(refused)} refused clearly; "
        f"slowest {slowest:.1f} s (timeout {timeout} s); breaker half-open then closed"
    )

    # The subscribed tenant was told at start and end; the post-mortem is drafted with the right counts.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not PostMortem.objects.filter(incident=incident).exists():
        time.sleep(0.5)
    post_mortem = PostMortem.objects.get(incident=incident)
    figures = {row_["tenant"]: row_ for row_ in post_mortem.figures["tenants"]}
    assert figures[without.schema_name]["failed"] == len(refused)
    assert figures[with_fallback.schema_name]["failed_over"] == sum(
        r["answer"] == "Fallback answer." for r in fb
    )
    while (
        time.monotonic() < deadline
        and IncidentNotification.objects.filter(incident=incident, recipient=admin.email).count() < 2
    ):
        time.sleep(0.5)
    told = list(
        IncidentNotification.objects.filter(incident=incident, recipient=admin.email).values_list(
            "subject", flat=True
        )
    )
    assert len(told) == 2 and "unavailable" in told[0] and "available again" in told[1]
    assert not IncidentNotification.objects.filter(
        incident=incident, schema_name=without.schema_name
    ).exists()
    row["evidence"] = (
        f"{len(results) + 3}/{len(results) + 3} calls recorded; status operational→outage→degraded→operational; "
        f"post-mortem counts match; 2 opt-in e-mails"
    )
