"""Which models a tenant may use through its API: its gateway policy's allow-list (gateway.actions keeps
only priced catalogue models on it; an entry that lost its price since is not offered)."""

from gateway.config import UnknownModelError, get_model_route
from gateway.policy import load_policy


def allowed_models(tenant_schema: str) -> list[str]:
    """Model aliases the tenant may call, sorted. Read from the published policy on every request, so an
    admin's change is listed at once."""
    allowed = []
    for alias in load_policy(tenant_schema).allowed_models:
        try:
            get_model_route(alias)
        except UnknownModelError:
            continue
        allowed.append(alias)
    return sorted(allowed)
