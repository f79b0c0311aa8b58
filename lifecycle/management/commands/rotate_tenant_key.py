from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lifecycle.rotation import do_rotate_tenant_data_key
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Give a tenant a new data key and re-encrypt all its encrypted text with it. Safe while the "
        "product runs: the old key keeps decrypting until every row is re-encrypted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="the tenant's slug (schema name)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(schema_name=options["tenant"]).first()
        if tenant is None or tenant.is_platform:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        report = do_rotate_tenant_data_key(tenant, log=self.stdout.write)
        self.stdout.write(
            self.style.SUCCESS(
                f"{tenant.schema_name}: key {report.new_key_id} active, keys {report.old_key_ids} retired, "
                f"{report.rows_reencrypted} row(s) re-encrypted in {report.passes} pass(es) "
                f"({report.conflicts_retried} concurrent change(s) retried)."
            )
        )
