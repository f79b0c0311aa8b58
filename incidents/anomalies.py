"""Tenant compromise: per-tenant anomaly thresholds against the tenant's own recent baseline, checked on every
model call (gateway.hooks.on_call, registered in incidents.apps).

Rules (incidents.tenant.models.WatchSettings; defaults work untuned, tenant admins edit them in the console):
- spend: tokens per minute (prompt + the most the answer may use, as the gateway reserves them; sliding
  minute) above `multiplier` x the tenant's usual busy minute (95th percentile of its active minutes over the
  last 7 days). A tenant with less than 3 days of history is compared with a quarter of its own tokens-per-
  minute limit instead. Never below `min tokens per minute`;
- new key: an API key created less than N hours ago making more than M calls in a minute;
- unusual hour: a call at an hour of the day (tenant's time zone) with no call in the last 14 days (only once
  the tenant has 7 days of history);
- new model: a model the tenant has not called in the last 30 days (once it has a day of history);
- refusals: more than N calls refused by the policy in a minute (rate limits, budgets, models not allowed).

Cost per call: one pipelined Redis round trip (counters), plus, at most once a minute per process, reading the
tenant's thresholds and baseline (the baseline is computed from the records at most every 10 minutes per
tenant, shared through Redis). Measured in bench/incidents/.

A trip opens (or joins) the tenant's compromise incident, visible to its admins and to the platform, and
writes `security.anomaly_detected` into its audit chain. A rule set to "contain" also switches the tenant's
kill switch on and sends its admins a notice (e-mail + console banner); the admins then revoke keys and
sessions, rotate keys and switch the assistant back on (docs/playbooks/tenant-compromise.md).
"""

import datetime as dt
import json
import logging
import time
import zoneinfo
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Min, Sum
from django.db.models.functions import ExtractHour, TruncMinute
from django.utils import timezone

from audit.actions import do_record_audit_event
from gateway import store
from gateway.actions import access_gateway_policy, do_set_kill_switch
from gateway.api.models import KEY_SOURCE_PREFIX, ApiKey
from gateway.errors import CrossTenantBlocked, KillSwitchOn
from gateway.hooks import CallObserved
from gateway.models import ModelCall
from gateway.policy import check_kill_switch
from incidents.actions import do_open_incident, do_record_containment
from incidents.models import Incident, IncidentTenant
from incidents.notices import auto_notice
from incidents.tenant.models import Action, WatchSettings
from tenants.context import current_schema, in_tenant_schema
from tenants.models import Tenant

logger = logging.getLogger(__name__)

DETECTOR = "anomaly watch"
BASELINE_SECONDS = 600
SETTINGS_CACHE_SECONDS = 5.0
TRIP_QUIET_SECONDS = 600  # a rule trips at most once per this long per tenant (and key, hour or model)
LEARNING_DAYS = 3
LEARNING_SHARE_OF_TPM = 0.25
HOURS_HISTORY_DAYS = 7
# Refusals that are the containment itself, or the screen's: not a sign of abuse by the caller.
NOT_COUNTED_REFUSALS = {KillSwitchOn.code, CrossTenantBlocked.code}

RULE_LABELS = {
    "spend": "tokens per minute far above the usual",
    "new_key": "a new API key calling at volume",
    "hours": "calls at an hour never used before",
    "new_model": "a model never used before",
    "refused": "many refused calls",
}


class WatchSettingsError(ValueError):
    """A threshold that cannot be saved; the message is shown next to the field."""


# --- settings ------------------------------------------------------------------------------------------


def access_watch_settings() -> WatchSettings:
    found = WatchSettings.objects.filter(singleton=True).first()
    if found is not None:
        return found
    with transaction.atomic():
        WatchSettings.objects.get_or_create(singleton=True)
    return WatchSettings.objects.get(singleton=True)


EDITABLE_FIELDS = [
    f.name for f in WatchSettings._meta.concrete_fields if f.name not in ("id", "singleton", "updated_at")
]
POSITIVE_FIELDS = {
    "spend_multiplier": (2, 1000),
    "spend_min_tokens_per_minute": (1, 10**9),
    "new_key_hours": (1, 24 * 30),
    "new_key_calls_per_minute": (1, 10**6),
    "refused_per_minute": (1, 10**6),
}


@transaction.atomic
def do_set_watch_settings(
    values: dict[str, Any], *, actor: Any = None, actor_label: str = ""
) -> WatchSettings:
    """Change the tenant's thresholds (and the outage e-mail choice); audited with before/after values."""
    current = WatchSettings.objects.select_for_update().get(pk=access_watch_settings().pk)
    changes: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        if name not in EDITABLE_FIELDS:
            raise WatchSettingsError(f"Unknown setting {name!r}.")
        if name in POSITIVE_FIELDS:
            low, high = POSITIVE_FIELDS[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise WatchSettingsError(f"{name}: enter a whole number from {low} to {high}.")
        elif name.endswith("_action"):
            if value not in Action.values:
                raise WatchSettingsError(f"{name}: choose alert or contain.")
        elif not isinstance(value, bool):
            raise WatchSettingsError(f"{name}: on or off.")
        before = getattr(current, name)
        if before != value:
            changes[name] = {"from": before, "to": value}
            setattr(current, name, value)
    if changes:
        current.save()
        do_record_audit_event(
            kind="incidents.watch_settings_changed",
            actor=actor,
            actor_label=actor_label,
            details={"changes": changes},
        )
        _settings_cache.pop(current_schema(), None)
    return current


_settings_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def _settings(schema: str) -> dict[str, Any]:
    cached = _settings_cache.get(schema)
    if cached and time.monotonic() - cached[0] < SETTINGS_CACHE_SECONDS:
        return cached[1]
    row = access_watch_settings()
    values = {name: getattr(row, name) for name in EDITABLE_FIELDS}
    _settings_cache[schema] = (time.monotonic(), values)
    return values


# --- baseline ------------------------------------------------------------------------------------------


@dataclass
class Baseline:
    busy_minute_tokens: int = 0  # 95th percentile of the tokens of the tenant's active minutes, last 7 days
    history_days: float = 0.0
    hours: list[int] = field(default_factory=list)  # hours of the day (tenant time zone) used, last 14 days
    models: list[str] = field(default_factory=list)  # models called in the last 30 days
    tpm_limit: int = 0
    time_zone: str = "UTC"
    computed_at: float = 0.0


def compute_baseline(now: dt.datetime | None = None) -> Baseline:
    """From the current tenant's model-call records (the source of truth, as for the budget counters)."""
    now = now or timezone.now()
    counted = ModelCall.objects.exclude(status__in=[ModelCall.Status.REFUSED, ModelCall.Status.STARTED])
    per_minute = list(
        counted.filter(created_at__gte=now - dt.timedelta(days=7))
        .annotate(minute=TruncMinute("created_at"))
        .values("minute")
        .annotate(tokens=Sum(F("tokens_in") + F("max_tokens")))
        .values_list("tokens", flat=True)
    )
    busy = sorted(int(t or 0) for t in per_minute)
    p95 = busy[min(len(busy) - 1, int(len(busy) * 0.95))] if busy else 0
    first = counted.aggregate(first=Min("created_at"))["first"]
    tenant = Tenant.objects.get(schema_name=current_schema())
    zone = zoneinfo.ZoneInfo(tenant.time_zone)
    hours = sorted(
        counted.filter(created_at__gte=now - dt.timedelta(days=14))
        .annotate(hour=ExtractHour("created_at", tzinfo=zone))
        .values_list("hour", flat=True)
        .distinct()
        .order_by()
    )
    models = sorted(
        ModelCall.objects.filter(created_at__gte=now - dt.timedelta(days=30))
        .values_list("model_requested", flat=True)
        .distinct()
        .order_by()
    )
    return Baseline(
        busy_minute_tokens=p95,
        history_days=(now - first).total_seconds() / 86400 if first else 0.0,
        hours=hours,
        models=models,
        tpm_limit=int(access_gateway_policy().tokens_per_minute),
        time_zone=tenant.time_zone,
        computed_at=time.time(),
    )


def _key(schema: str, suffix: str) -> str:
    return f"inc:{{{store.namespace()}:{schema}}}:{suffix}"


_baselines: dict[str, tuple[float, Baseline]] = {}


def baseline_for(schema: str) -> Baseline:
    """This process's copy for up to a minute; Redis' for up to BASELINE_SECONDS; else computed and shared."""
    cached = _baselines.get(schema)
    if cached and time.monotonic() - cached[0] < 60:
        return cached[1]
    raw = store.client().get(_key(schema, "baseline"))
    baseline = Baseline(**json.loads(raw)) if raw else None
    if baseline is None:
        baseline = compute_baseline()
        store.client().set(_key(schema, "baseline"), json.dumps(asdict(baseline)), ex=BASELINE_SECONDS)
    _baselines[schema] = (time.monotonic(), baseline)
    return baseline


def forget_baseline(schema: str) -> None:
    _baselines.pop(schema, None)
    store.client().delete(_key(schema, "baseline"))


def spend_threshold(settings_values: dict[str, Any], baseline: Baseline) -> int:
    if baseline.history_days >= LEARNING_DAYS and baseline.busy_minute_tokens:
        threshold = settings_values["spend_multiplier"] * baseline.busy_minute_tokens
    else:
        threshold = int(baseline.tpm_limit * LEARNING_SHARE_OF_TPM)
    return max(threshold, settings_values["spend_min_tokens_per_minute"])


# --- the per-call check --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trip:
    rule: str
    action: str
    facts: dict[str, Any]
    discriminator: str = ""  # one trip per (rule, discriminator) per quiet period: a key, an hour, a model


_key_created: dict[tuple[str, str], tuple[float, float]] = {}


def _key_age_hours(schema: str, source: str) -> float | None:
    cached = _key_created.get((schema, source))
    if cached and time.monotonic() - cached[0] < 300:
        created = cached[1]
    else:
        found = (
            ApiKey.objects.filter(prefix=source.removeprefix(KEY_SOURCE_PREFIX))
            .values_list("created_at", flat=True)
            .first()
        )
        if found is None:
            return None
        created = found.timestamp()
        _key_created[(schema, source)] = (time.monotonic(), created)
    return (time.time() - created) / 3600


def observe_call(observation: CallObserved) -> None:
    """The gateway's call listener: count, compare, trip."""
    schema = observation.tenant_schema
    if not in_tenant_schema() or current_schema() != schema:
        return
    values = _settings(schema)
    now = time.time()
    minute, weight = int(now // 60), 1 - (now % 60) / 60
    is_key = observation.source.startswith(KEY_SOURCE_PREFIX)
    counted_refusal = bool(observation.refused_code) and observation.refused_code not in NOT_COUNTED_REFUSALS
    pipe = store.client().pipeline(transaction=False)
    for name, amount in (("tok", observation.tokens), ("ref", int(counted_refusal))):
        pipe.incrby(_key(schema, f"{name}:{minute}"), amount)
        pipe.expire(_key(schema, f"{name}:{minute}"), 180)
        pipe.get(_key(schema, f"{name}:{minute - 1}"))
    if is_key:
        pipe.incr(_key(schema, f"key:{observation.source}:{minute}"))
        pipe.expire(_key(schema, f"key:{observation.source}:{minute}"), 180)
    results = pipe.execute()
    tokens = results[0] + int(int(results[2] or 0) * weight)
    refused = results[3] + int(int(results[5] or 0) * weight)
    key_calls = int(results[6]) if is_key else 0

    baseline = baseline_for(schema)
    trips: list[Trip] = []
    if values["spend_enabled"] and observation.tokens:
        threshold = spend_threshold(values, baseline)
        if tokens > threshold:
            trips.append(
                Trip(
                    "spend",
                    values["spend_action"],
                    {
                        "tokens_per_minute": tokens,
                        "threshold": threshold,
                        "baseline_busy_minute": baseline.busy_minute_tokens,
                        "history_days": round(baseline.history_days, 1),
                        "source": observation.source,
                    },
                )  # fmt: skip
            )
    if values["new_key_enabled"] and is_key and key_calls > values["new_key_calls_per_minute"]:
        age = _key_age_hours(schema, observation.source)
        if age is not None and age < values["new_key_hours"]:
            trips.append(
                Trip(
                    "new_key",
                    values["new_key_action"],
                    {
                        "key": observation.source,
                        "calls_this_minute": key_calls,
                        "key_age_hours": round(age, 1),
                    },
                    observation.source,
                )  # fmt: skip
            )
    if values["refused_enabled"] and refused > values["refused_per_minute"]:
        trips.append(
            Trip(
                "refused",
                values["refused_action"],
                {
                    "refused_per_minute": refused,
                    "threshold": values["refused_per_minute"],
                    "last_code": observation.refused_code,
                },
            )  # fmt: skip
        )
    if not observation.refused_code:
        hour = dt.datetime.fromtimestamp(now, zoneinfo.ZoneInfo(baseline.time_zone)).hour
        if (
            values["hours_enabled"]
            and baseline.history_days >= HOURS_HISTORY_DAYS
            and hour not in baseline.hours
        ):
            trips.append(
                Trip("hours", values["hours_action"], {"hour": hour, "source": observation.source}, str(hour))
            )
        if (
            values["new_model_enabled"]
            and baseline.history_days >= 1
            and observation.model not in baseline.models
        ):
            trips.append(
                Trip(
                    "new_model",
                    values["new_model_action"],
                    {"model": observation.model, "source": observation.source},
                    observation.model,
                )  # fmt: skip
            )
    for trip in trips:
        if trip.action == Action.CONTAIN:
            # Contain again whenever the switch is off (an admin restored service and it happens again); the
            # short marker only keeps concurrent calls from containing twice.
            marker = _key(schema, f"containing:{trip.rule}")
            if _kill_switch_on(schema) or not store.client().set(marker, "1", nx=True, ex=5):
                continue
        elif not store.client().set(
            _key(schema, f"tripped:{trip.rule}:{trip.discriminator}"), "1", nx=True, ex=TRIP_QUIET_SECONDS
        ):
            continue
        do_trip(schema, trip)


def _kill_switch_on(schema: str) -> bool:
    try:
        check_kill_switch(schema)
    except KillSwitchOn:
        return True
    return False


def do_trip(schema: str, trip: Trip) -> Incident:
    """Contain first when the rule says so (every call in flight elsewhere meets the switch at once), then open
    (or join) the tenant's compromise incident, audit the trip and tell the admins."""
    contain = trip.action == Action.CONTAIN and not access_gateway_policy().kill_switch
    label = RULE_LABELS[trip.rule]
    if contain:
        do_set_kill_switch(
            on=True,
            reason=(
                f"Switched off automatically: unusual activity ({label}). "
                "An administrator must review it and switch the assistant back on."
            ),
            actor_label=f"{DETECTOR} (rule {trip.rule})",
        )
        # The minute counted so far is the incident's: service restored later starts from a clean window.
        minute = int(time.time() // 60)
        store.client().delete(*[_key(schema, f"tok:{m}") for m in (minute, minute - 1)])
    incident = do_open_incident(
        kind=Incident.Kind.TENANT_COMPROMISE,
        severity=Incident.Severity.HIGH if trip.action == Action.CONTAIN else Incident.Severity.MEDIUM,
        title=f"Unusual activity in {schema}: {label}",
        summary=f"Anomaly rule '{trip.rule}' ({label}) tripped for {schema}: {_facts_text(trip.facts)}.",
        detected_by=f"{DETECTOR}, rule {trip.rule}",
        tenants=[(schema, IncidentTenant.Role.COMPROMISED)],
        details={"rule": trip.rule, "action": trip.action, **trip.facts},
        dedupe_key=f"compromise:{schema}",
    )
    do_record_audit_event(
        kind="security.anomaly_detected",
        actor_label=DETECTOR,
        details={"incident": incident.reference, "rule": trip.rule, "action": trip.action, **trip.facts},
    )
    logger.warning(
        "anomaly tripped tenant=%s rule=%s action=%s %s", schema, trip.rule, trip.action, incident.reference
    )
    if contain:
        do_record_containment(
            incident,
            actor_label=f"{DETECTOR} ({incident.reference})",
            message=f"{schema}: kill switch on (rule {trip.rule}).",
            details={"mode": "model_calls", "tenants": [schema], "rule": trip.rule},
        )
        _notify_admins(incident, schema)
    return incident


def _facts_text(facts: dict[str, Any]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in facts.items())


def _notify_admins(incident: Incident, schema: str) -> None:
    """The automatic notice of a containment (the platform may send a fuller one later)."""
    if connection.in_atomic_block:
        transaction.on_commit(lambda: auto_notice(incident, schema))
    else:
        auto_notice(incident, schema)
