"""Which models a tenant may use through its API.

For now every model of settings.GATEWAY_MODELS that has a price (a model without one is never offered).
The per-tenant allow-list (gateway policy) replaces the body of allowed_models; callers stay as they are.
"""

from django.conf import settings

from gateway.config import UnknownModelError, get_model_route


def allowed_models(tenant_schema: str) -> list[str]:
    """Model aliases the tenant may call, sorted."""
    allowed = []
    for alias in settings.GATEWAY_MODELS:
        try:
            get_model_route(alias)
        except UnknownModelError:
            continue
        allowed.append(alias)
    return sorted(allowed)
