"""manage.py gateway_status --tenant SLUG: the tenant's gateway configuration and live usage."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from gateway.actions import access_gateway_policy
from gateway.policy import load_policy, sweep_expired_reservations, usage_snapshot

from ._tenant import add_tenant_argument, in_tenant


class Command(BaseCommand):
    help = "Show a tenant's gateway policy and its usage as the budget counters see it (live)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_tenant_argument(parser)
        parser.add_argument("--sweep", action="store_true", help="release expired reservations first")

    def handle(self, *args: Any, **options: Any) -> None:
        with in_tenant(options["tenant"]) as tenant:
            if options["sweep"]:
                self.stdout.write(
                    f"released {sweep_expired_reservations(tenant.schema_name)} expired reservations"
                )
            policy = access_gateway_policy()
            published = load_policy(tenant.schema_name)
            usage = usage_snapshot(tenant.schema_name)
        lines = [
            f"tenant            {tenant.schema_name} (time zone {published.time_zone})",
            f"kill switch       {'ON: ' + policy.kill_switch_reason if policy.kill_switch else 'off'}",
            f"models            {', '.join(policy.allowed_models)} (default {policy.default_model})",
            f"fallbacks         {policy.fallbacks or 'none'}",
            f"daily tokens      {usage.day_tokens} of {policy.daily_token_budget} ({usage.day})",
            f"monthly tokens    {usage.month_tokens} of {policy.monthly_token_budget} ({usage.month})",
            f"monthly spend     ${usage.month_cost:.4f} of ${policy.monthly_spend_cap}",
            f"per-user cap      {policy.user_daily_token_cap or 'none'} tokens/day",
            f"rate limits       {policy.requests_per_minute} req/min, {policy.tokens_per_minute} tokens/min; "
            f"per user {policy.user_requests_per_minute or '-'} req/min, {policy.user_tokens_per_minute or '-'} tokens/min",
            f"this minute       {usage.requests_this_minute} requests",
            f"in flight         {usage.open_reservations} open reservations",
            f"policy version    {policy.version} (published {published.version})",
        ]
        self.stdout.write("\n".join(lines))
