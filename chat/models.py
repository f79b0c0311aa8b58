"""Conversations and their messages, in the tenant's schema. Each belongs to exactly one user."""

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.functional import cached_property
from django.utils.safestring import SafeString

from convosuite.markdown import render_untrusted_markdown
from keys.fields import EncryptedTextField


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    # The first words of the first message: as confidential as the message itself.
    title = EncryptedTextField(blank=True)
    # Set when the person renamed the conversation: a generated title never replaces theirs.
    title_set_by_user = models.BooleanField(default=False)
    # The agent (prompt template) picked at the start; its production version writes the system prompt.
    agent = models.ForeignKey(
        "prompts.PromptTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The model the person picked (a catalogue alias on the tenant's allow-list); blank: the tenant's default.
    # An agent's own model wins over it.
    model = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    # Soft delete: hidden from the owner at once, purged after CHAT_DELETED_RETENTION_DAYS.
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title or "New conversation"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        # The person pressed Stop: what was said so far is kept, as an answer.
        STOPPED = "stopped", "Stopped"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DONE)
    content = EncryptedTextField(blank=True)
    # Assistant messages: the gateway request id, which makes the model call idempotent.
    request_id = models.UUIDField(null=True, blank=True, unique=True)
    error_for_user = models.CharField(max_length=500, blank=True)
    # User messages: when the person last edited it (edit and resend).
    edited_at = models.DateTimeField(null=True, blank=True)
    # Assistant messages answered from knowledge bases: the passages quoted to the model (knowledge.retrieval).
    citations = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    # Answers: which model answered and what it used (chat.actions.attach_reply_details sets it).
    reply_details: Any = None

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.role} message {self.id}"

    @cached_property
    def html(self) -> SafeString:
        return render_untrusted_markdown(self.content)
