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
def series_rows(series: dict[str, Any]) -> list[tuple[str, int]]:
    return list(zip(series.get("labels", []), series.get("totals", []), strict=False))
