"""Evidence kept in each tenant's schema: control-plane audit events (hash-chained like model calls),
signed checkpoints of the chain heads, audit exports and the tenant's redaction policy."""

import uuid

from django.conf import settings
from django.db import models


class HashChained(models.Model):
    """Columns of a row in a per-tenant hash chain (audit/chain.py). Rows are append-only: a trigger
    rejects UPDATE and DELETE (audit/migrations/0002_hash_chains.py)."""

    seq = models.BigIntegerField(unique=True, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    record_hash = models.CharField(max_length=64, editable=False)
    chain_salt = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        abstract = True


class SealedHashChained(models.Model):
    """Chain columns of a row that is written before it is final and sealed into its chain when it is
    (audit.chain.seal_in_chain): NULL while in flight, which no string value could say (a chain without
    secrets has the salt ""). The row's trigger allows UPDATE only while `seq IS NULL`."""

    seq = models.BigIntegerField(unique=True, null=True, editable=False)
    prev_hash = models.CharField(max_length=64, null=True, editable=False)  # noqa: DJ001 - see docstring
    record_hash = models.CharField(max_length=64, null=True, editable=False)  # noqa: DJ001 - see docstring
    chain_salt = models.CharField(max_length=32, null=True, blank=True, editable=False)  # noqa: DJ001

    class Meta:
        abstract = True


class AuditEvent(HashChained):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=64, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=255, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.kind}"


class ChainCheckpoint(models.Model):
    """A platform signature over a chain head: the chain cannot later lose rows up to `seq` unnoticed."""

    class Reason(models.TextChoices):
        PERIODIC = "periodic", "Periodic"
        RETENTION = "retention", "Retention (rows up to seq pruned)"

    chain = models.CharField(max_length=32)
    seq = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    head_timestamp = models.DateTimeField(null=True)
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.PERIODIC)
    signed_at = models.DateTimeField()
    statement = models.TextField()  # the exact signed bytes (canonical JSON)
    signature = models.CharField(max_length=128)  # base64 Ed25519
    key_id = models.CharField(max_length=64)

    class Meta:
        ordering = ["-signed_at"]
        indexes = [models.Index(fields=["chain", "-seq"])]

    def __str__(self) -> str:
        return f"{self.chain}@{self.seq}"


class RedactionPolicy(models.TextChoices):
    FULL = "full", "Full text"
    HASHED = "hashed", "SHA-256 of the text"
    REMOVED = "removed", "Removed"


class AuditSettings(models.Model):
    """One row per tenant schema."""

    redaction_policy = models.CharField(
        max_length=16, choices=RedactionPolicy.choices, default=RedactionPolicy.FULL
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"redaction={self.redaction_policy}"


class AuditExport(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Queued"
        RUNNING = "running", "Running"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    requested_by_label = models.CharField(max_length=255, blank=True)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    redaction_policy = models.CharField(max_length=16, choices=RedactionPolicy.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    records_total = models.BigIntegerField(default=0)
    records_done = models.BigIntegerField(default=0)
    file_name = models.CharField(max_length=255, blank=True)
    file_size = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.window_start:%Y-%m-%d}..{self.window_end:%Y-%m-%d} {self.status}"

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.READY:
            return 100
        if not self.records_total:
            return 0
        return min(100, int(self.records_done * 100 / self.records_total))
