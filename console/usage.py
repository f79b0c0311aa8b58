"""Usage figures of the current tenant, aggregated from its ModelCall records (in its own schema).

Each query filters on a created_at window first (indexed: modelcall_time_model_idx, modelcall_user_time_idx),
then groups in the database; no per-row Python. Periods follow the tenant's time zone.
"""

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncDay, TruncHour

from accounts.models import User
from gateway.models import ModelCall

Bucket = Literal["hour", "day"]


@dataclass(frozen=True)
class UsageTotals:
    calls: int
    failed_calls: int
    tokens_in: int
    tokens_out: int
    cost: Decimal

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


@dataclass(frozen=True)
class Periods:
    now: datetime
    today_start: datetime
    month_start: datetime


def periods_for(now: datetime, time_zone: str) -> Periods:
    local = now.astimezone(ZoneInfo(time_zone))
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return Periods(now=now, today_start=today, month_start=today.replace(day=1))


def _window(start: datetime, end: datetime) -> Any:
    return ModelCall.objects.filter(created_at__gte=start, created_at__lt=end)


_SUMS = {
    "calls": Count("id"),
    "failed_calls": Count("id", filter=~Q(status=ModelCall.Status.OK)),
    "tokens_in": Coalesce(Sum("tokens_in"), 0),
    "tokens_out": Coalesce(Sum("tokens_out"), 0),
    "cost": Coalesce(Sum("cost"), Decimal(0)),
}


def usage_totals(start: datetime, end: datetime) -> UsageTotals:
    return UsageTotals(**_window(start, end).aggregate(**_SUMS))


def usage_by_model(start: datetime, end: datetime) -> list[dict[str, Any]]:
    rows = _window(start, end).values(model=F("model_requested")).annotate(**_SUMS).order_by("model")
    return [{**row, "tokens": row["tokens_in"] + row["tokens_out"]} for row in rows]


def usage_by_user(start: datetime, end: datetime, *, limit: int = 10) -> list[dict[str, Any]]:
    rows = list(_window(start, end).values("user_id").annotate(**_SUMS).order_by())
    # Sum of tokens per user, then the top ones; the labels come from one query for those users only.
    for row in rows:
        row["tokens"] = row["tokens_in"] + row["tokens_out"]
    rows.sort(key=lambda row: (-row["tokens"], -row["calls"]))
    top = rows[:limit]
    labels = {
        user.pk: str(user)
        for user in User.objects.filter(pk__in=[row["user_id"] for row in top if row["user_id"]])
    }
    return [{**row, "user": labels.get(row["user_id"], "(no user / deleted)")} for row in top]


def _bucket_starts(start: datetime, end: datetime, bucket: Bucket) -> list[datetime]:
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    starts, moment = [], start
    while moment < end:
        starts.append(moment)
        if bucket == "hour":
            # Real hours (through UTC), so a DST change gives 23 or 25 buckets, not a skipped or doubled one.
            moment = (moment.astimezone(UTC) + step).astimezone(start.tzinfo)
        else:
            # Wall-clock days: every bucket starts at local midnight.
            moment = moment + step
    return starts


def usage_series(start: datetime, end: datetime, *, bucket: Bucket) -> dict[str, Any]:
    """Tokens per bucket and model, every bucket present (zeros included) so the chart has no gaps."""
    tz = start.tzinfo
    trunc = TruncHour("created_at", tzinfo=tz) if bucket == "hour" else TruncDay("created_at", tzinfo=tz)
    rows = (
        _window(start, end)
        .annotate(bucket=trunc)
        .values("bucket", model=F("model_requested"))
        .annotate(tokens=Coalesce(Sum("tokens_in"), 0) + Coalesce(Sum("tokens_out"), 0), cost=Sum("cost"))
        .order_by("bucket")
    )
    starts = _bucket_starts(start, end, bucket)
    index = {moment: position for position, moment in enumerate(starts)}
    per_model: dict[str, list[int]] = {}
    for row in rows:
        position = index.get(row["bucket"].astimezone(tz))
        if position is None:
            continue
        per_model.setdefault(row["model"], [0] * len(starts))[position] += row["tokens"]
    # Short labels keep 31 days readable on the axis; the panel title names the month.
    labels = [moment.strftime("%H:00") if bucket == "hour" else str(moment.day) for moment in starts]
    return {
        "labels": labels,
        "datasets": [{"model": model, "tokens": values} for model, values in sorted(per_model.items())],
        "totals": [sum(column) for column in zip(*per_model.values(), strict=True)]
        if per_model
        else [0] * len(starts),
    }


def usage_report(now: datetime, time_zone: str) -> dict[str, Any]:
    """Everything the usage page shows, JSON-serialisable (Decimal costs as strings)."""
    periods = periods_for(now, time_zone)
    end = now + timedelta(microseconds=1)
    today, month = usage_totals(periods.today_start, end), usage_totals(periods.month_start, end)
    day_end = periods.today_start + timedelta(days=1)
    next_month_start = (periods.month_start + timedelta(days=32)).replace(day=1)
    return {
        "generated_at": now.isoformat(),
        "time_zone": time_zone,
        "month_label": periods.month_start.strftime("%B %Y"),
        "today": {**asdict(today), "tokens": today.tokens, "cost": str(today.cost)},
        "month": {**asdict(month), "tokens": month.tokens, "cost": str(month.cost)},
        "today_by_hour": usage_series(periods.today_start, day_end, bucket="hour"),
        "month_by_day": usage_series(periods.month_start, next_month_start, bucket="day"),
        "by_model": [{**row, "cost": str(row["cost"])} for row in usage_by_model(periods.month_start, end)],
        "by_user": [
            {key: (str(value) if key == "cost" else value) for key, value in row.items() if key != "user_id"}
            for row in usage_by_user(periods.month_start, end)
        ],
    }
