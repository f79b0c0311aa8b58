"""Remediation after a cross-tenant leak (or a compromise), each step audited in the tenant's chain and written
on the incident's timeline:

- purge: remove from the receiving tenant what carries another tenant's data — the knowledge documents whose
  passages the screen stopped, and chat messages of the incident's window that carry a source tenant's marker
  (their text is replaced). Model-call records are evidence and cannot change (append-only chain); the screen
  never wrote the other tenant's text into them (withheld at write), which the purge report states;
- rotate: a new data key for the tenant (its rows re-encrypted, lifecycle.rotation) and new canary markers.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django_tenants.utils import tenant_context

from audit.actions import do_record_audit_event
from chat.models import Message
from gateway import screening
from gateway.models import ModelCall
from incidents.actions import IncidentRejected, do_add_timeline_event
from incidents.blast_radius import WINDOW_MARGIN, incident_request_ids
from incidents.canaries import do_rotate_canaries
from incidents.models import Incident, IncidentEvent, IncidentTenant
from knowledge.actions import do_delete_document
from knowledge.models import Chunk, Document
from lifecycle.rotation import do_rotate_tenant_data_key
from tenants.models import Tenant

PURGED_TEXT = (
    "[Removed by the ConvoSuite platform team: this message carried another organisation's data ({ref}).]"
)


@dataclass
class PurgeReport:
    schema_name: str
    documents: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    withheld_records: list[str] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"{self.schema_name}: {verb} {len(self.documents)} knowledge document(s) and the text of "
            f"{len(self.messages)} chat message(s); {len(self.withheld_records)} model-call record(s) kept, "
            "their text withheld when written"
        )


def _tenant(incident: Incident, schema_name: str) -> Tenant:
    link = incident.tenant_links.filter(schema_name=schema_name).first()
    tenant = Tenant.objects.filter(schema_name=schema_name).first()
    if link is None or tenant is None:
        raise IncidentRejected(f"{schema_name} is not a tenant of {incident.reference}.")
    return tenant


def do_purge_leaked_artefacts(
    incident: Incident, *, schema_name: str, actor_label: str, dry_run: bool = False
) -> PurgeReport:
    tenant = _tenant(incident, schema_name)
    if incident.tenant_links.get(schema_name=schema_name).role != IncidentTenant.Role.RECEIVING:
        raise IncidentRejected(
            f"{schema_name} did not receive another tenant's data in {incident.reference}."
        )
    sources = set(
        incident.tenant_links.filter(role=IncidentTenant.Role.SOURCE).values_list("schema_name", flat=True)
    )
    chunk_ids = [
        chunk_id
        for details in [incident.details, *incident.events.values_list("details", flat=True)]
        for chunk_id in (details or {}).get("chunk_ids") or []
    ]
    report = PurgeReport(schema_name=schema_name, dry_run=dry_run)
    start = incident.window_start - WINDOW_MARGIN
    with tenant_context(tenant):
        report.withheld_records = [
            str(request_id)
            for request_id in ModelCall.objects.filter(
                request_id__in=incident_request_ids(incident), error_code="security_blocked"
            ).values_list("request_id", flat=True)
        ]
        document_ids = set(Chunk.objects.filter(id__in=chunk_ids).values_list("document_id", flat=True))
        documents = list(Document.objects.filter(id__in=document_ids))
        messages = [
            message
            for message in Message.objects.filter(created_at__gte=start).only("id", "content")
            if sources
            & {finding.owner for finding in screening.screen(schema_name, [message.content]).foreign}
        ]
        report.documents = [str(document.id) for document in documents]
        report.messages = [str(message.id) for message in messages]
        if dry_run:
            return report
        with transaction.atomic():
            for document in documents:
                do_delete_document(document, acting_user=None)
            for message in messages:
                message.content = PURGED_TEXT.format(ref=incident.reference)
                message.save(update_fields=["content"])
            do_record_audit_event(
                kind="incident.artefacts_purged",
                actor_label=actor_label,
                details={
                    "incident": incident.reference,
                    "documents": report.documents,
                    "messages": report.messages,
                    "withheld_records": report.withheld_records,
                },
            )
    do_add_timeline_event(
        incident,
        kind=IncidentEvent.Kind.REMEDIATION,
        actor_label=actor_label,
        message=report.summary() + ".",
        details={"action": "purge", "documents": report.documents, "messages": report.messages},
    )
    return report


def do_rotate_tenant_secrets(
    incident: Incident, *, schema_name: str, actor_label: str, log: Callable[[str], None] = print
) -> str:
    """A new data key (every encrypted row re-encrypted; lifecycle.rotation audits it) and new canary markers."""
    tenant = _tenant(incident, schema_name)
    rotation = do_rotate_tenant_data_key(
        tenant, acting_label=f"{actor_label} ({incident.reference})", log=log
    )
    retired = do_rotate_canaries(tenant)
    with tenant_context(tenant):
        do_record_audit_event(
            kind="incident.secrets_rotated",
            actor_label=actor_label,
            details={
                "incident": incident.reference,
                "new_key_id": rotation.new_key_id,
                "canaries_retired": retired,
            },
        )
    message = (
        f"{schema_name}: data key rotated (key {rotation.new_key_id}, {rotation.rows_reencrypted} rows "
        f"re-encrypted); {retired} canary marker(s) replaced."
    )
    do_add_timeline_event(
        incident,
        kind=IncidentEvent.Kind.REMEDIATION,
        actor_label=actor_label,
        message=message,
        details={"action": "rotate", "new_key_id": rotation.new_key_id},
    )
    return message
