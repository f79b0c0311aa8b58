"""Argument parsing shared by the audit commands."""

import datetime as dt

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from tenants.models import Tenant


def tenant_by_slug(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(schema_name=slug).exclude(schema_name="public").first()
    if tenant is None:
        raise CommandError(f"No tenant with slug {slug!r}.")
    return tenant


def parse_instant(text: str, option: str) -> dt.datetime:
    """An ISO date (midnight UTC) or date-time (UTC unless it names its offset)."""
    value = parse_datetime(text)
    if value is None:
        day = parse_date(text)
        if day is None:
            raise CommandError(
                f"{option}: {text!r} is not an ISO date or date-time (e.g. 2026-01-31 or 2026-01-31T12:00Z)."
            )
        value = dt.datetime.combine(day, dt.time.min)
    if timezone.is_naive(value):
        value = value.replace(tzinfo=dt.UTC)
    return value
