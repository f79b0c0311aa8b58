"""Policy checked on every model call before a provider is contacted: allow-list, kill switch, rate limits
and the budget reservation (reserve the worst case, settle to actual, release on failure).

The functions check_kill_switch, reserve, settle and release are the contract between the call paths
(complete, stream, the tenant API) and the policy store; their signatures are stable.

Where things live (docs/gateway.md has the full story):
- the tenant's configuration: GatewayPolicy in the tenant schema (audited, changed by gateway.actions),
  published to a Redis hash that every worker reads on every call, so a change (the kill switch above all)
  takes effect at once everywhere;
- counters and open reservations: Redis, changed only by Lua scripts (gateway/store.py), each atomic.
"""

import datetime as dt
import json
import logging
import time
import uuid
import zoneinfo
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from gateway import store
from gateway.config import UnknownModelError, get_model_route
from gateway.errors import BudgetExceeded, KillSwitchOn, ModelNotAllowed, RateLimited, StopRequested

logger = logging.getLogger(__name__)

# Costs are counted in Redis as integers of 1e-8 USD (the precision of ModelCall.cost).
COST_UNITS_PER_USD = Decimal(10) ** 8
DAY_COUNTER_TTL = 3 * 24 * 3600
MONTH_COUNTER_TTL = 63 * 24 * 3600


def cost_units(cost: Decimal) -> int:
    return int((cost * COST_UNITS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True)
class Reservation:
    tenant_schema: str
    request_id: uuid.UUID
    user_id: int | None
    model: str
    tokens: int
    cost: Decimal
    # The calendar periods the reservation was counted in (tenant's time zone), e.g. "20260331", "202603".
    day: str = ""
    month: str = ""
    expires_at: float = 0.0


@dataclass(frozen=True)
class KeyLimits:
    """The limits of the API key a call is made with (gateway.api.models.ApiKey), checked by the same
    atomic reservation as the tenant's: a daily token budget (the tenant's calendar day) and requests per
    minute. The key's day counter is rebuilt from the records whose source is the key's (`key:<prefix>`)."""

    prefix: str
    daily_tokens: int | None = None
    requests_per_minute: int | None = None

    @property
    def source(self) -> str:
        return f"key:{self.prefix}"


@dataclass(frozen=True)
class PolicySnapshot:
    """The tenant's policy as published in Redis (see gateway.actions.policy_fields)."""

    version: int
    kill_switch: bool
    kill_switch_reason: str
    allowed_models: list[str]
    default_model: str
    fallbacks: dict[str, list[str]]
    time_zone: str
    raw: dict[str, str] = field(repr=False)

    def chain_for(self, model: str) -> list[str]:
        """The model followed by its allowed fallbacks, in order, without repeats."""
        chain = [model]
        for fallback in self.fallbacks.get(model, []):
            if fallback in self.allowed_models and fallback not in chain:
                chain.append(fallback)
        return chain


def _snapshot(raw: dict[str, str]) -> PolicySnapshot:
    return PolicySnapshot(
        version=int(raw["version"]),
        kill_switch=raw.get("kill") == "1",
        kill_switch_reason=raw.get("kill_reason", ""),
        allowed_models=json.loads(raw.get("allowed", "[]")),
        default_model=raw.get("default_model", ""),
        fallbacks=json.loads(raw.get("fallbacks", "{}")),
        time_zone=raw.get("tz", "UTC"),
        raw=raw,
    )


_policy_cache: dict[str, tuple[float, PolicySnapshot]] = {}


def publish_policy(tenant_schema: str, *, only_if_absent: bool = False) -> PolicySnapshot:
    """Copy the tenant's policy row (and time zone) to Redis. Runs inside the tenant's schema."""
    from gateway.actions import policy_fields

    fields = policy_fields(tenant_schema)
    args: list[Any] = [fields["version"], "1" if only_if_absent else "0"]
    for name, value in fields.items():
        args += [name, value]
    key = f"{store.tenant_prefix(tenant_schema)}:policy"
    store.run(store.PUBLISH_SCRIPT, [key], args)
    snapshot = _snapshot(fields)
    _policy_cache[key] = (time.monotonic(), snapshot)
    return snapshot


def load_policy(tenant_schema: str, *, max_age: float = 0.0) -> PolicySnapshot:
    """The tenant's published policy. With max_age, a copy this process read at most that many seconds
    ago may be returned: the call path uses that for the allow-list, default model, fallbacks and time
    zone, while the kill switch and every limit are read by the reserve script itself, never cached."""
    key = f"{store.tenant_prefix(tenant_schema)}:policy"
    if max_age:
        cached = _policy_cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
    raw = store.client().hgetall(key)
    snapshot = (
        publish_policy(tenant_schema, only_if_absent=True) if not raw else _snapshot(store.hash_as_dict(raw))
    )
    _policy_cache[key] = (time.monotonic(), snapshot)
    return snapshot


def default_model_for_tenant(tenant_schema: str) -> str:
    return load_policy(tenant_schema).default_model or settings.GATEWAY_DEFAULT_MODEL


def check_model_allowed(policy: PolicySnapshot, model: str) -> None:
    if model not in policy.allowed_models:
        raise ModelNotAllowed(f"The model {model!r} is not enabled for this workspace.")


def kill_switch_error(reason: str) -> KillSwitchOn:
    message = "The assistant has been switched off for this workspace by an administrator."
    return KillSwitchOn(f"{message} Reason: {reason}" if reason else message)


def check_kill_switch(tenant_schema: str) -> None:
    """Raise KillSwitchOn if the tenant's kill switch is on. One Redis read: cheap enough to call between
    stream chunks."""
    policy_key = f"{store.tenant_prefix(tenant_schema)}:policy"
    kill, reason = store.client().hmget(policy_key, ["kill", "kill_reason"])
    _raise_if_killed(tenant_schema, kill, reason)


def _raise_if_killed(tenant_schema: str, kill: Any, reason: Any) -> None:
    if kill is None:
        policy = load_policy(tenant_schema)
        if policy.kill_switch:
            raise kill_switch_error(policy.kill_switch_reason)
        return
    if store.decode(kill) == "1":
        raise kill_switch_error(store.decode(reason or b""))


# A stop request outlives any stream it could stop (streams are bounded by the task time limit).
STOP_REQUEST_TTL_SECONDS = 3600


def _stop_key(tenant_schema: str, request_id: uuid.UUID) -> str:
    return f"{store.tenant_prefix(tenant_schema)}:stop:{request_id}"


def request_stop(tenant_schema: str, request_id: uuid.UUID) -> None:
    """Ask the stream of one call to stop (a person pressed Stop). Like the kill switch, but for one request
    id: whichever worker streams it sees the flag between chunks and ends the call as cut off, keeping what
    was produced (recorded and settled as usual)."""
    store.client().set(_stop_key(tenant_schema, request_id), "1", ex=STOP_REQUEST_TTL_SECONDS)


def stop_requested(tenant_schema: str, request_id: uuid.UUID) -> bool:
    return bool(store.client().exists(_stop_key(tenant_schema, request_id)))


def check_stream_may_continue(tenant_schema: str, request_id: uuid.UUID) -> None:
    """Between stream chunks: KillSwitchOn if the tenant's kill switch is on, else StopRequested if this
    call was asked to stop. One Redis round trip, like check_kill_switch alone."""
    pipe = store.client().pipeline(transaction=False)
    pipe.hmget(f"{store.tenant_prefix(tenant_schema)}:policy", ["kill", "kill_reason"])
    pipe.exists(_stop_key(tenant_schema, request_id))
    (kill, reason), stop = pipe.execute()
    _raise_if_killed(tenant_schema, kill, reason)
    if stop:
        raise StopRequested("Stopped.")


# --- calendar --------------------------------------------------------------------------------------------


def tenant_now(time_zone: str, now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(time_zone))


def period_bounds(local_now: dt.datetime) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """Start of the tenant's day, of its month, and of the next day, as aware datetimes."""
    tz = local_now.tzinfo
    day_start = dt.datetime(local_now.year, local_now.month, local_now.day, tzinfo=tz)
    month_start = dt.datetime(local_now.year, local_now.month, 1, tzinfo=tz)
    # Aware-datetime arithmetic is wall-clock arithmetic: this is the next local midnight, DST or not.
    next_day = day_start + dt.timedelta(days=1)
    return day_start, month_start, next_day


@dataclass(frozen=True)
class _Keys:
    prefix: str
    day: str
    month: str
    user_day: str
    minute: int

    def counters(self, user_id: int | None) -> list[str]:
        p = self.prefix
        user = str(user_id) if user_id is not None else "none"
        return [
            f"{p}:tok:d:{self.day}",
            f"{p}:tok:m:{self.month}",
            f"{p}:cost:m:{self.month}",
            f"{p}:utok:d:{self.day}:{user}",
            f"{p}:rpm:{self.minute}",
            f"{p}:rpm:{self.minute - 1}",
            f"{p}:tpm:{self.minute}",
            f"{p}:tpm:{self.minute - 1}",
            f"{p}:urpm:{user}:{self.minute}",
            f"{p}:urpm:{user}:{self.minute - 1}",
            f"{p}:utpm:{user}:{self.minute}",
            f"{p}:utpm:{user}:{self.minute - 1}",
        ]

    def key_counters(self, api_key: KeyLimits | None) -> list[str]:
        """The API key's day tokens and requests per minute (current and previous minute)."""
        p, key = self.prefix, api_key.prefix if api_key is not None else "none"
        return [
            f"{p}:ktok:d:{self.day}:{key}",
            f"{p}:krpm:{key}:{self.minute}",
            f"{p}:krpm:{key}:{self.minute - 1}",
        ]


def _period_labels(local_now: dt.datetime) -> tuple[str, str]:
    return local_now.strftime("%Y%m%d"), local_now.strftime("%Y%m")


def _initialise_counters(
    tenant_schema: str,
    keys: list[str],
    user_id: int | None,
    local_now: dt.datetime,
    *,
    api_key: KeyLimits | None = None,
    key_day: str = "",
) -> None:
    """Counters absent from Redis (a new day or month, a new user today, or a flushed Redis) start from
    the usage recorded in the tenant's model-call table for that period. SET NX: whoever comes first wins,
    and nobody can reserve against a missing counter in between (the reserve script refuses to)."""
    from gateway.models import ModelCall

    day_start, month_start, next_day = period_bounds(local_now)
    # Cut-off streams are settled to the tokens they produced, so they count like finished calls.
    counted = ModelCall.objects.filter(
        status__in=[ModelCall.Status.OK, ModelCall.Status.ERROR, ModelCall.Status.CUT_OFF]
    )
    month = counted.filter(created_at__gte=month_start, created_at__lt=next_day).aggregate(
        tokens=Coalesce(Sum("tokens_in"), 0) + Coalesce(Sum("tokens_out"), 0),
        cost=Coalesce(Sum("cost"), Decimal(0)),
    )
    day = counted.filter(created_at__gte=day_start, created_at__lt=next_day).aggregate(
        tokens=Coalesce(Sum("tokens_in"), 0) + Coalesce(Sum("tokens_out"), 0)
    )
    values: list[Any] = [day["tokens"], DAY_COUNTER_TTL, month["tokens"], MONTH_COUNTER_TTL]
    values += [cost_units(Decimal(month["cost"])), MONTH_COUNTER_TTL]
    init_keys = keys[:3]
    if user_id is not None:
        user_day = counted.filter(
            user_id=user_id, created_at__gte=day_start, created_at__lt=next_day
        ).aggregate(tokens=Coalesce(Sum("tokens_in"), 0) + Coalesce(Sum("tokens_out"), 0))
        init_keys.append(keys[3])
        values += [user_day["tokens"], DAY_COUNTER_TTL]
    if api_key is not None and api_key.daily_tokens is not None:
        key_today = counted.filter(
            source=api_key.source, created_at__gte=day_start, created_at__lt=next_day
        ).aggregate(tokens=Coalesce(Sum("tokens_in"), 0) + Coalesce(Sum("tokens_out"), 0))
        init_keys.append(key_day)
        values += [key_today["tokens"], DAY_COUNTER_TTL]
    store.run(store.INIT_SCRIPT, init_keys, values)


def _refusal(code: str, detail: list[str], policy: PolicySnapshot, local_now: dt.datetime) -> Exception:
    _, _, next_day = period_bounds(local_now)
    if code == "killed":
        return kill_switch_error(detail[0] if detail else "")
    if code in ("rpm", "user_rpm"):
        who = "You are" if code == "user_rpm" else "This workspace is"
        return RateLimited(
            f"{who} sending too many requests (limit {detail[0]} per minute). Try again shortly."
        )
    if code in ("tpm", "user_tpm"):
        who = "You are" if code == "user_tpm" else "This workspace is"
        return RateLimited(
            f"{who} using too many tokens per minute (limit {int(detail[0]):,}). Try again shortly."
        )
    if code == "day":
        return BudgetExceeded(
            f"This workspace has used its daily token budget ({int(detail[0]):,} of {int(detail[1]):,} tokens). "
            f"It resets at midnight {policy.time_zone} ({next_day:%Y-%m-%d %H:%M %Z})."
        )
    if code == "month":
        return BudgetExceeded(
            f"This workspace has used its monthly token budget ({int(detail[0]):,} of {int(detail[1]):,} tokens). "
            "It resets on the first day of next month."
        )
    if code == "spend":
        used = Decimal(detail[0]) / COST_UNITS_PER_USD
        cap = Decimal(detail[1]) / COST_UNITS_PER_USD
        return BudgetExceeded(
            f"This workspace has reached its monthly spending cap (${used:.2f} of ${cap:.2f}). "
            "It resets on the first day of next month."
        )
    if code == "key_rpm":
        return RateLimited(
            f"This API key is sending too many requests (limit {detail[0]} per minute). Try again shortly."
        )
    if code == "key_day":
        return BudgetExceeded(
            f"This API key has used its daily token budget ({int(detail[0]):,} of {int(detail[1]):,} tokens). "
            f"It resets at midnight {policy.time_zone}."
        )
    if code == "user_day":
        return BudgetExceeded(
            f"You have used your daily token allowance ({int(detail[0]):,} of {int(detail[1]):,} tokens). "
            f"It resets at midnight {policy.time_zone}."
        )
    return RuntimeError(f"unexpected reservation answer {code!r}")


def _optional(limit: int | None) -> str:
    return "" if limit is None else str(limit)


def reserve(
    *,
    tenant_schema: str,
    request_id: uuid.UUID,
    user_id: int | None,
    model: str,
    prompt_tokens: int,
    max_tokens: int,
    now: dt.datetime | None = None,
    policy: PolicySnapshot | None = None,
    api_key: KeyLimits | None = None,
) -> Reservation:
    """Check allow-list, kill switch and rate limits, then atomically reserve the worst case.
    Raises ModelNotAllowed, KillSwitchOn, RateLimited or BudgetExceeded.
    api_key: the limits of the API key the call is made with, checked in the same script.

    The worst case is prompt_tokens + max_tokens, priced at the dearest model of the model's fallback
    chain (a fallback may answer). Reserving twice for one request id reserves once."""
    policy = policy or load_policy(tenant_schema)
    check_model_allowed(policy, model)
    # The kill switch and the limits are checked by the reserve script, on Redis's current copy.
    tokens = prompt_tokens + max_tokens
    worst_cost = Decimal(0)
    for alias in policy.chain_for(model):
        try:
            worst_cost = max(worst_cost, get_model_route(alias).cost(prompt_tokens, max_tokens))
        except UnknownModelError as unpriced:
            if alias == model:
                raise ModelNotAllowed(str(unpriced)) from unpriced
    units = cost_units(worst_cost)

    moment = now or timezone.now()
    local_now = tenant_now(policy.time_zone, moment)
    day, month = _period_labels(local_now)
    epoch = moment.timestamp()
    minute = int(epoch // 60)
    previous_minute_weight = 1.0 - (epoch % 60) / 60.0
    expires_at = epoch + settings.GATEWAY_LEASE_SECONDS
    prefix = store.tenant_prefix(tenant_schema)
    calendar = _Keys(prefix, day, month, "", minute)
    counter_keys = calendar.counters(user_id)
    key_counters = calendar.key_counters(api_key)
    keys = [
        f"{prefix}:policy",
        *counter_keys,
        f"{prefix}:res:{request_id}",
        f"{prefix}:res:exp",
        *key_counters,
    ]
    args = [
        tokens,
        units,
        f"{epoch:.3f}",
        f"{previous_minute_weight:.4f}",
        f"{expires_at:.3f}",
        "1" if user_id is not None else "0",
        DAY_COUNTER_TTL,
        MONTH_COUNTER_TTL,
        str(request_id),
        f"{prefix}:res:",
        model,
        "" if user_id is None else str(user_id),
        "1" if api_key is not None else "0",
        _optional(api_key.daily_tokens if api_key is not None else None),
        _optional(api_key.requests_per_minute if api_key is not None else None),
    ]
    for _attempt in range(3):
        answer = [store.decode(part) for part in store.run(store.RESERVE_SCRIPT, keys, args)]
        code = answer[0]
        if code == "ok":
            return Reservation(
                tenant_schema, request_id, user_id, model, tokens, worst_cost, day, month, expires_at
            )
        if code == "nopolicy":
            policy = publish_policy(tenant_schema, only_if_absent=True)
            continue
        if code == "init":
            _initialise_counters(
                tenant_schema, counter_keys, user_id, local_now, api_key=api_key, key_day=key_counters[0]
            )
            continue
        raise _refusal(code, answer[1:], policy, local_now)
    raise RuntimeError("The budget counters could not be initialised.")


def _settle_keys(reservation: Reservation) -> list[str]:
    prefix = store.tenant_prefix(reservation.tenant_schema)
    user_day = (
        f"{prefix}:utok:d:{reservation.day}:{reservation.user_id}" if reservation.user_id is not None else ""
    )
    return [
        f"{prefix}:res:{reservation.request_id}",
        f"{prefix}:res:exp",
        f"{prefix}:tok:d:{reservation.day}",
        f"{prefix}:tok:m:{reservation.month}",
        f"{prefix}:cost:m:{reservation.month}",
        user_day or f"{prefix}:none",
    ]


def settle(reservation: Reservation, *, tokens_in: int, tokens_out: int, cost: Decimal) -> None:
    """Replace the reserved worst case with the actual usage."""
    store.run(
        store.SETTLE_SCRIPT,
        _settle_keys(reservation),
        [str(reservation.request_id), tokens_in + tokens_out, cost_units(cost)],
    )


def release(reservation: Reservation) -> None:
    """Give the reservation back after a failed call."""
    release_request(reservation.tenant_schema, reservation.request_id)


def release_request(tenant_schema: str, request_id: uuid.UUID) -> bool:
    """Release whatever reservation is open for this request id (idempotent). True if there was one."""
    prefix = store.tenant_prefix(tenant_schema)
    released = store.run(
        store.RELEASE_SCRIPT, [f"{prefix}:res:{request_id}", f"{prefix}:res:exp"], [str(request_id)]
    )
    return bool(released)


def sweep_expired_reservations(tenant_schema: str, now: float | None = None) -> int:
    """Release reservations whose owner did not settle them before their expiry (e.g. a SIGKILLed
    worker). The reserve script does this too on every call; this is for operators and idle tenants."""
    prefix = store.tenant_prefix(tenant_schema)
    released = store.run(
        store.SWEEP_SCRIPT, [f"{prefix}:res:exp"], [f"{now or time.time():.3f}", f"{prefix}:res:"]
    )
    return int(released)


def open_reservations(tenant_schema: str) -> list[str]:
    prefix = store.tenant_prefix(tenant_schema)
    return [store.decode(rid) for rid in store.client().zrange(f"{prefix}:res:exp", 0, -1)]


@dataclass(frozen=True)
class Usage:
    day: str
    month: str
    day_tokens: int
    month_tokens: int
    month_cost: Decimal
    requests_this_minute: int
    open_reservations: int


def usage_snapshot(tenant_schema: str, now: dt.datetime | None = None) -> Usage:
    """Usage as the reservation scripts see it (reserved in-flight calls included), live to the second."""
    policy = load_policy(tenant_schema)
    moment = now or timezone.now()
    day, month = _period_labels(tenant_now(policy.time_zone, moment))
    prefix = store.tenant_prefix(tenant_schema)
    minute = int(moment.timestamp() // 60)
    day_tokens, month_tokens, month_cost, rpm = store.client().mget(
        [
            f"{prefix}:tok:d:{day}",
            f"{prefix}:tok:m:{month}",
            f"{prefix}:cost:m:{month}",
            f"{prefix}:rpm:{minute}",
        ]
    )
    return Usage(
        day=day,
        month=month,
        day_tokens=int(day_tokens or 0),
        month_tokens=int(month_tokens or 0),
        month_cost=Decimal(int(month_cost or 0)) / COST_UNITS_PER_USD,
        requests_this_minute=int(rpm or 0),
        open_reservations=int(store.client().zcard(f"{prefix}:res:exp")),
    )
