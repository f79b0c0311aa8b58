"""Parsing what the console's pages (and the platform's) send that a Django form field does not parse."""

import datetime as dt

from django.utils import timezone
from django.utils.dateparse import parse_datetime


def parse_utc_input(value: str) -> dt.datetime | None:
    """<input type=datetime-local> sends no zone: the console states that times are UTC."""
    parsed = parse_datetime(value.strip()) if value else None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed
