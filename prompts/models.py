"""Prompt templates, their immutable versions and the labels that point at versions (tenant schema).

A template is what end-users see as an "agent" (name and description only). Every edit publishes a new
PromptVersion; versions are never changed. A label (production, staging or a custom name) points at one
version of its template; the chat uses the version labelled production. Moving a label is how a version
is promoted or rolled back, and each move is an audit event (prompts.actions).
"""

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from keys.fields import EncryptedJSONField, EncryptedTextField

PRODUCTION = "production"
STAGING = "staging"


class PromptTemplate(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    # Shown to end-users when they pick an agent; never the prompt text itself.
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class VersionIsImmutable(RuntimeError):
    pass


class PromptVersion(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # The system prompt with $variables (string.Template syntax), encrypted with the tenant's key.
    body = EncryptedTextField()
    # Values for the template's own variables (name -> text), encrypted like the body.
    variables = EncryptedJSONField(default=dict, blank=True)
    model = models.CharField(max_length=64)
    temperature = models.DecimalField(max_digits=3, decimal_places=2, default=Decimal("0.70"))
    max_tokens = models.PositiveIntegerField()
    # Ids of knowledge bases to search. The knowledge app lands separately; until then plain ids in JSON.
    knowledge_base_ids = models.JSONField(default=list, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    author_label = models.CharField(max_length=255, blank=True)
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="prompts_version_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.template_id} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise VersionIsImmutable("Prompt versions are immutable; publish a new version instead.")
        super().save(*args, **kwargs)


class PromptLabel(models.Model):
    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="labels")
    name = models.SlugField(max_length=40)
    version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="labels")
    moved_at = models.DateTimeField(default=timezone.now)
    moved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["template", "name"], name="prompts_label_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} -> {self.version_id}"


class PlaygroundRun(models.Model):
    """One side of a playground comparison: a version of a template, run against a model with sample
    variables and a test message, through the gateway like any call (policy, budget, recorded). The answer,
    tokens, cost and status live in the gateway's ModelCall record of `request_id`, never here twice.
    Two runs share a `batch`: the version being tried and the one to compare it with (production)."""

    class Side(models.TextChoices):
        CANDIDATE = "candidate", "Trying"
        BASELINE = "baseline", "Compared with"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    batch = models.UUIDField(db_index=True)
    side = models.CharField(max_length=16, choices=Side.choices)
    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="playground_runs")
    version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="playground_runs")
    model = models.CharField(max_length=128)
    # Sample values for the template's variables and the runtime ones; encrypted like the prompt itself.
    variables = EncryptedJSONField(default=dict, blank=True)
    user_message = EncryptedTextField()
    request_id = models.UUIDField(unique=True, default=uuid.uuid4)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Why the run never reached the gateway (e.g. its version's variables could not be filled); "" otherwise.
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "side"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "side"], name="prompts_playground_one_per_side")
        ]

    def __str__(self) -> str:
        return f"playground {self.batch} {self.side} v{self.version_id}"
