"""The platform's view of tenants. These tables live in the public schema only."""

from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Tenant(TenantMixin):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FROZEN = "frozen", "Frozen"
        KILLED = "killed", "Killed"

    name: "models.CharField[str, str]" = models.CharField(max_length=100)
    status: "models.CharField[str, str]" = models.CharField(
        max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    time_zone: "models.CharField[str, str]" = models.CharField(max_length=64, default="UTC")
    created_at: "models.DateTimeField[object, object]" = models.DateTimeField(auto_now_add=True)

    # Schema and migrations are created by tenants.actions.do_create_tenant, not implicitly on save.
    auto_create_schema = False

    def __str__(self) -> str:
        return f"{self.name} ({self.schema_name})"

    @property
    def slug(self) -> str:
        """The identifier the identity provider puts in the tenant claim."""
        return self.schema_name

    @property
    def is_platform(self) -> bool:
        return self.schema_name == "public"


class Domain(DomainMixin):
    def __str__(self) -> str:
        return self.domain
