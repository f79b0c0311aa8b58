"""manage.py kill_switch on|off --tenant SLUG [--reason TEXT]: the same action as the console."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from gateway.actions import do_set_kill_switch

from ._tenant import OPERATOR_LABEL, add_tenant_argument, in_tenant


class Command(BaseCommand):
    help = "Switch every model call of a tenant off (on) or back on (off), at once for every worker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("state", choices=["on", "off"])
        add_tenant_argument(parser)
        parser.add_argument("--reason", default="", help="shown to the tenant's users")

    def handle(self, *args: Any, **options: Any) -> None:
        with in_tenant(options["tenant"]) as tenant:
            do_set_kill_switch(
                on=options["state"] == "on", reason=options["reason"], actor_label=OPERATOR_LABEL
            )
        self.stdout.write(f"{tenant.schema_name}: kill switch {options['state']}")
