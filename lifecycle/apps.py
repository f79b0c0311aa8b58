from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    """What platform staff do to a tenant: onboard, freeze, offboard, break-glass (docs/operations.md).

    It sits above the apps it drives (accounts, audit, keys, gateway), so tenants/ stays the bottom layer.
    No models of its own: Tenant, Domain, BreakGlassGrant and TenantTombstone stay in tenants/."""

    name = "lifecycle"
    verbose_name = "Tenant lifecycle"
