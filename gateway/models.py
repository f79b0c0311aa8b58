"""The record of every model call, in the calling tenant's schema."""

import uuid

from django.conf import settings
from django.db import models

from audit.models import HashChained


class ModelCall(HashChained):
    """Hash-chained (audit/chain.py): appended once, when the call is final; never updated."""

    class Status(models.TextChoices):
        OK = "ok", "OK"
        ERROR = "error", "Error"
        REFUSED = "refused", "Refused"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    request_id = models.UUIDField(unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    model_requested = models.CharField(max_length=128)
    model_served = models.CharField(max_length=255, blank=True)
    provider = models.CharField(max_length=64, blank=True)
    messages = models.JSONField(default=list)
    response = models.TextField(blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model_requested} {self.status}"
