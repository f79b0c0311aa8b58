"""Test helpers for the gateway's shared state in Redis (only ever touches this database's namespace)."""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import DecimalField

from catalogue.models import CatalogueEntry
from gateway import breaker, store
from gateway.actions import access_gateway_policy, default_policy_values
from gateway.catalogue import do_seed_catalogue
from gateway.config import announce_catalogue_change
from gateway.models import GatewayPolicy
from gateway.policy import publish_policy
from tenants.models import Tenant


def reset_circuit_breakers() -> None:
    for alias in {*CatalogueEntry.objects.values_list("alias", flat=True), *settings.GATEWAY_MODELS}:
        breaker.reset(alias)


def seed_simulated_catalogue(simulator_base: str) -> None:
    """The catalogue of settings.GATEWAY_MODELS (test settings: the simulator's models), its simulator
    entries pointed at this simulator; committed, and announced to every process."""
    do_seed_catalogue(acting_label="tests")
    CatalogueEntry.objects.filter(provider__startswith="simulator").update(api_base=simulator_base)
    announce_catalogue_change()


def forget_gateway_state() -> None:
    """Delete every gateway key of this database's namespace (tests start from a fresh database)."""
    client = store.client()
    pattern = f"gw:{{{store.namespace()}*"
    keys = list(client.scan_iter(match=pattern, count=1000))
    if keys:
        client.delete(*keys)


def shared_tenant_policy() -> dict[str, Any]:
    """The gateway policy of the session tenants (acme, globex) shared by many tests: the platform defaults,
    the test catalogue's chat, embedding and local models allowed, and request rates no test sequence
    reaches (limit tests use a fresh tenant of their own)."""
    return {
        **default_policy_values(),
        "allowed_models": ["sim-model", "sim-embedding", "smollm2"],
        "default_model": settings.GATEWAY_DEFAULT_MODEL,
        "fallbacks": {},
        "requests_per_minute": 10_000,
        "kill_switch": False,
        "kill_switch_reason": "",
    }


def restore_shared_tenant_policy(tenant_schema: str) -> bool:
    """Put the tenant's gateway policy (row, Redis copy, time zone) and the circuit breakers back to
    shared_tenant_policy(), if a test changed them. Runs inside the tenant's schema, outside any
    transaction. True if something had to be restored."""
    reset_circuit_breakers()
    policy = access_gateway_policy()
    wanted = shared_tenant_policy()
    changed = {
        name: value
        for name, value in wanted.items()
        if _normalised(policy, name, getattr(policy, name)) != _normalised(policy, name, value)
    }
    zone_changed = (
        Tenant.objects.filter(schema_name=tenant_schema).exclude(time_zone="UTC").update(time_zone="UTC")
    )
    raw_version = store.client().hget(f"{store.tenant_prefix(tenant_schema)}:policy", "version")
    published = int(raw_version) if raw_version is not None else None
    if not changed and not zone_changed and published == policy.version:
        return False
    for name, value in changed.items():
        setattr(policy, name, value)
    # Above whatever Redis holds: the publish script never replaces a newer version with an older one.
    policy.version = max(policy.version, published or 0) + 1
    policy.save()
    publish_policy(tenant_schema)
    return True


def _normalised(policy: GatewayPolicy, name: str, value: Any) -> Any:
    if isinstance(policy._meta.get_field(name), DecimalField):
        return Decimal(str(value))
    return value
