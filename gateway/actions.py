"""Changes to a tenant's gateway configuration. The console, the management commands and tests call
these; each validates, changes the tenant's GatewayPolicy row, writes an audit event in the same
transaction, and after commit publishes the new policy to Redis, where every worker reads it."""

import json
import zoneinfo
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from audit.actions import do_record_audit_event
from gateway.config import UnknownModelError, UnpricedModelError, get_model_route
from gateway.models import GatewayPolicy
from tenants.context import current_schema, in_tenant_schema
from tenants.models import Tenant


class PolicyError(ValueError):
    """A configuration the gateway refuses; the message says why and is shown to the admin."""


def default_policy_values() -> dict[str, Any]:
    defaults = dict(settings.GATEWAY_DEFAULT_POLICY)
    model = settings.GATEWAY_DEFAULT_MODEL
    return {"allowed_models": [model], "default_model": model, "fallbacks": {}, **defaults}


def _require_tenant() -> str:
    if not in_tenant_schema():
        raise RuntimeError("Gateway policy belongs to a tenant; no tenant schema is active.")
    return current_schema()


def access_gateway_policy() -> GatewayPolicy:
    """The current tenant's policy, created with the platform's defaults on first use."""
    _require_tenant()
    policy = GatewayPolicy.objects.filter(singleton=True).first()
    if policy is None:
        policy = do_create_default_policy()
    return policy


def do_create_default_policy(*, actor: Any = None, actor_label: str = "system") -> GatewayPolicy:
    """Give the tenant the platform's default gateway policy (idempotent)."""
    _require_tenant()
    with transaction.atomic():
        policy, created = GatewayPolicy.objects.get_or_create(
            singleton=True, defaults=default_policy_values()
        )
        if created:
            _validate_models(policy.allowed_models, policy.default_model, policy.fallbacks)
            do_record_audit_event(
                kind="gateway.policy_created",
                actor=actor,
                actor_label=actor_label,
                details=_describe(policy),
            )
            _publish_on_commit()
    return policy


def _describe(policy: GatewayPolicy) -> dict[str, Any]:
    return {
        "version": policy.version,
        "allowed_models": policy.allowed_models,
        "default_model": policy.default_model,
        "fallbacks": policy.fallbacks,
        "daily_token_budget": policy.daily_token_budget,
        "monthly_token_budget": policy.monthly_token_budget,
        "monthly_spend_cap": str(policy.monthly_spend_cap),
        "user_daily_token_cap": policy.user_daily_token_cap,
        "requests_per_minute": policy.requests_per_minute,
        "tokens_per_minute": policy.tokens_per_minute,
        "user_requests_per_minute": policy.user_requests_per_minute,
        "user_tokens_per_minute": policy.user_tokens_per_minute,
        "kill_switch": policy.kill_switch,
        "budget_alert_percent": policy.budget_alert_percent,
    }


def _publish_on_commit() -> None:
    from gateway.policy import publish_policy

    schema = current_schema()
    transaction.on_commit(lambda: publish_policy(schema))


def _locked_policy() -> GatewayPolicy:
    access_gateway_policy()
    return GatewayPolicy.objects.select_for_update().get(singleton=True)


def _save(
    policy: GatewayPolicy,
    changed: dict[str, Any],
    *,
    kind: str,
    actor: Any,
    actor_label: str,
    extra: dict[str, Any] | None = None,
) -> GatewayPolicy:
    before = _describe(policy)
    for name, value in changed.items():
        setattr(policy, name, value)
    policy.version += 1
    policy.save(update_fields=[*changed, "version", "updated_at"])
    after = _describe(policy)
    do_record_audit_event(
        kind=kind,
        actor=actor,
        actor_label=actor_label,
        details={
            "changes": {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]},
            "version": policy.version,
            **(extra or {}),
        },
    )
    _publish_on_commit()
    return policy


def _check_priced(alias: str) -> None:
    try:
        get_model_route(alias)
    except UnpricedModelError:
        raise PolicyError(
            f"The model {alias!r} has no price, so its use could not be counted against budgets. "
            "Ask the platform team to add a price to the catalogue first."
        ) from None
    except UnknownModelError:
        raise PolicyError(f"The model {alias!r} is not in the platform's model catalogue.") from None


def _validate_models(allowed: list[str], default_model: str, fallbacks: dict[str, list[str]]) -> None:
    if not allowed:
        raise PolicyError("Allow at least one model (use the kill switch to stop all calls).")
    if len(set(allowed)) != len(allowed):
        raise PolicyError("The allow-list names a model twice.")
    for alias in allowed:
        _check_priced(alias)
    if default_model not in allowed:
        raise PolicyError(f"The default model {default_model!r} must be on the allow-list.")
    for model, chain in fallbacks.items():
        if model not in allowed:
            raise PolicyError(f"Fallbacks are set for {model!r}, which is not on the allow-list.")
        for fallback in chain:
            if fallback not in allowed:
                raise PolicyError(f"The fallback {fallback!r} for {model!r} is not on the allow-list.")
            if fallback == model:
                raise PolicyError(f"{model!r} cannot be its own fallback.")
        if len(set(chain)) != len(chain):
            raise PolicyError(f"The fallbacks for {model!r} name a model twice.")


@transaction.atomic
def do_set_model_allow_list(
    *,
    allowed_models: list[str],
    default_model: str | None = None,
    fallbacks: dict[str, list[str]] | None = None,
    actor: Any = None,
    actor_label: str = "",
) -> GatewayPolicy:
    """Set which catalogue models the tenant may use (only priced ones), its default, and fallbacks.
    Fallbacks of models leaving the allow-list are dropped."""
    policy = _locked_policy()
    default = default_model or policy.default_model
    if fallbacks is None:
        fallbacks = {
            model: [f for f in chain if f in allowed_models]
            for model, chain in policy.fallbacks.items()
            if model in allowed_models
        }
    fallbacks = {model: list(chain) for model, chain in fallbacks.items() if chain}
    _validate_models(list(allowed_models), default, fallbacks)
    return _save(
        policy,
        {"allowed_models": list(allowed_models), "default_model": default, "fallbacks": fallbacks},
        kind="gateway.models_changed",
        actor=actor,
        actor_label=actor_label,
    )


@transaction.atomic
def do_set_model_fallbacks(
    *, model: str, fallbacks: list[str], actor: Any = None, actor_label: str = ""
) -> GatewayPolicy:
    """Set the ordered fallbacks of one allowed model (an empty list removes them)."""
    policy = _locked_policy()
    chains = {**policy.fallbacks, model: list(fallbacks)}
    chains = {m: c for m, c in chains.items() if c}
    _validate_models(policy.allowed_models, policy.default_model, chains)
    return _save(
        policy, {"fallbacks": chains}, kind="gateway.fallbacks_changed", actor=actor, actor_label=actor_label
    )


UNCHANGED: Any = object()


def _non_negative(name: str, value: Any, *, optional: bool) -> Any:
    if value is None:
        if not optional:
            raise PolicyError(f"{name} is required.")
        return None
    number = Decimal(str(value))
    if number < 0:
        raise PolicyError(f"{name} cannot be negative.")
    return number


@transaction.atomic
def do_set_budget(
    *,
    daily_tokens: Any = UNCHANGED,
    monthly_tokens: Any = UNCHANGED,
    monthly_spend_cap: Any = UNCHANGED,
    user_daily_tokens: Any = UNCHANGED,
    alert_percent: Any = UNCHANGED,
    actor: Any = None,
    actor_label: str = "",
) -> GatewayPolicy:
    """Change the tenant's budgets. user_daily_tokens=None removes the per-user cap; alert_percent (1-100)
    is the share of a budget at which admins are warned, None for no alerts."""
    policy = _locked_policy()
    changed: dict[str, Any] = {}
    if daily_tokens is not UNCHANGED:
        changed["daily_token_budget"] = int(
            _non_negative("The daily token budget", daily_tokens, optional=False)
        )
    if monthly_tokens is not UNCHANGED:
        changed["monthly_token_budget"] = int(
            _non_negative("The monthly token budget", monthly_tokens, optional=False)
        )
    if monthly_spend_cap is not UNCHANGED:
        cap = _non_negative("The monthly spending cap", monthly_spend_cap, optional=False)
        changed["monthly_spend_cap"] = cap.quantize(Decimal("0.01"))
    if user_daily_tokens is not UNCHANGED:
        value = _non_negative("The per-user daily token cap", user_daily_tokens, optional=True)
        changed["user_daily_token_cap"] = None if value is None else int(value)
    if alert_percent is not UNCHANGED:
        percent = _non_negative("The alert threshold", alert_percent, optional=True)
        if percent is not None and not 1 <= percent <= 100:
            raise PolicyError("The alert threshold is a percentage between 1 and 100.")
        changed["budget_alert_percent"] = None if percent is None else int(percent)
    if not changed:
        raise PolicyError("Nothing to change: give at least one budget.")
    return _save(policy, changed, kind="gateway.budget_changed", actor=actor, actor_label=actor_label)


@transaction.atomic
def do_set_rate_limits(
    *,
    requests_per_minute: Any = UNCHANGED,
    tokens_per_minute: Any = UNCHANGED,
    user_requests_per_minute: Any = UNCHANGED,
    user_tokens_per_minute: Any = UNCHANGED,
    actor: Any = None,
    actor_label: str = "",
) -> GatewayPolicy:
    """Change the tenant's rate limits; the per-user ones accept None (no per-user limit)."""
    policy = _locked_policy()
    changed: dict[str, Any] = {}
    for field, value, optional, label in (
        ("requests_per_minute", requests_per_minute, False, "Requests per minute"),
        ("tokens_per_minute", tokens_per_minute, False, "Tokens per minute"),
        ("user_requests_per_minute", user_requests_per_minute, True, "Requests per minute per user"),
        ("user_tokens_per_minute", user_tokens_per_minute, True, "Tokens per minute per user"),
    ):
        if value is not UNCHANGED:
            number = _non_negative(label, value, optional=optional)
            changed[field] = None if number is None else int(number)
    if not changed:
        raise PolicyError("Nothing to change: give at least one rate limit.")
    return _save(policy, changed, kind="gateway.rate_limits_changed", actor=actor, actor_label=actor_label)


@transaction.atomic
def do_set_kill_switch(
    *, on: bool, reason: str = "", actor: Any = None, actor_label: str = ""
) -> GatewayPolicy:
    """Stop (or resume) every model call of the tenant. Takes effect for every worker when the
    transaction commits: the flag is read from Redis on each call and between stream chunks."""
    policy = _locked_policy()
    if on and not reason.strip():
        reason = "Switched off by an administrator."
    return _save(
        policy,
        {"kill_switch": on, "kill_switch_reason": reason.strip()[:500] if on else ""},
        kind="gateway.kill_switch_on" if on else "gateway.kill_switch_off",
        actor=actor,
        actor_label=actor_label,
        extra={"reason": reason.strip()[:500]} if on else None,
    )


@transaction.atomic
def do_set_time_zone(*, time_zone: str, actor: Any = None, actor_label: str = "") -> GatewayPolicy:
    """The time zone in which the tenant's daily and monthly budgets reset."""
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"{time_zone!r} is not a known time zone (use a name like Europe/Paris).") from None
    schema = _require_tenant()
    policy = _locked_policy()
    tenant = Tenant.objects.select_for_update().get(schema_name=schema)
    previous = tenant.time_zone
    tenant.time_zone = time_zone
    tenant.save(update_fields=["time_zone"])
    policy.version += 1
    policy.save(update_fields=["version", "updated_at"])
    do_record_audit_event(
        kind="gateway.time_zone_changed",
        actor=actor,
        actor_label=actor_label,
        details={"changes": {"time_zone": {"from": previous, "to": time_zone}}, "version": policy.version},
    )
    _publish_on_commit()
    return policy


def policy_fields(tenant_schema: str) -> dict[str, str]:
    """The policy as published to Redis: flat strings the reserve script reads ('' = no limit)."""
    from gateway.policy import cost_units

    policy = access_gateway_policy()
    time_zone = Tenant.objects.filter(schema_name=tenant_schema).values_list("time_zone", flat=True).first()

    def optional(value: int | None) -> str:
        return "" if value is None else str(value)

    return {
        "version": str(policy.version),
        "kill": "1" if policy.kill_switch else "0",
        "kill_reason": policy.kill_switch_reason,
        "allowed": json.dumps(policy.allowed_models),
        "default_model": policy.default_model,
        "fallbacks": json.dumps(policy.fallbacks),
        "tz": time_zone or "UTC",
        "day_tokens": str(policy.daily_token_budget),
        "month_tokens": str(policy.monthly_token_budget),
        "month_spend": str(cost_units(Decimal(policy.monthly_spend_cap))),
        "user_day_tokens": optional(policy.user_daily_token_cap),
        "rpm": str(policy.requests_per_minute),
        "tpm": str(policy.tokens_per_minute),
        "user_rpm": optional(policy.user_requests_per_minute),
        "user_tpm": optional(policy.user_tokens_per_minute),
    }
