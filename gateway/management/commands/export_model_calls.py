"""manage.py export_model_calls --tenant SLUG --from 2026-01-01 --to 2026-04-01 --out q1.zip

Writes a signed export of the tenant's model calls (docs/audit.md) and records it as an audit event.
"""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django_tenants.utils import tenant_context

from audit.actions import (
    ExportRejected,
    audit_settings,
    check_export_window,
    cli_actor_label,
    do_record_audit_event,
)
from audit.management.commands._tenant_args import parse_instant, tenant_by_slug
from audit.models import RedactionPolicy
from gateway.exports import write_model_call_export


class Command(BaseCommand):
    help = "Write a signed export (zip) of a tenant's model calls for a time window."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument(
            "--from", dest="window_start", required=True, help="window start (inclusive), ISO"
        )
        parser.add_argument("--to", dest="window_end", required=True, help="window end (exclusive), ISO")
        parser.add_argument("--out", required=True, help="output .zip path")
        parser.add_argument(
            "--redaction",
            choices=RedactionPolicy.values,
            help="override the tenant's redaction policy for this export (recorded in the manifest)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_slug(options["tenant"])
        window_start = parse_instant(options["window_start"], "--from")
        window_end = parse_instant(options["window_end"], "--to")
        try:
            check_export_window(window_start, window_end)
        except ExportRejected as rejection:
            raise CommandError(str(rejection)) from rejection
        actor = cli_actor_label()
        with tenant_context(tenant):
            redaction = options["redaction"] or audit_settings().redaction_policy

            def progress(done: int, total: int) -> None:
                if total and (done == total or done % 100000 == 0):
                    self.stderr.write(f"  {done}/{total} records")

            started, cpu_started = time.perf_counter(), time.process_time()
            result = write_model_call_export(
                out_path=options["out"],
                window_start=window_start,
                window_end=window_end,
                redaction=redaction,
                exported_by=actor,
                progress=progress,
            )
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            with transaction.atomic():
                do_record_audit_event(
                    kind="audit.export_completed",
                    actor_label=actor,
                    details={
                        "via": "export_model_calls",
                        "out": options["out"],
                        **{
                            k: result.manifest.get(k)
                            for k in (
                                "window",
                                "count",
                                "first",
                                "last",
                                "redaction_policy",
                                "records_sha256",
                            )
                        },
                    },
                )
        self.stdout.write(
            f"wrote {result.count} records to {result.path} in {elapsed:.2f} s "
            f"(cpu {cpu:.2f} s; {result.count / max(elapsed, 1e-9):,.0f} records/s)"
        )
