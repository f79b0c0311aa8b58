"""Measure, notify, remediate a cross-tenant leak: the blast radius names exactly the blocked request's records
(from the hash chains) and the people and admins involved, the draft notices name no other tenant, sending one
e-mails the tenant's admins, leaves a banner notice and an audit event, and the purge reports what it kept."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django_tenants.utils import tenant_context

from accounts.models import Role, User
from audit.models import AuditEvent
from chat.models import Conversation, Message
from gateway import screening
from gateway.errors import CrossTenantBlocked
from gateway.service import complete
from incidents.actions import IncidentRejected
from incidents.blast_radius import compute_blast_radius
from incidents.models import Incident, IncidentNotification
from incidents.notices import do_send_tenant_notice, draft_notice
from incidents.remediation import do_purge_leaked_artefacts
from incidents.tenant.models import TenantNotice
from tenants.models import Tenant

pytestmark = pytest.mark.usefixtures("committed_db")


@dataclass
class Leak:
    incident: Incident
    source: Tenant
    receiving: Tenant
    request_id: uuid.UUID
    asker: User
    reply_id: uuid.UUID


def call(tenant: Tenant, messages: list[dict[str, str]], request_id: uuid.UUID | None = None) -> Any:
    return complete(
        tenant_schema=tenant.schema_name,
        request_id=request_id or uuid.uuid4(),
        user_id=None,
        model="sim-model",
        messages=messages,
    )


@pytest.fixture
def leak(new_tenant: Callable[[str], Tenant], member: Callable[..., User], sim: Any) -> Leak:
    """A chat reply of `source` whose model call went out for `receiving` and was stopped, with one unrelated
    call of each tenant around it."""
    source, receiving = new_tenant("src"), new_tenant("dst")
    asker = member(source, email="asker@source.test")
    member(source, roles=[Role.TENANT_ADMIN.value], email="boss@source.test")
    member(receiving, roles=[Role.TENANT_ADMIN.value], email="boss@receiving.test")
    for tenant in (source, receiving):
        with tenant_context(tenant):
            call(tenant, [{"role": "user", "content": "unrelated"}])
    request_id = uuid.uuid4()
    with tenant_context(source):
        conversation = Conversation.objects.create(owner=asker)
        reply = Message.objects.create(
            conversation=conversation, role="assistant", status="pending", request_id=request_id
        )
        prompt = screening.plant("Source's system text.", "prompt")
    with tenant_context(receiving), pytest.raises(CrossTenantBlocked):
        call(
            receiving, [{"role": "system", "content": prompt}, {"role": "user", "content": "hi"}], request_id
        )
    incident = Incident.objects.get(details__request_id=str(request_id))
    return Leak(incident, source, receiving, request_id, asker, reply.id)


def test_blast_radius_names_exactly_the_blocked_requests_records_people_and_admins(leak: Leak) -> None:
    radius = compute_blast_radius(leak.incident)
    assert radius.request_ids == [str(leak.request_id)]
    got = radius.tenant(leak.receiving.schema_name)
    calls = [r for r in got.records if r.chain == "model_calls"]
    assert [(r.ident, r.summary.split(" ")[:2]) for r in calls] == [
        (str(leak.request_id), ["refused", "security_blocked"])
    ]
    assert {r.chain for r in got.records} == {"model_calls", "audit_events"}
    assert {r.summary.split(" by ")[0] for r in got.records if r.chain == "audit_events"} == {
        "security.cross_tenant_blocked"
    }
    assert got.chain_breaks == [] and len(got.chains_verified) == 2
    assert got.admins == ["boss@receiving.test"] and got.people == []
    src = radius.tenant(leak.source.schema_name)
    assert [(r.chain, r.ident) for r in src.records if r.chain != "audit_events"] == [
        ("chat_messages", str(leak.reply_id))
    ]
    assert [p.email for p in src.people] == [leak.asker.email]
    assert sorted(radius.notification_list) == sorted(
        [(leak.source.schema_name, "boss@source.test"), (leak.receiving.schema_name, "boss@receiving.test")]
    )
    out = StringIO()
    call_command("incident_blast_radius", "--incident", leak.incident.reference, stdout=out)
    assert str(leak.request_id) in out.getvalue() and "boss@receiving.test" in out.getvalue()


def test_notices_name_no_other_tenant_and_are_mailed_bannered_and_audited(
    leak: Leak, mailoutbox: list[Any]
) -> None:
    radius = compute_blast_radius(leak.incident)
    drafts = {t.schema_name: draft_notice(radius, t) for t in radius.tenants}
    assert leak.receiving.schema_name not in drafts[leak.source.schema_name].body
    assert leak.source.schema_name not in drafts[leak.receiving.schema_name].body
    assert "stopped before" in drafts[leak.source.schema_name].body
    assert "paused (kill switch)" in drafts[leak.source.schema_name].body
    draft = drafts[leak.receiving.schema_name]
    notice = do_send_tenant_notice(
        leak.incident,
        schema_name=leak.receiving.schema_name,
        subject=draft.subject,
        body=draft.body,
        actor_label="ops",
    )
    assert notice.recipients == ["boss@receiving.test"]
    assert [m.to for m in mailoutbox if m.subject == draft.subject] == [["boss@receiving.test"]]
    with tenant_context(leak.receiving):
        assert TenantNotice.objects.get().acknowledged_at is None
        assert AuditEvent.objects.filter(kind="incident.notice_sent").exists()
    channels = set(
        IncidentNotification.objects.filter(
            incident=leak.incident, schema_name=leak.receiving.schema_name
        ).values_list("channel", flat=True)
    )
    assert channels == {"email", "banner"}


def test_purge_keeps_the_withheld_record_and_is_audited(leak: Leak) -> None:
    report = do_purge_leaked_artefacts(
        leak.incident, schema_name=leak.receiving.schema_name, actor_label="ops"
    )
    assert report.withheld_records == [str(leak.request_id)]
    assert report.documents == [] and report.messages == []
    with tenant_context(leak.receiving):
        assert AuditEvent.objects.filter(kind="incident.artefacts_purged").exists()
    with pytest.raises(IncidentRejected, match="did not receive"):
        do_purge_leaked_artefacts(leak.incident, schema_name=leak.source.schema_name, actor_label="ops")
