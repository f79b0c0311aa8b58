"""Seed the model catalogue from settings.GATEWAY_MODELS (missing entries only), then create the platform
tenant and the demo tenants acme and globex (idempotent)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django_tenants.utils import tenant_context

from gateway.actions import do_create_default_policy
from gateway.catalogue import do_seed_catalogue
from lifecycle.actions import do_create_tenant

DEMO_TENANTS = [
    ("public", "ConvoSuite platform", ["localhost", "127.0.0.1"]),
    ("acme", "Acme Corporation", ["acme.localhost"]),
    ("globex", "Globex Industries", ["globex.localhost"]),
]


class Command(BaseCommand):
    help = "Create the platform tenant and the demo tenants acme and globex, with their domains."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--refresh-endpoints",
            action="store_true",
            help="set each seeded model's api_base to the one in settings (make up: the local model's port)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        added = do_seed_catalogue(
            acting_label="manage.py seed_demo", refresh_endpoints=options["refresh_endpoints"]
        )
        self.stdout.write(
            f"model catalogue: added {', '.join(added)}" if added else "model catalogue: up to date"
        )
        for slug, name, domains in DEMO_TENANTS:
            tenant = do_create_tenant(slug=slug, name=name, domains=domains)
            self.stdout.write(f"tenant {tenant.schema_name}: {', '.join(domains)}")
            if not tenant.is_platform:
                with tenant_context(tenant):
                    policy = do_create_default_policy(actor_label="seed_demo")
                self.stdout.write(
                    f"  gateway: models {', '.join(policy.allowed_models)} (default {policy.default_model}), "
                    f"{policy.daily_token_budget} tokens/day"
                )
