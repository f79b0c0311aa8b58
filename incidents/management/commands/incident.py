"""manage.py incident list | show --incident N | status --incident N --set STATUS [--note T] | note --incident N
--text T: the incident record and its timeline from the command line (same actions as the platform pages)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from incidents.actions import IncidentRejected, do_add_timeline_event, do_set_incident_status
from incidents.management.commands._common import incident_from, operator_label
from incidents.models import Incident, IncidentEvent


class Command(BaseCommand):
    help = "List incidents, show one with its timeline, change its status or add a note."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("verb", choices=["list", "show", "status", "note"])
        parser.add_argument("--incident")
        parser.add_argument("--set", choices=Incident.Status.values)
        parser.add_argument("--note", default="")
        parser.add_argument("--text", default="")
        parser.add_argument("--all", action="store_true", help="list: closed ones too")

    def handle(self, *args: Any, **options: Any) -> None:
        verb = options["verb"]
        if verb == "list":
            incidents = Incident.objects.all()
            if not options["all"]:
                incidents = incidents.exclude(status=Incident.Status.CLOSED)
            for incident in incidents[:200]:
                tenants = ",".join(incident.tenant_links.values_list("schema_name", flat=True))
                self.stdout.write(
                    f"{incident.reference:<8} {incident.opened_at:%Y-%m-%d %H:%M} {incident.kind:<18} "
                    f"{incident.severity:<8} {incident.status:<10} {tenants:<24} {incident.title}"
                )
            return
        if not options["incident"]:
            raise CommandError("--incident is required.")
        incident = incident_from(options["incident"])
        try:
            if verb == "status":
                if not options["set"]:
                    raise CommandError("--set is required.")
                incident = do_set_incident_status(
                    incident, options["set"], actor_label=operator_label(), note=options["note"]
                )
            elif verb == "note":
                do_add_timeline_event(
                    incident,
                    kind=IncidentEvent.Kind.NOTE,
                    actor_label=operator_label(),
                    message=options["text"],
                )
        except IncidentRejected as rejected:
            raise CommandError(str(rejected)) from None
        self.stdout.write(f"{incident.reference} {incident.get_status_display()}: {incident.title}")
        for event in incident.events.all():
            self.stdout.write(
                f"  {event.at:%Y-%m-%d %H:%M:%S} {event.kind:<12} {event.actor_label}: {event.message}"
            )
