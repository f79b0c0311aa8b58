"""Rehearsal: cross-tenant leak (docs/playbooks/cross-tenant-leak.md).

Two tenants chat at once through the real web process and worker. The test-only fault hook mis-routes one
chat reply of `src` to `dst` (its model call goes out in dst's name, carrying src's system text and history).
The canary screen must fire; nothing of src reaches the provider, dst's records or any user; both tenants'
model calls are paused; the blast radius names exactly the one record and the one message; then the playbook's
commands (notice, purge, rotate, resume, close) run as an operator would."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from typing import Any

from django.core.management import call_command
from django_tenants.utils import schema_context, tenant_context

from accounts.models import Role
from audit.models import AuditEvent
from chat.models import Message
from convosuite.faults import arm_misroute, disarm_misroute
from gateway.actions import access_gateway_policy
from gateway.models import ModelCall
from incidents.blast_radius import compute_blast_radius
from incidents.models import Incident, IncidentNotification
from incidents.tenant.models import TenantNotice
from tenants.models import Tenant
from tests.factories import UserFactory
from tests.gameday.conftest import Browser, GameDay

USERS_PER_TENANT = 4
MESSAGES_PER_USER = 3


def chat(browser: Browser, texts: list[str]) -> None:
    """One conversation per question (a conversation takes the next message once its answer is written)."""
    for text in texts:
        started = browser.post("/chat/new/")
        assert started.status_code == 302, started.text[:300]
        sent = browser.post(f"{started.headers['Location']}messages/", {"content": text})
        assert sent.status_code == 200, sent.text[:300]


def settled(tenant: Tenant) -> list[Message]:
    with tenant_context(tenant):
        return list(Message.objects.filter(role="assistant"))


def wait_until_answered(
    tenants: list[Tenant], expected: int, timeout: float = 90, pending_ok: bool = False
) -> None:
    """Until `expected` replies are answered (pending_ok: at least that many, others may still be pending)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = [m for t in tenants for m in settled(t)]
        answered = sum(1 for m in messages if m.status != "pending")
        if (pending_ok and answered >= expected) or (len(messages) == expected and answered == expected):
            return
        time.sleep(0.2)
    raise AssertionError(f"replies still pending after {timeout}s")


def texts_of(tenant: Tenant) -> str:
    """Every model-call prompt and answer and every chat message of the tenant, decrypted."""
    with tenant_context(tenant):
        calls = [json.dumps(c.messages) + c.response + c.error for c in ModelCall.objects.all()]
        messages = [m.content + m.error_for_user for m in Message.objects.all()]
    return "\n".join(calls + messages)


def test_cross_tenant_leak(day: GameDay, row: dict[str, Any]) -> None:
    src, dst = day.new_tenant("src"), day.new_tenant("dst")
    secret = f"SRC-CONFIDENTIAL-{uuid.uuid4().hex[:10]}"
    people: dict[str, list[Any]] = {}
    for tenant in (src, dst):
        with tenant_context(tenant):
            UserFactory.create(roles=[Role.TENANT_ADMIN.value], email=f"admin@{tenant.schema_name}.test")
            people[tenant.schema_name] = [UserFactory.create() for _ in range(USERS_PER_TENANT)]
    with schema_context("public"):
        UserFactory.create(roles=[Role.PLATFORM_ADMIN.value], is_staff=True, email="oncall@platform.test")
    day.simulator.set_scenario(
        reply="Noted, thank you.", latency_ms=150, prompt_tokens=40, completion_tokens=6
    )

    # Load: every user of both tenants chats at once; mid-way, one chat reply of src is mis-routed to dst.
    work = [
        (
            day.browser(tenant, user),
            [f"{secret if tenant == src else 'dst'} question {n}" for n in range(MESSAGES_PER_USER)],
        )
        for tenant in (src, dst)
        for user in people[tenant.schema_name]
    ]
    total = len(work) * MESSAGES_PER_USER
    try:
        with ThreadPoolExecutor(max_workers=len(work)) as pool:
            sending = [pool.submit(chat, *job) for job in work]
            wait_until_answered([src, dst], total // 3, pending_ok=True)
            arm_misroute(src.schema_name, dst.schema_name)
            for future in sending:
                future.result()
        wait_until_answered([src, dst], total)
    finally:
        disarm_misroute(src.schema_name)
    answered = sum(1 for t in (src, dst) for m in settled(t) if m.status == "done")
    row["traffic"] = (
        f"{total} chat replies from {len(work)} people in 2 tenants; 1 mis-routed after {total // 3} answered"
    )

    # Detected and blocked: exactly one src reply was stopped, with a clear message and no text.
    blocked = [m for m in settled(src) if "security check" in m.error_for_user]
    assert len(blocked) == 1, [m.error_for_user for m in settled(src)]
    stopped = blocked[0]
    assert stopped.status == "failed" and stopped.content == ""
    incident = Incident.objects.get(
        kind=Incident.Kind.CROSS_TENANT_LEAK, tenant_links__schema_name=dst.schema_name
    )
    assert incident.reference in stopped.error_for_user
    assert {(link.schema_name, link.role) for link in incident.tenant_links.all()} == {
        (src.schema_name, "source"),
        (dst.schema_name, "receiving"),
    }
    with tenant_context(dst):
        record = ModelCall.objects.get(request_id=str(stopped.request_id))
        assert (record.status, record.error_code, record.user_id) == ("refused", "security_blocked", None)
    row["detection"] = f"canary in the prompt: 1 call blocked before the provider ({incident.reference})"

    # Nothing leaked: src's text is nowhere in dst, and the provider saw only calls that were recorded as made.
    assert secret not in texts_of(dst)
    provider_calls = len([r for r in day.simulator.requests() if r["path"] == "/v1/chat/completions"])
    made = 0
    for tenant in (src, dst):
        with tenant_context(tenant):
            made += ModelCall.objects.exclude(status="refused").count()
    assert provider_calls == made

    # Contained: both tenants' model calls paused; later replies were refused with the platform's reason.
    for tenant in (src, dst):
        with tenant_context(tenant):
            policy = access_gateway_policy()
            assert policy.kill_switch and incident.reference in policy.kill_switch_reason
            assert AuditEvent.objects.filter(details__incident=incident.reference).exists()
    paused = [
        m
        for t in (src, dst)
        for m in settled(t)
        if "Paused by the platform's security team" in m.error_for_user
    ]
    contained = incident.events.get(kind="contained")
    row["containment"] = (
        f"kill switch on both tenants {round((contained.at - incident.opened_at).total_seconds(), 2)} s after "
        f"detection; {answered} answered before it, {len(paused)} refused after"
    )
    assert IncidentNotification.objects.filter(
        incident=incident, recipient="oncall@platform.test", sent=True
    ).exists()

    # Measured: the blast radius names exactly the record and the message involved.
    radius = compute_blast_radius(incident)
    receiving = radius.tenant(dst.schema_name)
    source = radius.tenant(src.schema_name)
    assert [(r.chain, r.ident) for r in receiving.records if r.chain != "audit_events"] == [
        ("model_calls", str(stopped.request_id))
    ]
    assert [(r.chain, r.ident) for r in source.records if r.chain != "audit_events"] == [
        ("chat_messages", str(stopped.id))
    ]
    with tenant_context(src):
        owner = Message.objects.select_related("conversation__owner").get(pk=stopped.pk).conversation.owner
    assert [p.email for p in source.people] == [owner.email]
    assert receiving.chain_breaks == [] and source.chain_breaks == []

    # The playbook's commands: notify both, purge and rotate in the receiving tenant, resume, close.
    out = StringIO()
    for tenant in (src, dst):
        call_command(
            "incident_notice",
            "--incident",
            incident.reference,
            "--tenant",
            tenant.schema_name,
            "--send",
            stdout=out,
        )
        with tenant_context(tenant):
            assert TenantNotice.objects.filter(incident_id=incident.pk).exists()
    call_command(
        "incident_remediate",
        "--incident",
        incident.reference,
        "--tenant",
        dst.schema_name,
        "purge",
        stdout=out,
    )
    call_command(
        "incident_remediate",
        "--incident",
        incident.reference,
        "--tenant",
        dst.schema_name,
        "rotate",
        stdout=out,
    )
    for tenant in (src, dst):
        call_command("kill_switch", "off", "--tenant", tenant.schema_name, stdout=out)
    call_command(
        "incident",
        "status",
        "--incident",
        incident.reference,
        "--set",
        "resolved",
        "--note",
        "fault hook",
        stdout=out,
    )
    call_command("incident", "status", "--incident", incident.reference, "--set", "closed", stdout=out)
    incident.refresh_from_db()
    assert incident.status == "closed"
    kinds = list(incident.events.values_list("kind", flat=True))
    assert {"detected", "contained", "notified", "remediation", "status"} <= set(kinds)
    row["evidence"] = (
        f"blast radius exact (1 record + 1 message, chains intact); 0 leaked; "
        f"{incident.notifications.count()} notifications; timeline {len(kinds)} events"
    )
