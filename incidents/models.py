"""Platform incidents, in the public schema: what happened, which tenants it touches, its timeline and every
notification sent about it. Tenant content never goes here: a record names tenants, record ids, request ids
and hashes, never prompt or response text."""

from django.db import models
from django.utils import timezone


class Incident(models.Model):
    class Kind(models.TextChoices):
        CROSS_TENANT_LEAK = "cross_tenant_leak", "Cross-tenant leak"
        TENANT_COMPROMISE = "tenant_compromise", "Tenant compromise"
        PROVIDER_OUTAGE = "provider_outage", "Provider outage"
        EVIDENCE = "evidence", "Evidence integrity"
        OTHER = "other", "Other"

    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CONTAINED = "contained", "Contained"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed (reviewed)"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.HIGH)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    # What raised it: "gateway canary screen", "anomaly rule spend_spike", a staff member's name, ...
    detected_by = models.CharField(max_length=255)
    opened_at = models.DateTimeField(default=timezone.now)
    contained_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The period the incident covers (blast radius, post-mortem); end None: still going.
    window_start = models.DateTimeField(default=timezone.now)
    window_end = models.DateTimeField(null=True, blank=True)
    # Repeated detections of the same thing (one rule, one tenant, one model) join the open incident.
    dedupe_key = models.CharField(max_length=200, blank=True)
    # Machine-readable facts: request ids, record ids, rule names, counts. Never tenant text.
    details = models.JSONField(default=dict, blank=True)
    # The review: the post-mortem or the leak review written when the incident is closed.
    review = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=~models.Q(dedupe_key="") & models.Q(status__in=["open", "contained"]),
                name="incident_one_open_per_dedupe_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def reference(self) -> str:
        return f"INC-{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.OPEN, self.Status.CONTAINED)


class IncidentTenant(models.Model):
    """A tenant an incident touches, and how. The schema name stays when the tenant is offboarded."""

    class Role(models.TextChoices):
        SOURCE = "source", "Data source (its data was about to reach another tenant)"
        RECEIVING = "receiving", "Receiving (another tenant's data reached its call)"
        COMPROMISED = "compromised", "Compromised (unusual activity)"
        AFFECTED = "affected", "Affected (service degraded)"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="tenant_links")
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    schema_name = models.CharField(max_length=63)
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        ordering = ["schema_name"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "schema_name"], name="incident_tenant_once"),
        ]

    def __str__(self) -> str:
        return f"{self.schema_name} ({self.role})"


class IncidentEvent(models.Model):
    """One line of the incident's timeline: detection, containment, notices, remediation, notes."""

    class Kind(models.TextChoices):
        DETECTED = "detected", "Detected"
        SEEN_AGAIN = "seen_again", "Seen again"
        CONTAINED = "contained", "Contained"
        NOTIFIED = "notified", "Notified"
        REMEDIATION = "remediation", "Remediation"
        STATUS = "status", "Status changed"
        NOTE = "note", "Note"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor_label = models.CharField(max_length=255)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind}: {self.message[:60]}"


class IncidentNotification(models.Model):
    """Every message sent about an incident (e-mail) or shown (banner), so the timeline says who was told."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        BANNER = "banner", "Console banner"

    class Audience(models.TextChoices):
        PLATFORM_ADMINS = "platform_admins", "Platform admins"
        TENANT_ADMINS = "tenant_admins", "Tenant admins"
        TENANT_SUBSCRIBERS = "subscribers", "Tenant status subscribers"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notifications")
    created_at = models.DateTimeField(default=timezone.now)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    audience = models.CharField(max_length=32, choices=Audience.choices)
    schema_name = models.CharField(max_length=63, blank=True)
    recipient = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=255)
    sent = models.BooleanField(default=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient or self.audience}: {self.subject}"
