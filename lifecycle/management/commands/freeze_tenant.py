from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lifecycle.actions import TenantLifecycleError, do_freeze_tenant
from lifecycle.management.commands._lifecycle import operator_label, tenant_by_slug


class Command(BaseCommand):
    help = "Incident mode: make a tenant read-only and stop its model calls (freeze_tenant --slug acme --reason ...)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", required=True)
        parser.add_argument("--reason", required=True, help="Recorded in the tenant's audit trail.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = do_freeze_tenant(
                tenant_by_slug(options["slug"]), reason=options["reason"], acting_label=operator_label()
            )
        except TenantLifecycleError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"tenant {tenant.schema_name} is frozen (read-only, no model calls)")
