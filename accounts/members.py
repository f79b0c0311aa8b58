"""Who a tenant's members are, for code that writes to them (budget alerts, break-glass notices)."""

from accounts.models import Role, User


def tenant_admin_emails() -> list[str]:
    """Addresses of the tenant admins, as the identity provider last stated them (current tenant schema)."""
    return sorted(
        email
        for email in User.objects.filter(
            roles__contains=[Role.TENANT_ADMIN.value], is_active=True
        ).values_list("email", flat=True)
        if email
    )
