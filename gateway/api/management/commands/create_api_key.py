"""manage.py create_api_key --tenant SLUG --name NAME [--models ALIAS ...]: prints a new key once."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from gateway.api.actions import ApiKeyRejected, do_create_api_key
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Create an API key for a tenant's OpenAI-compatible API and print it (it is shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug (e.g. acme)")
        parser.add_argument("--name", required=True, help="what the key is for, e.g. 'nightly report job'")
        parser.add_argument(
            "--models",
            nargs="*",
            default=[],
            metavar="ALIAS",
            help="limit the key to these models (default: all)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(schema_name=options["tenant"]).first()
        if tenant is None or tenant.is_platform:
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        with schema_context(tenant.schema_name):
            try:
                new_key = do_create_api_key(
                    name=options["name"], models=options["models"], actor_label="manage.py create_api_key"
                )
            except ApiKeyRejected as rejection:
                raise CommandError(str(rejection)) from None
        scope = ", ".join(new_key.api_key.model_scope) or "all models the tenant allows"
        self.stderr.write(
            f"Created API key {new_key.api_key.name!r} (prefix {new_key.api_key.prefix}) for {tenant.schema_name}; "
            f"models: {scope}. Store it now: it cannot be shown again."
        )
        self.stdout.write(new_key.secret)
