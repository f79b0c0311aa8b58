"""manage.py set_budget --tenant SLUG [--daily-tokens N] [--monthly-tokens N] [--monthly-spend USD]
[--user-daily-tokens N|none]: the same action (and audit event) as the console."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.actions import UNCHANGED, PolicyError, do_set_budget

from ._tenant import OPERATOR_LABEL, add_tenant_argument, in_tenant


class Command(BaseCommand):
    help = "Set a tenant's token budgets and monthly spending cap."

    def add_arguments(self, parser: CommandParser) -> None:
        add_tenant_argument(parser)
        parser.add_argument("--daily-tokens", type=int)
        parser.add_argument("--monthly-tokens", type=int)
        parser.add_argument("--monthly-spend", help="monthly spending cap in USD, e.g. 25.00")
        parser.add_argument("--user-daily-tokens", help="per-user daily token cap, or 'none' to remove it")

    def handle(self, *args: Any, **options: Any) -> None:
        user_cap: Any = UNCHANGED
        if options["user_daily_tokens"] is not None:
            raw = options["user_daily_tokens"].strip().lower()
            user_cap = None if raw == "none" else raw
        with in_tenant(options["tenant"]) as tenant:
            try:
                policy = do_set_budget(
                    daily_tokens=UNCHANGED if options["daily_tokens"] is None else options["daily_tokens"],
                    monthly_tokens=UNCHANGED
                    if options["monthly_tokens"] is None
                    else options["monthly_tokens"],
                    monthly_spend_cap=UNCHANGED
                    if options["monthly_spend"] is None
                    else options["monthly_spend"],
                    user_daily_tokens=user_cap,
                    actor_label=OPERATOR_LABEL,
                )
            except (PolicyError, ArithmeticError) as refusal:
                raise CommandError(str(refusal)) from refusal
        self.stdout.write(
            f"{tenant.schema_name}: {policy.daily_token_budget} tokens/day, "
            f"{policy.monthly_token_budget} tokens/month, ${policy.monthly_spend_cap}/month, "
            f"per user {policy.user_daily_token_cap or 'no cap'} tokens/day"
        )
