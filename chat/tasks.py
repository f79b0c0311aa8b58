"""Celery tasks of the chat. Each takes the tenant's schema name and ids, never objects."""

import uuid

from celery import shared_task

from chat.actions import do_generate_assistant_reply, do_generate_conversation_title, do_mark_reply_failed
from tenants.task_context import requires_tenant_context


# acks_late (settings) + idempotent body: a worker killed mid-call gets the task redelivered, and the
# gateway's request id keeps the provider call and its record single.
@shared_task(name="chat.generate_assistant_reply")
@requires_tenant_context
def generate_assistant_reply(tenant_schema: str, message_id: str) -> None:
    try:
        do_generate_assistant_reply(uuid.UUID(message_id))
    except Exception:
        # A bug must not leave the person watching a typing indicator forever: say so, then fail loudly.
        do_mark_reply_failed(uuid.UUID(message_id))
        raise


# A title is a nicety: a failure keeps the first message's title, nothing to retry or report.
@shared_task(name="chat.generate_conversation_title")
@requires_tenant_context
def generate_conversation_title(tenant_schema: str, conversation_id: str) -> None:
    do_generate_conversation_title(uuid.UUID(conversation_id))
