"""Usage figures of the current tenant, aggregated from its ModelCall records (in its own schema).

Each query filters on a created_at window first (indexed: modelcall_time_model_idx, modelcall_user_time_idx),
then groups in the database; no per-row Python. Periods follow the tenant's time zone.

Every figure of one report comes from one database snapshot (REPEATABLE READ), over one window, with one
definition of each word, so the cards, tables and charts of a page always agree with each other:
- tokens: tokens in + out of every record in the window (a call still in progress has none recorded yet);
- failed: calls that ended in an error or were refused (a call in progress is not failed, a stopped stream
  is "stopped", not failed);
- error rate: failed / finished calls; latency: of the calls that answered (status ok).
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Aggregate, Case, CharField, Count, F, FloatField, Q, Sum, Value, When
from django.db.models.functions import Coalesce, TruncDay, TruncHour

from accounts.models import User
from catalogue.models import CatalogueEntry
from console.callers import Caller, describe_caller, keys_by_source
from gateway.api.models import KEY_SOURCE_PREFIX
from gateway.models import ModelCall

Bucket = Literal["hour", "day"]
MAX_RANGE_DAYS = 92
FAILED = [ModelCall.Status.ERROR, ModelCall.Status.REFUSED]
# Chart colours: a model keeps its colour on every load and every page (its place in the catalogue).
PALETTE = [
    "#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444",
    "#8b5cf6", "#14b8a6", "#ec4899", "#84cc16", "#64748b",
]  # fmt: skip


class Percentile(Aggregate):
    """PostgreSQL's percentile_cont; the fraction is one of our constants, never input."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=f"{float(fraction):.2f}", **extra)


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
    "failed_calls": Count("id", filter=Q(status__in=FAILED)),
    "tokens_in": Coalesce(Sum("tokens_in"), 0),
    "tokens_out": Coalesce(Sum("tokens_out"), 0),
    "cost": Coalesce(Sum("cost"), Decimal(0)),
}
_MORE = {
    "stopped_calls": Count("id", filter=Q(status=ModelCall.Status.CUT_OFF)),
    "running_calls": Count("id", filter=Q(status=ModelCall.Status.STARTED)),
    "latency_p50": Percentile("latency_ms", 0.5, filter=Q(status=ModelCall.Status.OK)),
    "latency_p95": Percentile("latency_ms", 0.95, filter=Q(status=ModelCall.Status.OK)),
}


def usage_totals(start: datetime, end: datetime) -> UsageTotals:
    return UsageTotals(**_window(start, end).aggregate(**_SUMS))


@contextmanager
def one_snapshot() -> Iterator[None]:
    """Run the report's queries in one REPEATABLE READ transaction: a call finishing between two queries
    cannot make the cards and the tables disagree. Inside a caller's transaction, its snapshot rules."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def model_colors(models: list[str]) -> dict[str, str]:
    order = {
        alias: index
        for index, alias in enumerate(CatalogueEntry.objects.order_by("pk").values_list("alias", flat=True))
    }
    colors = {}
    for model in models:
        index = order.get(model)
        if index is None:
            index = int(hashlib.sha256(model.encode()).hexdigest(), 16)
        colors[model] = PALETTE[index % len(PALETTE)]
    return colors


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


def _label(moment: datetime, bucket: Bucket, several_months: bool) -> str:
    if bucket == "hour":
        return moment.strftime("%H:00")
    return moment.strftime("%d %b") if several_months else str(moment.day)


def usage_series(start: datetime, end: datetime, *, bucket: Bucket) -> dict[str, Any]:
    """Per bucket: tokens by model (every bucket present, zeros included, so the chart has no gaps), and the
    bucket's calls, failed calls, error rate and latency percentiles."""
    tz = start.tzinfo
    trunc = TruncHour("created_at", tzinfo=tz) if bucket == "hour" else TruncDay("created_at", tzinfo=tz)
    starts = _bucket_starts(start, end, bucket)
    index = {moment: position for position, moment in enumerate(starts)}
    per_model: dict[str, list[int]] = {}
    rows = (
        _window(start, end)
        .annotate(bucket=trunc)
        .values("bucket", model=F("model_requested"))
        .annotate(tokens=Coalesce(Sum("tokens_in"), 0) + Coalesce(Sum("tokens_out"), 0))
        .order_by("bucket")
    )
    for row in rows:
        position = index.get(row["bucket"].astimezone(tz))
        if position is not None:
            per_model.setdefault(row["model"], [0] * len(starts))[position] += row["tokens"]
    health: list[dict[str, Any]] = [
        {"calls": 0, "failed": 0, "finished": 0, "p50": None, "p95": None} for _ in starts
    ]
    for row in (
        _window(start, end)
        .annotate(bucket=trunc)
        .values("bucket")
        .annotate(
            calls=Count("id"),
            failed=Count("id", filter=Q(status__in=FAILED)),
            running=Count("id", filter=Q(status=ModelCall.Status.STARTED)),
            p50=_MORE["latency_p50"],
            p95=_MORE["latency_p95"],
        )
        .order_by("bucket")
    ):
        position = index.get(row["bucket"].astimezone(tz))
        if position is not None:
            health[position] = {
                "calls": row["calls"],
                "failed": row["failed"],
                "finished": row["calls"] - row["running"],
                "p50": round(row["p50"]) if row["p50"] is not None else None,
                "p95": round(row["p95"]) if row["p95"] is not None else None,
            }
    several_months = len({(moment.year, moment.month) for moment in starts}) > 1
    return {
        "bucket": bucket,
        "labels": [_label(moment, bucket, several_months) for moment in starts],
        "starts": [moment.isoformat() for moment in starts],
        "datasets": [{"model": model, "tokens": values} for model, values in sorted(per_model.items())],
        "totals": [sum(column) for column in zip(*per_model.values(), strict=True)]
        if per_model
        else [0] * len(starts),
        "calls": [item["calls"] for item in health],
        "failed": [item["failed"] for item in health],
        "error_rate": [
            round(item["failed"] * 100 / item["finished"], 1) if item["finished"] else None for item in health
        ],
        "latency_p50": [item["p50"] for item in health],
        "latency_p95": [item["p95"] for item in health],
    }


def usage_by_model(start: datetime, end: datetime) -> list[dict[str, Any]]:
    rows = (
        _window(start, end)
        .values(model=F("model_requested"))
        .annotate(**_SUMS, latency_p50=_MORE["latency_p50"])
        .order_by("model")
    )
    return [
        {
            **row,
            "tokens": row["tokens_in"] + row["tokens_out"],
            "latency_p50": round(row["latency_p50"]) if row["latency_p50"] is not None else None,
        }
        for row in rows
    ]


def usage_by_caller(start: datetime, end: datetime, *, limit: int = 10) -> list[dict[str, Any]]:
    """Who used the tokens: each person, and each API key by its name (a key's calls have no user). The top
    `limit` by tokens, then one row "Everyone else" so the rows always add up to the totals."""
    key_source = Case(
        When(source__startswith=KEY_SOURCE_PREFIX, then=F("source")),
        default=Value(""),
        output_field=CharField(),
    )
    rows = list(_window(start, end).values("user_id", key=key_source).annotate(**_SUMS).order_by())
    for row in rows:
        row["tokens"] = row["tokens_in"] + row["tokens_out"]
    rows.sort(key=lambda row: (-row["tokens"], -row["calls"]))
    top, rest = rows[:limit], rows[limit:]
    users = {
        user.pk: user
        for user in User.objects.filter(pk__in=[row["user_id"] for row in top if row["user_id"]])
    }
    keys = keys_by_source()
    shown = []
    for row in top:
        if row["key"]:
            caller = describe_caller(None, row["key"], keys)
        elif row["user_id"]:
            caller = describe_caller(users.get(row["user_id"]), "", keys)
        else:
            caller = Caller("nobody", "Without a member", "an access token or the system")
        shown.append(
            {**_row_numbers(row), "user": caller.label, "kind": caller.kind, "detail": caller.detail}
        )
    if rest:
        merged = {
            name: sum(row[name] for row in rest)
            for name in ("calls", "failed_calls", "tokens_in", "tokens_out", "cost", "tokens")
        }
        shown.append(
            {**_row_numbers(merged), "user": f"Everyone else ({len(rest)})", "kind": "rest", "detail": ""}
        )
    return shown


def _row_numbers(row: dict[str, Any]) -> dict[str, Any]:
    return {
        name: row[name] for name in ("calls", "failed_calls", "tokens_in", "tokens_out", "tokens", "cost")
    }


@dataclass(frozen=True)
class Range:
    start_day: date
    end_day: date  # inclusive
    preset: str  # "today", "7d", "30d", "month" or "custom"

    @property
    def days(self) -> int:
        return (self.end_day - self.start_day).days + 1

    @property
    def bucket(self) -> Bucket:
        return "hour" if self.days == 1 else "day"

    def window(self, time_zone: str) -> tuple[datetime, datetime]:
        tz = ZoneInfo(time_zone)
        return (
            datetime.combine(self.start_day, time.min, tzinfo=tz),
            datetime.combine(self.end_day + timedelta(days=1), time.min, tzinfo=tz),
        )

    @property
    def label(self) -> str:
        if self.preset == "today":
            return "Today"
        if self.days == 1:
            return self.start_day.strftime("%d %b %Y")
        return f"{self.start_day:%d %b %Y} – {self.end_day:%d %b %Y}"


PRESETS = {"today": "Today", "7d": "7 days", "30d": "30 days", "month": "This month"}


class RangeError(ValueError):
    """A range the page cannot show; the message says why."""


def parse_range(params: Any, today: date) -> Range:
    """The range the usage page shows: a preset (`range=today|7d|30d|month`, default today) or `from` and
    `to` dates (inclusive, the tenant's days)."""
    start_text, end_text = str(params.get("from") or "").strip(), str(params.get("to") or "").strip()
    if start_text or end_text:
        try:
            start = date.fromisoformat(start_text) if start_text else today
            end = date.fromisoformat(end_text) if end_text else today
        except ValueError:
            raise RangeError("Enter dates like 2026-11-30.") from None
        if start > end:
            raise RangeError("The start date is after the end date.")
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise RangeError(f"Choose at most {MAX_RANGE_DAYS} days.")
        return Range(start, end, "custom")
    preset = str(params.get("range") or "today")
    if preset == "7d":
        return Range(today - timedelta(days=6), today, preset)
    if preset == "30d":
        return Range(today - timedelta(days=29), today, preset)
    if preset == "month":
        return Range(today.replace(day=1), today, preset)
    return Range(today, today, "today")


def usage_report(now: datetime, time_zone: str, chosen: Range | None = None) -> dict[str, Any]:
    """Everything the usage page shows for a range (default: today), JSON-serialisable (Decimal costs as
    strings), from one snapshot."""
    local_today = now.astimezone(ZoneInfo(time_zone)).date()
    chosen = chosen or Range(local_today, local_today, "today")
    start, end = chosen.window(time_zone)
    with one_snapshot():
        totals = _window(start, end).aggregate(**_SUMS, **_MORE)
        series = usage_series(start, end, bucket=chosen.bucket)
        by_model = usage_by_model(start, end)
        by_caller = usage_by_caller(start, end)
        colors = model_colors([row["model"] for row in by_model])
    finished = totals["calls"] - totals["running_calls"]
    return {
        "generated_at": now.isoformat(),
        "time_zone": time_zone,
        "range": {
            "start": chosen.start_day.isoformat(),
            "end": chosen.end_day.isoformat(),
            "preset": chosen.preset,
            "label": chosen.label,
            "bucket": chosen.bucket,
            "includes_today": chosen.start_day <= local_today <= chosen.end_day,
        },
        "totals": {
            **{name: totals[name] for name in ("calls", "failed_calls", "stopped_calls", "running_calls")},
            "tokens_in": totals["tokens_in"],
            "tokens_out": totals["tokens_out"],
            "tokens": totals["tokens_in"] + totals["tokens_out"],
            "cost": str(totals["cost"]),
            "error_rate": round(totals["failed_calls"] * 100 / finished, 1) if finished else None,
            "latency_p50": round(totals["latency_p50"]) if totals["latency_p50"] is not None else None,
            "latency_p95": round(totals["latency_p95"]) if totals["latency_p95"] is not None else None,
        },
        "series": series,
        "by_model": [{**row, "cost": str(row["cost"]), "color": colors[row["model"]]} for row in by_model],
        "by_user": [{**row, "cost": str(row["cost"])} for row in by_caller],
        "colors": colors,
    }
