"""Tenant API keys, in the tenant's schema. Only a hash of the secret is stored; the key is shown once."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

# ModelCall.source of calls made with an API key: "key:" and the key's 12-character public prefix.
KEY_SOURCE_PREFIX = "key:"


class ApiKey(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    # Public part of the key: finds the row and lets people tell their keys apart in lists and logs.
    prefix = models.CharField(max_length=16, unique=True)
    # SHA-256 of the whole key. The key carries 256 random bits, so a fast hash is enough (no brute force).
    secret_hash = models.CharField(max_length=64)
    # Model aliases this key may use; empty means every model the tenant allows.
    model_scope = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # After this moment the key is refused (401 "expired"); None: it never expires.
    expires_at = models.DateTimeField(null=True, blank=True)
    # The key's own limits, checked in the gateway's atomic reservation next to the tenant's
    # (gateway.policy.KeyLimits); None: only the tenant's limits apply. The day is the tenant's.
    daily_token_budget = models.PositiveBigIntegerField(null=True, blank=True)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def call_source(self) -> str:
        """What the gateway records as the source of this key's model calls (ModelCall.source, 16
        characters): the console finds the key's name from it."""
        return f"{KEY_SOURCE_PREFIX}{self.prefix}"
