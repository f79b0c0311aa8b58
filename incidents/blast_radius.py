"""Measure an incident: which tenants, records, users and window it involves, from the tenants' own hash
chains, and who must be told (the notification list and a draft notice per tenant).

`manage.py incident_blast_radius --incident N` prints it; the platform incident page shows it. Reading tenant
schemas here is the platform measuring an incident it recorded: only ids, hashes, times, statuses and the
e-mail addresses of the people to notify are read, never prompt or response text.

What "involved" means:
- cross-tenant leak: the requests the screen stopped (their ids are on the incident and its timeline): the
  model-call records of those ids in every tenant involved (in the receiving tenant: the withheld record), the
  chat messages that asked for them (in the source tenant), the knowledge chunks or export named by a
  retrieval or export hit, and the incident's own audit events;
- tenant compromise: every model call of the tenant in the window, grouped by API key and user (the replay);
- anything else: the incident's audit events.
Each chain the records sit in is verified over the window (links and record hashes, audit.chain).
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import Role, User
from audit.chain import hash_row
from audit.models import AuditEvent
from chat.models import Message
from gateway.api.models import KEY_SOURCE_PREFIX, ApiKey
from gateway.models import ModelCall
from incidents.models import Incident, IncidentTenant
from knowledge.models import Chunk
from tenants.models import Tenant

WINDOW_MARGIN = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class RecordRef:
    chain: str  # "model_calls", "audit_events" (hash-chained), "chat_messages", "knowledge_chunks"
    ident: str  # request id, event id, message id, chunk id
    at: dt.datetime | None
    summary: str
    seq: int | None = None
    record_hash: str = ""


@dataclass(frozen=True)
class PersonRef:
    user_id: int
    email: str
    name: str
    why: str


@dataclass
class TenantExposure:
    schema_name: str
    name: str
    role: str
    records: list[RecordRef] = field(default_factory=list)
    people: list[PersonRef] = field(default_factory=list)
    admins: list[str] = field(default_factory=list)
    chains_verified: list[str] = field(default_factory=list)
    chain_breaks: list[str] = field(default_factory=list)
    present: bool = True  # False: the tenant has been offboarded since

    @property
    def chained_records(self) -> list[RecordRef]:
        return [record for record in self.records if record.seq is not None]


@dataclass
class BlastRadius:
    incident: Incident
    window_start: dt.datetime
    window_end: dt.datetime
    request_ids: list[str]
    tenants: list[TenantExposure]

    @property
    def notification_list(self) -> list[tuple[str, str]]:
        """(tenant schema, e-mail) of every tenant admin to notify."""
        return [(tenant.schema_name, email) for tenant in self.tenants for email in tenant.admins]

    def tenant(self, schema_name: str) -> TenantExposure:
        return next(tenant for tenant in self.tenants if tenant.schema_name == schema_name)


def incident_request_ids(incident: Incident) -> list[str]:
    """The request ids the incident names: on its details and on every 'seen again' of its timeline."""
    found: list[str] = []
    for details in [incident.details, *incident.events.values_list("details", flat=True)]:
        request_id = (details or {}).get("request_id")
        if request_id and request_id not in found:
            found.append(str(request_id))
    return found


def _incident_facts(incident: Incident, key: str) -> list[str]:
    values: list[str] = []
    for details in [incident.details, *incident.events.values_list("details", flat=True)]:
        for value in (details or {}).get(key) or []:
            if value not in values:
                values.append(str(value))
    return values


def compute_blast_radius(incident: Incident) -> BlastRadius:
    window_start = incident.window_start - WINDOW_MARGIN
    window_end = (incident.window_end or timezone.now()) + WINDOW_MARGIN
    request_ids = incident_request_ids(incident)
    radius = BlastRadius(incident, window_start, window_end, request_ids, [])
    for link in incident.tenant_links.all():
        exposure = TenantExposure(schema_name=link.schema_name, name="", role=link.role)
        tenant = Tenant.objects.filter(schema_name=link.schema_name).first()
        if tenant is None:
            exposure.present = False
            radius.tenants.append(exposure)
            continue
        exposure.name = tenant.name
        with tenant_context(tenant):
            _measure_tenant(incident, exposure, radius)
        radius.tenants.append(exposure)
    return radius


def _measure_tenant(incident: Incident, exposure: TenantExposure, radius: BlastRadius) -> None:
    people: dict[int, PersonRef] = {}
    if incident.kind == Incident.Kind.TENANT_COMPROMISE and exposure.role == IncidentTenant.Role.COMPROMISED:
        calls = ModelCall.objects.filter(
            created_at__gte=radius.window_start, created_at__lt=radius.window_end
        )
    else:
        calls = ModelCall.objects.filter(request_id__in=radius.request_ids)
    key_names = _key_names()
    for call in calls.order_by("created_at").only(
        "request_id", "created_at", "finished_at", "status", "error_code", "model_requested", "source", "user_id",
        "seq", "record_hash", "tokens_in", "tokens_out",
    ):  # fmt: skip
        who = key_names.get(call.source, call.source or "-")
        exposure.records.append(
            RecordRef(
                chain="model_calls",
                ident=str(call.request_id),
                at=call.finished_at or call.created_at,
                summary=f"{call.status}{' ' + call.error_code if call.error_code else ''} {call.model_requested}"
                f"{' via ' + who if call.source else ''}, {call.tokens_in + call.tokens_out} tokens",
                seq=call.seq,
                record_hash=call.record_hash or "",
            )
        )
        if call.user_id:
            people.setdefault(call.user_id, _person(call.user_id, "made the call"))
    for message in Message.objects.filter(request_id__in=radius.request_ids).select_related("conversation"):
        exposure.records.append(
            RecordRef(
                chain="chat_messages",
                ident=str(message.id),
                at=message.created_at,
                summary=f"assistant reply ({message.status}) in conversation {message.conversation_id}",
            )
        )
        people.setdefault(
            message.conversation.owner_id, _person(message.conversation.owner_id, "asked the question")
        )
    chunk_ids = (
        _incident_facts(incident, "chunk_ids") if exposure.role == IncidentTenant.Role.RECEIVING else []
    )
    for chunk in Chunk.objects.filter(id__in=chunk_ids).select_related("document"):
        exposure.records.append(
            RecordRef(
                chain="knowledge_chunks",
                ident=str(chunk.id),
                at=chunk.document.created_at,
                summary=f"passage {chunk.ordinal + 1} of document {chunk.document_id} ({chunk.document.name})",
            )
        )
    for event in AuditEvent.objects.filter(
        created_at__gte=radius.window_start,
        created_at__lt=radius.window_end,
        details__incident=incident.reference,
    ).order_by("seq"):
        exposure.records.append(
            RecordRef(
                chain="audit_events",
                ident=str(event.pk),
                at=event.created_at,
                summary=f"{event.kind} by {event.actor_label or '-'}",
                seq=event.seq,
                record_hash=event.record_hash,
            )
        )
    exposure.people = [person for person in people.values() if person is not None]
    exposure.admins = _tenant_admin_emails()
    _verify_chains(exposure, radius)


def _key_names() -> dict[str, str]:
    return {
        f"{KEY_SOURCE_PREFIX}{prefix}": f"API key “{name}” ({prefix})"
        for prefix, name in ApiKey.objects.values_list("prefix", "name")
    }


def _person(user_id: int, why: str) -> PersonRef:
    user = User.objects.filter(pk=user_id).only("email", "display_name").first()
    if user is None:
        return PersonRef(user_id=user_id, email="", name="(no such user in this tenant)", why=why)
    return PersonRef(user_id=user_id, email=user.email, name=user.display_name or user.email, why=why)


def _tenant_admin_emails() -> list[str]:
    return sorted(
        email
        for email in User.objects.filter(
            roles__contains=[Role.TENANT_ADMIN.value], is_active=True
        ).values_list("email", flat=True)
        if email
    )


def _verify_chains(exposure: TenantExposure, radius: BlastRadius) -> None:
    """Check each chain the records sit in, from the link before the first involved record to the last one:
    every link and record hash must hold (a record edited or removed since would show here)."""
    for chain, model_class in (("model_calls", ModelCall), ("audit_events", AuditEvent)):
        seqs = [record.seq for record in exposure.chained_records if record.chain == chain and record.seq]
        if not seqs:
            continue
        first, last = min(seqs), max(seqs)
        exposure.chains_verified.append(f"{chain} seq {first}..{last}")
        exposure.chain_breaks += [
            f"{chain} seq {seq}: {reason}" for seq, reason in chain_breaks(model_class, first, last)
        ]


def chain_breaks(model_class: Any, first: int, last: int) -> Iterable[tuple[int, str]]:
    """audit.chain.find_chain_breaks, bounded to seq first..last (it walks to the head of the chain)."""
    columns = [f.attname for f in model_class._meta.concrete_fields]
    rows = model_class._default_manager.filter(seq__gte=max(first - 1, 1), seq__lte=last).order_by("seq")
    expected_prev: str | None = None
    expected_seq: int | None = None
    for values in rows.values(*columns).iterator(chunk_size=500):
        seq = values["seq"]
        if expected_seq is not None and seq != expected_seq:
            yield seq, f"expected seq {expected_seq} (a record is missing)"
        if expected_prev is not None and values["prev_hash"] != expected_prev:
            yield seq, "prev_hash does not match the previous record"
        if (
            hash_row(model_class, values, seq=seq, prev_hash=values["prev_hash"], salt=values["chain_salt"])
            != values["record_hash"]
        ):
            yield seq, "record_hash does not match its contents"
        expected_prev, expected_seq = values["record_hash"], seq + 1
