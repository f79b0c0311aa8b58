"""Wrapped tenant data keys (public schema). The plaintext key never touches the database: each row holds
the data key encrypted ("wrapped") by a master key that lives outside the database (keys.kms)."""

from django.db import models

from tenants.models import Tenant


class TenantKey(models.Model):
    class State(models.TextChoices):
        # New rows are encrypted with the active key; exactly one per tenant.
        ACTIVE = "active", "Active"
        # Still decrypts rows written before a rotation; the rotation command re-encrypts them, then retires it.
        DECRYPT_ONLY = "decrypt_only", "Decrypt only"
        # No row references it any more (kept wrapped, so a straggler row can still be read and re-encrypted).
        RETIRED = "retired", "Retired"

    # Deleting a tenant deletes its keys: whatever of its ciphertext survives in backups is unreadable.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="data_keys")
    key_id = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    master_key_id = models.CharField(max_length=64)
    wrapped_key = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key_id"], name="keys_tenantkey_unique_id"),
            models.UniqueConstraint(
                fields=["tenant"], condition=models.Q(state="active"), name="keys_tenantkey_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"data key {self.key_id} of tenant {self.tenant_id} ({self.state})"
