"""People who sign in. In a tenant's schema: that tenant's members; in the public schema: platform staff.

Users are keyed on (issuer, subject) from the identity provider, never on e-mail: the same address may
exist in two tenants, and an e-mail can be reassigned at the provider.
"""

from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    PLATFORM_ADMIN = "platform_admin", "Platform admin"
    TENANT_ADMIN = "tenant_admin", "Tenant admin"
    END_USER = "end_user", "End user"


class User(AbstractUser):
    issuer = models.CharField(max_length=255, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    display_name = models.CharField(max_length=255, blank=True)
    # A read-only mirror of the roles claim, refreshed at every sign-in.
    roles = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"],
                condition=~models.Q(subject=""),
                name="accounts_user_unique_oidc_identity",
            )
        ]

    def __str__(self) -> str:
        return self.display_name or self.email or self.username

    def get_short_name(self) -> str:
        # Django admin greets staff with this; the username is a hash of the OIDC identity.
        return str(self)

    def has_role(self, role: str) -> bool:
        return role in self.roles
