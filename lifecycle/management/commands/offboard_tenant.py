from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lifecycle.actions import TenantLifecycleError, do_offboard_tenant
from lifecycle.management.commands._lifecycle import operator_label, tenant_by_slug


class Command(BaseCommand):
    help = (
        "Offboard a tenant: export everything it owns into one archive, drop its schema, delete its domains, "
        "destroy its data key, and leave a tombstone. Irreversible."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", required=True)
        parser.add_argument("--archive-dir", default=None, help="Default: settings.TENANT_ARCHIVE_DIR")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_slug(options["slug"])
        if not options["yes"]:
            answer = input(f"Type the slug {tenant.schema_name!r} to offboard {tenant.name} for good: ")
            if answer.strip() != tenant.schema_name:
                raise CommandError("Not confirmed; nothing was changed.")
        archive_dir = Path(options["archive_dir"] or settings.TENANT_ARCHIVE_DIR)
        try:
            tombstone = do_offboard_tenant(tenant, archive_dir=archive_dir, acting_label=operator_label())
        except TenantLifecycleError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"tenant {tombstone.slug} offboarded; archive {archive_dir / tombstone.archive_name} "
            f"sha256 {tombstone.archive_sha256}"
        )
