"""Usage against the tenant's budgets, as the reservation scripts count it, and the alert sent to tenant
admins when usage passes the tenant's alert threshold (GatewayPolicy.budget_alert_percent).

"Used" is the Redis counter the reserve script checks (settled usage plus the worst case of calls in
flight); a counter that does not exist yet (no call this period, or a flushed Redis) is what the gateway
would rebuild it from: the period's recorded calls. The console shows these figures as bars and a banner;
send_budget_alerts (run every minute by Celery beat, gateway.tasks) e-mails the tenant admins once per
budget and period, the BudgetAlert unique constraint deciding which process sends it.
"""

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

import redis
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.members import tenant_admin_emails
from accounts.models import User
from gateway import store
from gateway.actions import access_gateway_policy
from gateway.models import BudgetAlert, GatewayPolicy, ModelCall
from gateway.policy import COST_UNITS_PER_USD, period_bounds, tenant_now
from tenants.models import Tenant

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BudgetUse:
    budget: str  # a BudgetAlert.Budget value
    label: str
    period: str  # the counters' period label: "20261126" or "202611"
    period_label: str  # "today" / "November 2026"
    used: Decimal
    limit: Decimal
    is_money: bool
    threshold: int | None

    @property
    def percent(self) -> int:
        """Share of the budget used, rounded down; a zero budget is full as soon as it exists."""
        if self.limit <= 0:
            return 100
        return int(self.used * 100 / self.limit)

    @property
    def noun(self) -> str:
        return str(BudgetAlert.Budget(self.budget).label).lower()

    @property
    def bar_percent(self) -> int:
        return min(self.percent, 100)

    @property
    def level(self) -> str:
        if self.percent >= 100:
            return "full"
        if self.threshold is not None and self.percent >= self.threshold:
            return "warn"
        return "ok"

    @property
    def alerting(self) -> bool:
        return self.threshold is not None and self.percent >= self.threshold


@dataclass(frozen=True)
class TopUser:
    label: str
    tokens: int
    cap: int

    @property
    def percent(self) -> int:
        return 100 if self.cap <= 0 else min(int(self.tokens * 100 / self.cap), 100)


@dataclass(frozen=True)
class BudgetStatus:
    budgets: list[BudgetUse]
    threshold: int | None
    time_zone: str
    resets_at: dt.datetime
    kill_switch: bool
    kill_switch_reason: str
    top_user: TopUser | None
    # Calls in progress and the worst case they hold reserved in today's counter: the day's "used" is the
    # recorded tokens plus this, so the console can say why a bar is ahead of the recorded calls.
    in_flight_calls: int = 0
    reserved_tokens_today: int = 0

    @property
    def alerts(self) -> list[BudgetUse]:
        return [budget for budget in self.budgets if budget.alerting]


def _recorded(start: dt.datetime, end: dt.datetime) -> tuple[int, Decimal]:
    """Tokens and cost of the period's calls, counted as the gateway rebuilds its counters."""
    # The statuses the gateway rebuilds its counters from (gateway.policy._initialise_counters): cut-off
    # streams are settled to the tokens they produced.
    totals = ModelCall.objects.filter(
        status__in=[ModelCall.Status.OK, ModelCall.Status.ERROR, ModelCall.Status.CUT_OFF],
        created_at__gte=start,
        created_at__lt=end,
    ).aggregate(
        tokens=Coalesce(Sum("tokens_in"), 0) + Coalesce(Sum("tokens_out"), 0),
        cost=Coalesce(Sum("cost"), Decimal(0)),
    )
    return int(totals["tokens"]), Decimal(totals["cost"])


def _counters(tenant_schema: str, day: str, month: str) -> list[int | None]:
    prefix = store.tenant_prefix(tenant_schema)
    keys = [f"{prefix}:tok:d:{day}", f"{prefix}:tok:m:{month}", f"{prefix}:cost:m:{month}"]
    try:
        values = store.client().mget(keys)
    except redis.RedisError:
        logger.warning("budget counters unavailable for %s; using recorded usage", tenant_schema)
        return [None, None, None]
    return [None if value is None else int(value) for value in values]


def _in_flight(tenant_schema: str, day: str) -> tuple[int, int]:
    """Open reservations of the tenant: how many, and the tokens they hold in today's counter."""
    prefix = store.tenant_prefix(tenant_schema)
    day_key = f"{prefix}:tok:d:{day}"
    try:
        request_ids = store.client().zrange(f"{prefix}:res:exp", 0, -1)
        pipeline = store.client().pipeline(transaction=False)
        for request_id in request_ids:
            pipeline.hmget(f"{prefix}:res:{store.decode(request_id)}", ["tokens", "day"])
        held = pipeline.execute() if request_ids else []
    except redis.RedisError:
        return 0, 0
    reserved = sum(
        int(tokens) for tokens, key in held if tokens is not None and store.decode(key or b"") == day_key
    )
    return len(request_ids), reserved


def _top_user_today(policy: GatewayPolicy, day_start: dt.datetime, next_day: dt.datetime) -> TopUser | None:
    if policy.user_daily_token_cap is None:
        return None
    row = (
        ModelCall.objects.filter(
            status__in=[ModelCall.Status.OK, ModelCall.Status.ERROR],
            created_at__gte=day_start,
            created_at__lt=next_day,
            user__isnull=False,
        )
        .values("user_id")
        .annotate(tokens=Coalesce(Sum("tokens_in"), 0) + Coalesce(Sum("tokens_out"), 0))
        .order_by("-tokens")
        .first()
    )
    if row is None:
        return None
    user = User.objects.filter(pk=row["user_id"]).first()
    return TopUser(
        label=str(user) if user else "(deleted user)", tokens=row["tokens"], cap=policy.user_daily_token_cap
    )


def budget_status(tenant_schema: str, now: dt.datetime | None = None) -> BudgetStatus:
    """The tenant's budgets with what is used of each, in the tenant's calendar. Runs in its schema."""
    policy = access_gateway_policy()
    time_zone = (
        Tenant.objects.filter(schema_name=tenant_schema).values_list("time_zone", flat=True).first() or "UTC"
    )
    local_now = tenant_now(time_zone, now)
    day_start, month_start, next_day = period_bounds(local_now)
    day, month = local_now.strftime("%Y%m%d"), local_now.strftime("%Y%m")
    day_tokens, month_tokens, month_cost_units = _counters(tenant_schema, day, month)
    if day_tokens is None:
        day_tokens = _recorded(day_start, next_day)[0]
    month_cost: Decimal
    if month_tokens is None or month_cost_units is None:
        recorded_tokens, recorded_cost = _recorded(month_start, next_day)
        month_tokens = recorded_tokens if month_tokens is None else month_tokens
        month_cost = (
            recorded_cost if month_cost_units is None else Decimal(month_cost_units) / COST_UNITS_PER_USD
        )
    else:
        month_cost = Decimal(month_cost_units) / COST_UNITS_PER_USD
    in_flight, reserved = _in_flight(tenant_schema, day)
    threshold = policy.budget_alert_percent
    month_label = local_now.strftime("%B %Y")
    budgets = [
        BudgetUse(
            BudgetAlert.Budget.DAILY_TOKENS, "Tokens today", day, "today",
            Decimal(day_tokens), Decimal(policy.daily_token_budget), False, threshold,
        ),
        BudgetUse(
            BudgetAlert.Budget.MONTHLY_TOKENS, "Tokens this month", month, month_label,
            Decimal(month_tokens), Decimal(policy.monthly_token_budget), False, threshold,
        ),
        BudgetUse(
            BudgetAlert.Budget.MONTHLY_SPEND, "Spend this month", month, month_label,
            month_cost, Decimal(policy.monthly_spend_cap), True, threshold,
        ),
    ]  # fmt: skip
    return BudgetStatus(
        budgets=budgets,
        threshold=threshold,
        time_zone=time_zone,
        resets_at=next_day,
        kill_switch=policy.kill_switch,
        kill_switch_reason=policy.kill_switch_reason,
        top_user=_top_user_today(policy, day_start, next_day),
        in_flight_calls=in_flight,
        reserved_tokens_today=reserved,
    )


def _describe_use(budget: BudgetUse) -> str:
    if budget.is_money:
        return f"${budget.used:,.2f} of ${budget.limit:,.2f}"
    return f"{int(budget.used):,} of {int(budget.limit):,} tokens"


def notify_tenant_admins_of_budget(tenant: Tenant, budget: BudgetUse, recipients: list[str]) -> None:
    if not recipients:
        return
    resets = (
        "at midnight" if budget.budget == BudgetAlert.Budget.DAILY_TOKENS else "on the first of next month"
    )
    send_mail(
        subject=f"[ConvoSuite] {tenant.name} has used {budget.percent}% of its {budget.noun}",
        message=(
            f"{tenant.name} has used {_describe_use(budget)} ({budget.percent}%) of its "
            f"{budget.noun} for {budget.period_label}. You asked to be told at "
            f"{budget.threshold}%.\n\n"
            "When a budget is used up, the assistant refuses new requests until it resets "
            f"({resets}, {tenant.time_zone}). You can raise the budget or switch the assistant off under "
            "Budgets & limits in the admin console.\n\n"
            "This is the only alert for this budget in this period."
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )


def send_budget_alerts(tenant_schema: str, now: dt.datetime | None = None) -> int:
    """E-mail the tenant admins about each budget past the alert threshold, once per budget and period.
    Returns how many alerts were recorded now (0 when each was already sent)."""
    status = budget_status(tenant_schema, now or timezone.now())
    if not status.alerts:
        return 0
    tenant = Tenant.objects.get(schema_name=tenant_schema)
    recipients = tenant_admin_emails()
    recorded = 0
    for budget in status.alerts:
        try:
            with transaction.atomic():
                BudgetAlert.objects.create(
                    budget=budget.budget,
                    period=budget.period,
                    percent_used=budget.percent,
                    threshold_percent=budget.threshold or 0,
                    recipients=recipients,
                )
                # After commit: a rolled-back record must not leave an e-mail behind it.
                transaction.on_commit(
                    lambda budget=budget: notify_tenant_admins_of_budget(tenant, budget, recipients)  # type: ignore[misc]
                )
        except IntegrityError:
            continue  # already sent for this period (by this or another process)
        recorded += 1
    return recorded
