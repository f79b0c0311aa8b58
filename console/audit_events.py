"""The console's audit events page: filters (kind, who, dates in the tenant's time zone) and the details of
each event as words and plain values, not Python or JSON notation."""

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.db.models import QuerySet

from audit.models import AuditEvent

NO_VALUE = "—"
# Words for the keys events use most; any other key is spelled out from its name (key_id -> "Key id").
DETAIL_LABELS = {
    "template_name": "Template",
    "template_id": "Template id",
    "from_version": "From version",
    "to_version": "To version",
    "old_name": "Previous name",
    "key_id": "Key id",
    "prefix": "Key prefix",
    "models": "Models",
    "expires_at": "Expires",
    "daily_token_budget": "Daily token budget",
    "requests_per_minute": "Requests per minute",
    "reason": "Reason",
    "via": "Through",
}
# Ids are for cross-referencing, the other details for reading: ids go last.
_ID_KEY = re.compile(r"(^|_)(id|ids|uuid|hash)$")
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?$")


@dataclass(frozen=True)
class Detail:
    label: str
    text: str


def label_for(key: str) -> str:
    return DETAIL_LABELS.get(key) or key.replace("_", " ").strip().capitalize()


def readable_value(value: Any, time_zone: str = "UTC") -> str:
    """One value as a person reads it: yes/no, numbers with separators, lists joined, a change as "a → b"."""
    if value is None or value == "" or value == [] or value == {}:
        return NO_VALUE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | Decimal | float):
        number: Any = int(value) if isinstance(value, float) and value.is_integer() else value
        return f"{number:,}" if abs(number) >= 10_000 else str(number)
    if isinstance(value, str):
        if _ISO_MOMENT.match(value):
            try:
                moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return value
            if moment.tzinfo is not None:
                moment = moment.astimezone(ZoneInfo(time_zone))
                return moment.strftime("%Y-%m-%d %H:%M %Z")
        return value
    if isinstance(value, list | tuple):
        return ", ".join(readable_value(item, time_zone) for item in value)
    if isinstance(value, dict):
        if set(value) <= {"from", "to"} and value:
            return f"{readable_value(value.get('from'), time_zone)} → {readable_value(value.get('to'), time_zone)}"
        return "; ".join(
            f"{label_for(str(key)).lower()} {readable_value(item, time_zone)}" for key, item in value.items()
        )
    return str(value)


def readable_details(details: Any, time_zone: str = "UTC") -> list[Detail]:
    if not isinstance(details, dict):
        return (
            [] if details in (None, "", [], {}) else [Detail("Details", readable_value(details, time_zone))]
        )
    keys = sorted(details, key=lambda key: (bool(_ID_KEY.search(str(key))), 0))
    return [Detail(label_for(str(key)), readable_value(details[key], time_zone)) for key in keys]


def readable_kind(kind: str) -> str:
    """ "prompts.label_moved" -> "Prompts: label moved"."""
    area, _, action = kind.partition(".")
    area_words = area.replace("_", " ").capitalize()
    return f"{area_words}: {action.replace('_', ' ').replace('.', ' ')}" if action else area_words


class AuditFilterForm(forms.Form):
    kind = forms.CharField(required=False, max_length=64)
    actor = forms.CharField(required=False, max_length=255, label="By")
    date_from = forms.DateField(
        required=False, label="From", error_messages={"invalid": "Enter a date like 2026-11-30."}
    )
    date_to = forms.DateField(
        required=False, label="To", error_messages={"invalid": "Enter a date like 2026-11-30."}
    )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The start date is after the end date.")
        return cleaned


def _local_midnight(day: dt.date, time_zone: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(time_zone))


def filtered_events(filters: dict[str, Any], *, time_zone: str) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.select_related("actor").order_by("-created_at", "-id")
    if filters.get("kind"):
        events = events.filter(kind__startswith=filters["kind"])
    actor = filters.get("actor") or ""
    if actor == NO_ACTOR:
        events = events.filter(actor_label="")
    elif actor:
        events = events.filter(actor_label=actor)
    if filters.get("date_from"):
        events = events.filter(created_at__gte=_local_midnight(filters["date_from"], time_zone))
    if filters.get("date_to"):
        events = events.filter(
            created_at__lt=_local_midnight(filters["date_to"] + dt.timedelta(days=1), time_zone)
        )
    return events


# The actor filter's value for events written by the system itself (no person, no operator label).
NO_ACTOR = "(system)"


def actor_choices() -> list[str]:
    """Who appears in the tenant's events (people and operators, by the label the event recorded)."""
    labels = list(AuditEvent.objects.order_by().values_list("actor_label", flat=True).distinct()[:200])
    named = sorted({label for label in labels if label}, key=str.lower)
    return named + ([NO_ACTOR] if "" in labels else [])


def kind_choices() -> list[tuple[str, str]]:
    kinds = sorted(AuditEvent.objects.order_by().values_list("kind", flat=True).distinct()[:200])
    return [(kind, readable_kind(kind)) for kind in kinds]


def with_readable_details(events: Any, time_zone: str) -> list[AuditEvent]:
    shown = []
    for event in events:
        event.readable_details = readable_details(event.details, time_zone)  # type: ignore[attr-defined]
        event.readable_kind = readable_kind(event.kind)  # type: ignore[attr-defined]
        shown.append(event)
    return shown
