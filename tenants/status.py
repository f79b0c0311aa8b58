"""The tenant's lifecycle status, read fresh from the public schema (a freeze takes effect at once)."""

from tenants.models import Tenant


def tenant_status(schema_name: str) -> str | None:
    return Tenant.objects.filter(schema_name=schema_name).values_list("status", flat=True).first()


def model_calls_allowed(schema_name: str) -> bool:
    """Only an active tenant may spend on model calls; frozen (incident) and killed tenants may not."""
    return tenant_status(schema_name) == Tenant.Status.ACTIVE


TENANT_FROZEN_MESSAGE = (
    "Your organisation's workspace is temporarily read-only. New messages can't be sent right now; "
    "your administrator has been told why."
)
