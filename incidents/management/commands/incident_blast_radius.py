"""manage.py incident_blast_radius --incident N [--json]: which tenants, records, users and window an incident
involves, from the tenants' hash chains, with the notification list and a draft notice per tenant."""

import json
from typing import Any

from django.core.management.base import BaseCommand

from incidents.blast_radius import BlastRadius, compute_blast_radius
from incidents.management.commands._common import add_incident_argument, incident_from
from incidents.notices import draft_notice


def as_json(radius: BlastRadius) -> dict[str, Any]:
    return {
        "incident": radius.incident.reference,
        "kind": radius.incident.kind,
        "window": [radius.window_start.isoformat(), radius.window_end.isoformat()],
        "request_ids": radius.request_ids,
        "tenants": [
            {
                "tenant": tenant.schema_name,
                "role": tenant.role,
                "present": tenant.present,
                "records": [
                    {
                        "chain": r.chain,
                        "id": r.ident,
                        "seq": r.seq,
                        "hash": r.record_hash,
                        "summary": r.summary,
                    }
                    for r in tenant.records
                ],
                "people": [{"user_id": p.user_id, "email": p.email, "why": p.why} for p in tenant.people],
                "notify": tenant.admins,
                "chains_verified": tenant.chains_verified,
                "chain_breaks": tenant.chain_breaks,
            }
            for tenant in radius.tenants
        ],
    }


class Command(BaseCommand):
    help = "Compute an incident's blast radius from the hash chains: tenants, records, users, window, who to notify."

    def add_arguments(self, parser: Any) -> None:
        add_incident_argument(parser)
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")

    def handle(self, *args: Any, **options: Any) -> None:
        incident = incident_from(options["incident"])
        radius = compute_blast_radius(incident)
        if options["json"]:
            self.stdout.write(json.dumps(as_json(radius), indent=2, default=str))
            return
        out = self.stdout.write
        out(
            f"{incident.reference} {incident.get_kind_display()} ({incident.get_status_display()}): {incident.title}"
        )
        out(f"window: {radius.window_start:%Y-%m-%d %H:%M:%S} .. {radius.window_end:%Y-%m-%d %H:%M:%S} UTC")
        out(f"requests: {', '.join(radius.request_ids) or '-'}")
        for tenant in radius.tenants:
            out("")
            out(f"== {tenant.schema_name} ({tenant.role}){'' if tenant.present else ' — offboarded'}")
            for record in tenant.records:
                seq = f"#{record.seq} {record.record_hash[:16]}" if record.seq else "(not chained)"
                out(f"   {record.chain:<16} {seq:<28} {record.ident}  {record.summary}")
            for person in tenant.people:
                out(f"   person: {person.name} <{person.email}> — {person.why}")
            verdict = "; ".join(tenant.chain_breaks) or "intact"
            out(f"   chains checked: {', '.join(tenant.chains_verified) or '-'}: {verdict}")
            out(f"   notify: {', '.join(tenant.admins) or '(no tenant admin with an e-mail address)'}")
        out("")
        out("notification list:")
        for schema_name, email in radius.notification_list:
            out(f"   {schema_name}: {email}")
        for tenant in radius.tenants:
            if not tenant.present:
                continue
            draft = draft_notice(radius, tenant)
            out("")
            out(f"--- draft notice for {tenant.schema_name} (send with incident_notice --send) ---")
            out(f"Subject: {draft.subject}")
            out(draft.body)
