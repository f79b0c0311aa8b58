"""Tenant-schema tables of the gateway: the record of every model call and the tenant's gateway policy."""

import uuid

from django.conf import settings
from django.db import models

from audit.models import SealedHashChained
from keys.fields import EncryptedJSONField, EncryptedTextField


class ModelCall(SealedHashChained):
    """Hash-chained (audit/chain.py), sealed when final: the row is claimed 'started' with its chain
    columns NULL (in flight, not yet evidence), updated to its final state, and in that same transaction
    sealed into the tenant's chain (audit.chain.seal_in_chain), which stamps finished_at as its chain
    timestamp. A trigger allows UPDATE only while the row is unsealed and never DELETE (docs/audit.md).

    Every column the claim does not write has a database default (db_default), so the claim's one-statement
    INSERT (gateway.protocol.claim) names only what it knows and never lists the others by hand. Each also
    keeps its Python default: a row built in Python (audit.chain.append_to_chain hashes it before the
    INSERT) must hold the value, not a DatabaseDefault placeholder."""

    class Status(models.TextChoices):
        # Written before the provider is contacted, under the request id's unique constraint, so that a
        # redelivered task finds it and never calls the provider a second time.
        STARTED = "started", "Started"
        OK = "ok", "OK"
        ERROR = "error", "Error"
        REFUSED = "refused", "Refused"
        # A stream stopped before its end: kill switch turned on, or the client went away.
        CUT_OFF = "cut_off", "Cut off"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    request_id = models.UUIDField(unique=True)
    source = models.CharField(max_length=16, blank=True, default="")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    model_requested = models.CharField(max_length=128)
    model_served = models.CharField(max_length=255, blank=True, default="", db_default="")
    # The alias of the catalogue entry that answered: differs from model_requested after a fallback.
    model_alias_served = models.CharField(max_length=128, blank=True, default="", db_default="")
    fallback_taken = models.BooleanField(default=False, db_default=False)
    provider = models.CharField(max_length=64, blank=True, default="", db_default="")
    # Encrypted with the tenant's data key (docs/encryption.md): a database dump does not reveal the prompt,
    # the answer or what the provider said about them. Not searchable in SQL.
    messages = EncryptedJSONField(default=list)
    response = EncryptedTextField(blank=True, default="", db_default="")
    # Blank in the database reads back as [] (the field's default); a plain Value, or Django would pass the
    # database default through the field and store an encrypted '""'.
    tool_calls = EncryptedJSONField(default=list, blank=True, db_default=models.Value("", models.TextField()))
    max_tokens = models.PositiveIntegerField(default=0, db_default=0)
    tokens_in = models.PositiveIntegerField(default=0, db_default=0)
    tokens_out = models.PositiveIntegerField(default=0, db_default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0, db_default=0)
    latency_ms = models.PositiveIntegerField(default=0, db_default=0)
    # Streams only: time from sending the request to the first token.
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    # Machine-readable reason (the OpenAI error code the API answers with), next to the readable error.
    error_code = models.CharField(max_length=64, blank=True, default="", db_default="")
    # Provider errors can quote the request.
    error = EncryptedTextField(blank=True, default="", db_default="")
    # Until then the process that wrote the 'started' row owns the call; after it, another delivery of the
    # same request may declare it interrupted (the owner died) and the reservation expires.
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        # The console's usage and log queries filter on a time window, then group by model or user.
        indexes = [
            models.Index(fields=["created_at", "model_requested"], name="modelcall_time_model_idx"),
            models.Index(fields=["user", "created_at"], name="modelcall_user_time_idx"),
            # The chain timestamp: exports and retention select a window on it.
            models.Index(fields=["finished_at"], name="modelcall_finished_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model_requested} {self.status}"


class GatewayPolicy(models.Model):
    """The tenant's gateway configuration: one row per tenant schema, changed only by gateway.actions
    (which write an audit event and publish the row to Redis, where every worker reads it)."""

    singleton = models.BooleanField(default=True, unique=True, editable=False)
    version = models.PositiveIntegerField(default=1)
    allowed_models = models.JSONField(default=list)
    default_model = models.CharField(max_length=128)
    # {"model": ["first fallback", "second fallback"]}: tried in order when the model's provider fails.
    fallbacks = models.JSONField(default=dict, blank=True)
    daily_token_budget = models.PositiveBigIntegerField()
    monthly_token_budget = models.PositiveBigIntegerField()
    monthly_spend_cap = models.DecimalField(max_digits=14, decimal_places=2)
    user_daily_token_cap = models.PositiveBigIntegerField(null=True, blank=True)
    requests_per_minute = models.PositiveIntegerField()
    tokens_per_minute = models.PositiveBigIntegerField()
    user_requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    user_tokens_per_minute = models.PositiveBigIntegerField(null=True, blank=True)
    kill_switch = models.BooleanField(default=False)
    kill_switch_reason = models.CharField(max_length=500, blank=True)
    # Tenant admins are warned (console banner, one e-mail per budget and period) when usage passes this
    # share of a budget; None: no alerts.
    budget_alert_percent = models.PositiveSmallIntegerField(null=True, blank=True, default=80)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"gateway policy v{self.version}"


class BudgetAlert(models.Model):
    """One row per budget and period whose alert threshold was passed: the unique constraint is what
    makes the alert e-mail go out once per period, whichever process notices first."""

    class Budget(models.TextChoices):
        DAILY_TOKENS = "daily_tokens", "Daily token budget"
        MONTHLY_TOKENS = "monthly_tokens", "Monthly token budget"
        MONTHLY_SPEND = "monthly_spend", "Monthly spending cap"

    budget = models.CharField(max_length=32, choices=Budget.choices)
    # The tenant-local calendar period, as the budget counters name it: "20261126" or "202611".
    period = models.CharField(max_length=8)
    percent_used = models.PositiveIntegerField()
    threshold_percent = models.PositiveSmallIntegerField()
    recipients = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "period"], name="budgetalert_once_per_period")
        ]

    def __str__(self) -> str:
        return f"{self.budget} {self.period} at {self.percent_used}%"
