"""Create the platform tenant and the demo tenants acme and globex (idempotent)."""

from typing import Any

from django.core.management.base import BaseCommand

from tenants.actions import do_create_tenant

DEMO_TENANTS = [
    ("public", "ConvoSuite platform", ["localhost", "127.0.0.1"]),
    ("acme", "Acme Corporation", ["acme.localhost"]),
    ("globex", "Globex Industries", ["globex.localhost"]),
]


class Command(BaseCommand):
    help = "Create the platform tenant and the demo tenants acme and globex, with their domains."

    def handle(self, *args: Any, **options: Any) -> None:
        for slug, name, domains in DEMO_TENANTS:
            tenant = do_create_tenant(slug=slug, name=name, domains=domains)
            self.stdout.write(f"tenant {tenant.schema_name}: {', '.join(domains)}")
