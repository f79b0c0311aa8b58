"""The tenant's model-call log: filtered queries and the full record of one call (current tenant schema)."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.db.models import Q, QuerySet
from django.http import Http404

from accounts.models import User
from console.callers import describe_caller, keys_by_source
from gateway.api.models import ApiKey
from gateway.models import ModelCall


class ModelCallFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    # "user:<id>" for a person, "key:<prefix>" for an API key (console.callers.Caller.filter_value).
    caller = forms.RegexField(
        required=False,
        regex=r"^(user:[1-9][0-9]{0,18}|key:[0-9a-f]{1,16})$",
        label="Made by",
        error_messages={"invalid": "Choose a person or an API key from the list."},
    )
    user = forms.IntegerField(required=False, min_value=1, label="User")
    model = forms.CharField(required=False, max_length=128, label="Model")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *ModelCall.Status.choices])
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The start date is after the end date.")
        return cleaned


def _local_midnight(day: date, time_zone: str) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(time_zone))


def filtered_model_calls(filters: dict[str, Any], *, time_zone: str) -> QuerySet[ModelCall]:
    calls = ModelCall.objects.select_related("user").defer("messages", "response", "tool_calls")
    if filters.get("user"):
        calls = calls.filter(user_id=filters["user"])
    caller = filters.get("caller") or ""
    if caller.startswith("user:"):
        calls = calls.filter(user_id=int(caller.removeprefix("user:")))
    elif caller:
        calls = calls.filter(source=caller)
    if filters.get("model"):
        calls = calls.filter(model_requested=filters["model"])
    if filters.get("status"):
        calls = calls.filter(status=filters["status"])
    if filters.get("date_from"):
        calls = calls.filter(created_at__gte=_local_midnight(filters["date_from"], time_zone))
    if filters.get("date_to"):
        calls = calls.filter(
            created_at__lt=_local_midnight(filters["date_to"] + timedelta(days=1), time_zone)
        )
    query = (filters.get("q") or "").strip()
    if query:
        try:
            calls = calls.filter(Q(request_id=uuid.UUID(query)) | Q(id=uuid.UUID(query)))
        except ValueError:
            # Metadata only: message, response and error text are encrypted at rest (not searchable in SQL).
            calls = calls.filter(
                Q(model_requested__icontains=query)
                | Q(model_served__icontains=query)
                | Q(provider__icontains=query)
                | Q(error_code__icontains=query)
                | Q(user__email__icontains=query)
                | Q(user__display_name__icontains=query)
                | Q(source__in=[key.call_source for key in ApiKey.objects.filter(name__icontains=query)])
            )
    return calls.order_by("-created_at")


def filter_choices() -> dict[str, Any]:
    return {
        "models": list(
            ModelCall.objects.order_by().values_list("model_requested", flat=True).distinct()[:200]
        ),
        "people": [
            (f"user:{person.pk}", str(person))
            for person in User.objects.filter(is_active=True).order_by("display_name", "email")[:500]
        ],
        "keys": [
            (key.call_source, f"{key.name} ({key.prefix})") for key in ApiKey.objects.order_by("name")[:500]
        ],
    }


def selected_caller(form: ModelCallFilterForm) -> str:
    """The filter's caller as the select names it (an old ?user=<id> link still selects that person)."""
    data = form.data
    caller = str(data.get("caller") or "")
    return caller or (f"user:{data['user']}" if data.get("user") else "")


def with_callers(calls: Iterable[ModelCall]) -> list[ModelCall]:
    """The calls, each with .caller (console.callers.Caller): a person, or the API key by its name."""
    keys = keys_by_source()
    described = []
    for call in calls:
        call.caller = describe_caller(call.user, call.source, keys)  # type: ignore[attr-defined]
        described.append(call)
    return described


def access_model_call_by_id(call_id: uuid.UUID) -> ModelCall:
    """A call of the current tenant (its schema holds no other); 404 when missing."""
    call = ModelCall.objects.select_related("user").filter(id=call_id).first()
    if call is None:
        raise Http404("No such model call.")
    return call


@dataclass(frozen=True)
class ModelCallContent:
    messages: list[dict[str, Any]]
    response: str


def model_call_content(call: ModelCall) -> ModelCallContent:
    """Seam for decryption: plain text today; with envelope encryption (feat/prompts) this decrypts with the
    tenant's data key. Only tenant admins (console) and break-glass readers reach it."""
    messages = call.messages if isinstance(call.messages, list) else []
    return ModelCallContent(messages=messages, response=call.response)
