"""manage.py revoke_tenant_credentials --tenant SLUG [--incident N]: revoke every API key of a tenant and end
every session bound to it (everyone signs in again). Audited in the tenant's chain, and on the incident's
timeline when one is named."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from incidents.credentials import do_revoke_tenant_credentials
from incidents.management.commands._common import incident_from, operator_label
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Revoke every API key and end every session of a tenant."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--incident", help="the incident this is part of (INC-12)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(schema_name=options["tenant"]).exclude(schema_name="public").first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug {options['tenant']!r}.")
        incident = incident_from(options["incident"]) if options["incident"] else None
        revoked = do_revoke_tenant_credentials(tenant, actor_label=operator_label(), incident=incident)
        self.stdout.write(
            f"{tenant.schema_name}: {len(revoked.keys)} API key(s) revoked, {revoked.sessions} session(s) ended."
        )
