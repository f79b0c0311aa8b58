"""Test helpers for the gateway's shared state in Redis (only ever touches this database's namespace)."""

from django.conf import settings

from gateway import breaker, store


def reset_circuit_breakers() -> None:
    for alias in settings.GATEWAY_MODELS:
        breaker.reset(alias)


def forget_gateway_state() -> None:
    """Delete every gateway key of this database's namespace (tests start from a fresh database)."""
    client = store.client()
    pattern = f"gw:{{{store.namespace()}*"
    keys = list(client.scan_iter(match=pattern, count=1000))
    if keys:
        client.delete(*keys)
