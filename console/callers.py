"""Who made a model call, in words: a person, an API key (by its name), or nobody the tenant still has.

A call made with an API key has no user; the tenant API records the key as its source (`key:<prefix>`,
gateway.api.models.ApiKey.call_source), so the console can name the key in the log and in usage."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Sum
from django.db.models.functions import Coalesce

from gateway.api.models import KEY_SOURCE_PREFIX, ApiKey
from gateway.models import ModelCall


@dataclass(frozen=True)
class Caller:
    kind: str  # "person", "key" or "nobody"
    label: str
    # A second line for the log: the key's prefix, or why there is no name.
    detail: str = ""
    # What the model-call filter takes to show this caller's calls: "user:<id>" or "key:<prefix>".
    filter_value: str = ""


def is_key_source(source: str) -> bool:
    return source.startswith(KEY_SOURCE_PREFIX)


def keys_by_source() -> dict[str, ApiKey]:
    """Every key of the tenant by the source its calls carry (revoked and expired keys included: their
    past calls keep their name)."""
    return {key.call_source: key for key in ApiKey.objects.only("id", "name", "prefix")}


def describe_caller(user: Any, source: str, keys: dict[str, ApiKey]) -> Caller:
    if user is not None:
        return Caller("person", str(user), "", f"user:{user.pk}")
    if is_key_source(source):
        key = keys.get(source)
        prefix = source.removeprefix(KEY_SOURCE_PREFIX)
        if key is None:
            return Caller("key", f"API key {prefix}", "key no longer exists", source)
        return Caller("key", key.name, f"API key · {prefix}", source)
    if source == "api":
        return Caller("nobody", "Access token", "no member of this workspace")
    return Caller("nobody", "Deleted member", "")


def key_tokens_between(start: datetime, end: datetime) -> dict[str, int]:
    """Tokens used by each key's calls in a window, by source (one grouped query)."""
    rows = (
        ModelCall.objects.filter(
            created_at__gte=start, created_at__lt=end, source__startswith=KEY_SOURCE_PREFIX
        )
        .values("source")
        .annotate(tokens=Coalesce(Sum("tokens_in"), 0) + Coalesce(Sum("tokens_out"), 0))
        .order_by()
    )
    return {row["source"]: int(row["tokens"]) for row in rows}
