"""The platform's view of tenants. These tables live in the public schema only."""

from datetime import datetime

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

    # Schema and migrations are created by lifecycle.actions.do_create_tenant, not implicitly on save.
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


class BreakGlassGrant(models.Model):
    """A platform admin's time-limited, written-down permission to read one tenant's content.

    Opening, every page read under it, and closing are audit events in the tenant's own schema.
    """

    MAX_MINUTES = 60
    MIN_REASON_LENGTH = 20

    staff = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="break_glass_grants")
    # Offboarding deletes a tenant's grants with it (they are exported into its archive first).
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="break_glass_grants")
    reason = models.TextField()
    opened_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"break-glass #{self.pk} {self.tenant.schema_name} by {self.staff}"

    def is_active_at(self, moment: "datetime") -> bool:
        return self.closed_at is None and self.opened_at <= moment < self.expires_at


class TenantTombstone(models.Model):
    """What remains of an offboarded tenant: who it was, when it left, and the fingerprint of its archive."""

    slug = models.CharField(max_length=63)
    name = models.CharField(max_length=100)
    offboarded_at = models.DateTimeField()
    archive_sha256 = models.CharField(max_length=64)
    archive_name = models.CharField(max_length=255)

    class Meta:
        ordering = ["-offboarded_at"]

    def __str__(self) -> str:
        return f"{self.slug} (offboarded {self.offboarded_at:%Y-%m-%d})"


class TenantSchemaRecipe(models.Model):
    """The statements that migrating a fresh tenant schema executed, replayed to build the next tenants'
    schemas (tenants/schema_recipe.py). One per fingerprint of the migration files and library versions."""

    fingerprint = models.CharField(max_length=64, unique=True)
    sql = models.TextField()
    recorded_from = models.CharField(max_length=63, help_text="The tenant whose migration was recorded.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"schema recipe {self.fingerprint[:12]} (from {self.recorded_from})"
