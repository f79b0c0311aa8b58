"""manage.py incident_notice --incident N --tenant SLUG [--send] [--subject S] [--body-file F]: print the draft
notice for one tenant of an incident, or send it (e-mail to its admins and a console banner; audited)."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from incidents.actions import IncidentRejected
from incidents.blast_radius import compute_blast_radius
from incidents.management.commands._common import add_incident_argument, incident_from, operator_label
from incidents.notices import do_send_tenant_notice, draft_notice


class Command(BaseCommand):
    help = "Print or send an incident's notice to one tenant's admins."

    def add_arguments(self, parser: Any) -> None:
        add_incident_argument(parser)
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--send", action="store_true", help="send it (otherwise only print the draft)")
        parser.add_argument("--subject", help="replace the draft's subject")
        parser.add_argument("--body-file", help="replace the draft's text with this file's")

    def handle(self, *args: Any, **options: Any) -> None:
        incident = incident_from(options["incident"])
        radius = compute_blast_radius(incident)
        exposure = next((t for t in radius.tenants if t.schema_name == options["tenant"]), None)
        if exposure is None or not exposure.present:
            raise CommandError(f"{options['tenant']} is not a present tenant of {incident.reference}.")
        draft = draft_notice(radius, exposure)
        subject = options["subject"] or draft.subject
        body = Path(options["body_file"]).read_text() if options["body_file"] else draft.body
        if not options["send"]:
            self.stdout.write(
                f"To: {', '.join(draft.recipients) or '(nobody)'}\nSubject: {subject}\n\n{body}"
            )
            return
        try:
            notice = do_send_tenant_notice(
                incident,
                schema_name=exposure.schema_name,
                subject=subject,
                body=body,
                actor_label=operator_label(),
            )
        except IncidentRejected as rejected:
            raise CommandError(str(rejected)) from None
        self.stdout.write(
            f"Sent notice {notice.pk} to {len(notice.recipients)} admin(s) of {exposure.schema_name}."
        )
