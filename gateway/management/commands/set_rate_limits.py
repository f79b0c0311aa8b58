"""manage.py set_rate_limits --tenant SLUG [--rpm N] [--tpm N] [--user-rpm N|none] [--user-tpm N|none]"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.actions import UNCHANGED, PolicyError, do_set_rate_limits

from ._tenant import OPERATOR_LABEL, add_tenant_argument, in_tenant


def _optional(raw: str | None) -> Any:
    if raw is None:
        return UNCHANGED
    return None if raw.strip().lower() == "none" else raw


class Command(BaseCommand):
    help = "Set a tenant's requests and tokens per minute, for the tenant and per user."

    def add_arguments(self, parser: CommandParser) -> None:
        add_tenant_argument(parser)
        parser.add_argument("--rpm", type=int)
        parser.add_argument("--tpm", type=int)
        parser.add_argument("--user-rpm")
        parser.add_argument("--user-tpm")

    def handle(self, *args: Any, **options: Any) -> None:
        with in_tenant(options["tenant"]) as tenant:
            try:
                policy = do_set_rate_limits(
                    requests_per_minute=UNCHANGED if options["rpm"] is None else options["rpm"],
                    tokens_per_minute=UNCHANGED if options["tpm"] is None else options["tpm"],
                    user_requests_per_minute=_optional(options["user_rpm"]),
                    user_tokens_per_minute=_optional(options["user_tpm"]),
                    actor_label=OPERATOR_LABEL,
                )
            except (PolicyError, ArithmeticError) as refusal:
                raise CommandError(str(refusal)) from refusal
        self.stdout.write(
            f"{tenant.schema_name}: {policy.requests_per_minute} requests/min, {policy.tokens_per_minute} tokens/min; "
            f"per user {policy.user_requests_per_minute or '-'} requests/min, "
            f"{policy.user_tokens_per_minute or '-'} tokens/min"
        )
