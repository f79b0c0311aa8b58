"""manage.py prune_audit --tenant SLUG --before 2025-01-01 [--chain model_calls|audit_events|all]

Retention: deletes chain rows older than the date. This is the only way past the append-only guard
(docs/audit.md, "Retention"): each pruned chain gets a signed retention checkpoint at its last deleted row,
and the pruning is itself an audit event.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context

from audit.actions import cli_actor_label, do_prune_chain
from audit.chain import chained_models, spec_for
from audit.management.commands._tenant_args import parse_instant, tenant_by_slug


class Command(BaseCommand):
    help = "Delete a tenant's chained evidence older than a date, leaving a signed retention checkpoint."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--before", required=True, help="delete rows stamped before this ISO date/time")
        parser.add_argument(
            "--chain", default="all", choices=["all", *[spec_for(m).name for m in chained_models()]]
        )
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_slug(options["tenant"])
        before = parse_instant(options["before"], "--before")
        if not options["yes"]:
            answer = input(
                f"Delete {options['chain']} evidence of {tenant.schema_name} before {before.isoformat()}? [y/N] "
            )
            if answer.strip().lower() != "y":
                raise CommandError("Cancelled.")
        actor = cli_actor_label()
        with tenant_context(tenant):
            for model_class in chained_models():
                name = spec_for(model_class).name
                if options["chain"] in ("all", name):
                    deleted = do_prune_chain(model_class, before=before, actor_label=actor)
                    self.stdout.write(f"{name}: deleted {deleted} rows")
