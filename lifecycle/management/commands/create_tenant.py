"""Onboard a tenant: schema (by migrations), domains, in one command. Prints how long it took."""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lifecycle.actions import TenantSlugError, do_create_tenant


class Command(BaseCommand):
    help = "Create a tenant with its schema and domains: create_tenant --slug acme --name 'Acme' --domain acme.example.com"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--slug", required=True, help="Schema name and the identity provider's tenant claim."
        )
        parser.add_argument("--name", required=True, help="Display name.")
        parser.add_argument("--domain", action="append", required=True, help="Host name; repeat for more.")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        try:
            tenant = do_create_tenant(slug=options["slug"], name=options["name"], domains=options["domain"])
        except TenantSlugError as error:
            raise CommandError(str(error)) from error
        elapsed = time.perf_counter() - started
        domains = ", ".join(d.domain for d in tenant.domains.all())
        self.stdout.write(
            f"tenant {tenant.schema_name} ({tenant.name}) on {domains} ready in {elapsed:.2f} s"
        )
