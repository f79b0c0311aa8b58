"""Number formats of the console: token counts and US-dollar spend."""

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

register = template.Library()


@register.filter
def tokens(value: Any) -> str:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return "0"
    return f"{number:,}"


@register.filter
def usd(value: Any) -> str:
    """Spend with cents; below a cent, enough digits to show it is not zero."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return "$0.00"
    if amount == 0:
        return "$0.00"
    if abs(amount) < Decimal("0.01"):
        return f"${amount:.6f}".rstrip("0")
    return f"${amount:,.2f}"


@register.filter
def series_rows(series: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per bucket of a usage series (console.usage.usage_series), for the tables view."""
    names = ("labels", "totals", "calls", "failed", "error_rate", "latency_p50", "latency_p95")
    columns = [series.get(name) or [] for name in names]
    return [
        {"label": label, "tokens": tokens, "calls": calls, "failed": failed, "error_rate": rate, "p50": p50, "p95": p95}
        for label, tokens, calls, failed, rate, p50, p95 in zip(*columns, strict=False)
    ]
