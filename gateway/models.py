"""The record of every model call, in the calling tenant's schema."""

import uuid

from django.conf import settings
from django.db import models


class ModelCall(models.Model):
    class Status(models.TextChoices):
        OK = "ok", "OK"
        ERROR = "error", "Error"
        REFUSED = "refused", "Refused"
        # A stream stopped before its end: kill switch turned on, or the client went away.
        CUT_OFF = "cut_off", "Cut off"

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
    # Streams only: time from sending the request to the first token.
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        # The console's usage and log queries filter on a time window, then group by model or user.
        indexes = [
            models.Index(fields=["created_at", "model_requested"], name="modelcall_time_model_idx"),
            models.Index(fields=["user", "created_at"], name="modelcall_user_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model_requested} {self.status}"
