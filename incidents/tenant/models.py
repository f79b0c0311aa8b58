"""Tenant-schema tables of the incident tooling: the tenant's watch settings (anomaly thresholds, outage
e-mails) and the notices sent to its admins about platform incidents."""

from django.conf import settings
from django.db import models


class Action(models.TextChoices):
    ALERT = "alert", "Alert (incident + e-mail)"
    CONTAIN = "contain", "Contain (also switch the assistant off)"


class WatchSettings(models.Model):
    """One row per tenant schema, changed only by incidents.anomalies.do_set_watch_settings (audited).

    Thresholds compare the tenant with its own recent past (its baseline, from its model-call records); a
    tenant with too little history is compared with a share of its own rate limit instead."""

    singleton = models.BooleanField(default=True, unique=True, editable=False)
    # Tokens per minute (prompt + the most the answer may use, as reserved) above multiplier x the tenant's
    # usual busy minute (95th percentile of the last 7 days), and at least min_tokens_per_minute.
    spend_enabled = models.BooleanField(default=True)
    spend_multiplier = models.PositiveSmallIntegerField(default=5)
    spend_min_tokens_per_minute = models.PositiveIntegerField(default=1000)
    spend_action = models.CharField(max_length=8, choices=Action.choices, default=Action.CONTAIN)
    # A key created less than new_key_hours ago making more than new_key_calls_per_minute calls a minute.
    new_key_enabled = models.BooleanField(default=True)
    new_key_hours = models.PositiveSmallIntegerField(default=24)
    new_key_calls_per_minute = models.PositiveIntegerField(default=60)
    new_key_action = models.CharField(max_length=8, choices=Action.choices, default=Action.ALERT)
    # A call at an hour of the day (tenant's time zone) with no call in the last 14 days.
    hours_enabled = models.BooleanField(default=True)
    hours_action = models.CharField(max_length=8, choices=Action.choices, default=Action.ALERT)
    # A model the tenant has not called in the last 30 days.
    new_model_enabled = models.BooleanField(default=True)
    new_model_action = models.CharField(max_length=8, choices=Action.choices, default=Action.ALERT)
    # More than refused_per_minute calls refused in a minute (rate limits, budgets, models not allowed).
    refused_enabled = models.BooleanField(default=True)
    refused_per_minute = models.PositiveIntegerField(default=30)
    refused_action = models.CharField(max_length=8, choices=Action.choices, default=Action.ALERT)
    # Tenant admins are e-mailed when an outage of a model the tenant uses starts and ends (opt-in).
    outage_emails = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "incident watch settings"


class TenantNotice(models.Model):
    """A notice the platform sent the tenant's admins about an incident: e-mailed, and shown as a banner in
    the console until an admin acknowledges it."""

    incident_id = models.PositiveIntegerField(db_index=True)  # incidents.Incident in the public schema
    reference = models.CharField(max_length=32)
    subject = models.CharField(max_length=255)
    body = models.TextField()
    severity = models.CharField(max_length=16, default="high")
    sent_at = models.DateTimeField(auto_now_add=True)
    sent_by_label = models.CharField(max_length=255)
    recipients = models.JSONField(default=list, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-sent_at"]

    def __str__(self) -> str:
        return f"{self.reference}: {self.subject}"
