"""manage.py incident_remediate --incident N --tenant SLUG purge [--dry-run] | rotate: remove leaked artefacts
from the receiving tenant, or rotate a tenant's data key and canary markers. Audited in the tenant's chain and
on the incident's timeline."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from incidents.actions import IncidentRejected
from incidents.management.commands._common import add_incident_argument, incident_from, operator_label
from incidents.remediation import do_purge_leaked_artefacts, do_rotate_tenant_secrets


class Command(BaseCommand):
    help = "Remediate an incident: purge leaked artefacts or rotate a tenant's keys."

    def add_arguments(self, parser: Any) -> None:
        add_incident_argument(parser)
        parser.add_argument("--tenant", required=True)
        parser.add_argument("action", choices=["purge", "rotate"])
        parser.add_argument(
            "--dry-run", action="store_true", help="purge: list what would go, change nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        incident = incident_from(options["incident"])
        try:
            if options["action"] == "purge":
                report = do_purge_leaked_artefacts(
                    incident,
                    schema_name=options["tenant"],
                    actor_label=operator_label(),
                    dry_run=options["dry_run"],
                )
                self.stdout.write(report.summary())
                for document in report.documents:
                    self.stdout.write(f"   document {document}")
                for message in report.messages:
                    self.stdout.write(f"   message {message}")
            else:
                self.stdout.write(
                    do_rotate_tenant_secrets(
                        incident,
                        schema_name=options["tenant"],
                        actor_label=operator_label(),
                        log=self.stdout.write,
                    )
                )
        except IncidentRejected as rejected:
            raise CommandError(str(rejected)) from None
