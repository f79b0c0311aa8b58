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


class Canary(models.Model):
    """A tenant's secret marker (gateway.screening): planted where its data leaves its schema for a model,
    looked for in every other tenant's prompts, answers, retrieval results and exports. Never shown to anyone;
    retired markers are still looked for (older data carries them)."""

    class Kind(models.TextChoices):
        PROMPT = "prompt", "Prompt system text"
        KNOWLEDGE = "knowledge", "Knowledge-base context"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["tenant_id", "kind", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind"],
                condition=models.Q(retired_at__isnull=True),
                name="canary_one_active_per_tenant_and_kind",
            )
        ]

    def __str__(self) -> str:
        # The token is a secret: never in a string that may reach a log or a page.
        return f"canary #{self.pk} ({self.kind})"


class ServiceState(models.TextChoices):
    OPERATIONAL = "operational", "Operational"
    DEGRADED = "degraded", "Degraded"
    OUTAGE = "outage", "Outage"
    MAINTENANCE = "maintenance", "Maintenance"


class ModelStatus(models.Model):
    """What the public status page says about one catalogue model, now. `state` follows the circuit breaker
    (incidents.status.sync_model_statuses); a platform admin may pin `override` (e.g. maintenance) and write a
    public note, both shown until cleared."""

    alias = models.CharField(max_length=128, unique=True)
    provider = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=16, choices=ServiceState.choices, default=ServiceState.OPERATIONAL)
    since = models.DateTimeField(default=timezone.now)
    override = models.CharField(max_length=16, choices=ServiceState.choices, blank=True)
    note = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "alias"]

    def __str__(self) -> str:
        return f"{self.alias}: {self.shown_state}"

    @property
    def shown_state(self) -> str:
        return self.override or self.state


class StatusChange(models.Model):
    """The history the status page draws: every change of a model's shown state, and every public note."""

    class Source(models.TextChoices):
        BREAKER = "breaker", "Circuit breaker"
        ADMIN = "admin", "Platform admin"

    alias = models.CharField(max_length=128, db_index=True)
    provider = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    state = models.CharField(max_length=16, choices=ServiceState.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    note = models.CharField(max_length=500, blank=True)
    actor_label = models.CharField(max_length=255, blank=True)
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="status_changes"
    )

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.alias} {self.state}"


class PostMortem(models.Model):
    """The review of an incident, prefilled from the records (timeline, affected tenants, call counts) and then
    edited by platform admins."""

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="post_mortem")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    figures = models.JSONField(default=dict, blank=True)
    body = models.TextField()
    edited_by = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"post-mortem of {self.incident.reference}"
