"""Conversation actions: the views and the worker call these; nothing else changes chat state."""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from chat.live import ReplyPublisher
from chat.models import Conversation, Message
from convosuite import faults
from convosuite.log_redaction import remember_sensitive_text
from gateway import screening
from gateway.errors import GatewayError
from gateway.models import ModelCall
from gateway.policy import default_model_for_tenant
from gateway.streaming import StreamResult, stream
from knowledge.retrieval import build_context_messages
from prompts.actions import AgentPrompt, agent_prompt_for
from prompts.models import PromptTemplate
from tenants.context import current_schema
from tenants.models import Tenant
from tenants.status import TENANT_FROZEN_MESSAGE, model_calls_allowed
from tenants.task_context import send_tenant_task_on_commit

TITLE_LENGTH = 60
TITLE_MAX_LENGTH = 200


class MessageRejected(ValueError):
    """User input that cannot be accepted; the message is shown to the user."""


def access_conversation_by_id(user: User, conversation_id: uuid.UUID) -> Conversation:
    """The user's own conversation, or 404: a colleague's conversation looks exactly like a missing one."""
    conversation = Conversation.objects.filter(
        id=conversation_id, owner=user, deleted_at__isnull=True
    ).first()
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def access_message_by_id(conversation: Conversation, message_id: uuid.UUID) -> Message:
    message = Message.objects.filter(id=message_id, conversation=conversation).first()
    if message is None:
        raise Http404("No such message.")
    return message


def conversations_for_user(user: User) -> list[Conversation]:
    return list(
        Conversation.objects.filter(owner=user, deleted_at__isnull=True).order_by("-updated_at")[:200]
    )


def do_start_conversation(user: User, agent: PromptTemplate | None = None) -> Conversation:
    """agent: a template with a production version (prompts.actions.access_agent_by_id), or None for the
    default assistant."""
    return Conversation.objects.create(owner=user, agent=agent)


@transaction.atomic
def do_post_user_message(conversation: Conversation, content: str) -> tuple[Message, Message]:
    """Store the user's message and a pending assistant reply; the worker fills the reply after commit."""
    text = content.strip()
    if not text:
        raise MessageRejected("Type a message first.")
    if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise MessageRejected(f"Messages are limited to {settings.CHAT_MAX_MESSAGE_CHARS} characters.")
    if not model_calls_allowed(current_schema()):
        raise MessageRejected(TENANT_FROZEN_MESSAGE)
    user_message = Message.objects.create(conversation=conversation, role=Message.Role.USER, content=text)
    assistant_message = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.PENDING,
        request_id=uuid.uuid4(),
    )
    if not conversation.title:
        conversation.title = text[:TITLE_LENGTH] + ("…" if len(text) > TITLE_LENGTH else "")
    conversation.save(update_fields=["title", "updated_at"])

    send_tenant_task_on_commit("chat.generate_assistant_reply", str(assistant_message.id))
    return user_message, assistant_message


def _agent_prompt(conversation: Conversation) -> AgentPrompt | None:
    if conversation.agent_id is None:
        return None
    tenant_name = Tenant.objects.filter(schema_name=current_schema()).values_list("name", flat=True).first()
    return agent_prompt_for(conversation.agent_id, user=conversation.owner, tenant_name=tenant_name or "")


def _history_for_model(assistant_message: Message, system_prompt: str) -> list[dict[str, str]]:
    earlier = (
        Message.objects.filter(
            conversation_id=assistant_message.conversation_id,
            created_at__lt=assistant_message.created_at,
            status=Message.Status.DONE,
        )
        .order_by("-created_at")
        .values_list("role", "content")[: settings.CHAT_HISTORY_MESSAGES]
    )
    history = [{"role": role, "content": content} for role, content in reversed(earlier)]
    return [{"role": "system", "content": system_prompt}, *history]


def do_generate_assistant_reply(message_id: uuid.UUID) -> None:
    """Stream the model's answer through the gateway, publishing tokens for the browser as they come,
    and store the answer. Safe to run twice for one message (the request id makes the call idempotent)."""
    message = (
        Message.objects.select_related("conversation__owner")
        .filter(id=message_id, role=Message.Role.ASSISTANT)
        .first()
    )
    if message is None or message.status != Message.Status.PENDING or message.request_id is None:
        return
    tenant_schema = current_schema()
    publisher = ReplyPublisher(tenant_schema, message.request_id)
    publisher.restart()
    # Checked again here: the tenant may have been frozen between the request and this task.
    if not model_calls_allowed(tenant_schema):
        message.status = Message.Status.FAILED
        message.error_for_user = TENANT_FROZEN_MESSAGE[:500]
        message.save(update_fields=["status", "error_for_user"])
        publisher.end(message.status)
        return
    # The agent's production version at the time of the reply: a rollback applies to the next answer.
    agent = _agent_prompt(message.conversation)
    system_prompt = agent.system_prompt if agent else settings.CHAT_SYSTEM_PROMPT
    remember_sensitive_text(system_prompt)
    result: StreamResult | None = None
    # The tenant's secret canary marker travels with its system text (gateway.screening).
    messages = _history_for_model(message, screening.plant(system_prompt, "prompt"))
    question = messages[-1]["content"] if messages[-1]["role"] == Message.Role.USER else ""
    # Passages from the tenant's knowledge bases, as delimited quoted context after the instructions.
    context_messages, citations = build_context_messages(
        message.conversation, question, agent.knowledge_base_ids if agent else None
    )
    messages = [messages[0], *context_messages, *messages[1:]]
    model = agent.model if agent else default_model_for_tenant(tenant_schema)
    try:
        # Rehearsals only (convosuite/faults.py): the call may be mis-routed to another tenant.
        with faults.model_call_tenant(tenant_schema) as call_tenant:
            for event in stream(
                tenant_schema=call_tenant,
                request_id=message.request_id,
                user_id=message.conversation.owner_id,
                model=model,
                messages=messages,
                max_tokens=agent.max_tokens if agent else None,
                source="chat",
            ):
                if event.kind == "token":
                    publisher.token(event.text)
                else:
                    result = event.result
    except GatewayError as failure:
        message.status = Message.Status.FAILED
        message.error_for_user = failure.user_message[:500]
        message.save(update_fields=["status", "error_for_user"])
        publisher.end(message.status)
        return
    if result is None:
        raise RuntimeError("The gateway's stream ended without its end event.")
    remember_sensitive_text(result.text)
    message.content = result.text
    if result.status == ModelCall.Status.OK:
        message.status = Message.Status.DONE
    else:
        # Cut off (kill switch) or broken mid-way: keep what was said and say why it stopped.
        message.status = Message.Status.FAILED
        reason = result.error.user_message if result.error else "The answer was cut off."
        message.error_for_user = reason[:500]
    message.citations = citations
    message.save(update_fields=["content", "status", "error_for_user", "citations"])
    Conversation.objects.filter(id=message.conversation_id).update(updated_at=timezone.now())
    publisher.end(message.status)


UNEXPECTED_FAILURE_MESSAGE = "Something went wrong while answering. Please try again."


def do_mark_reply_failed(message_id: uuid.UUID) -> None:
    """After an unexpected error in the worker: a pending reply becomes a failed one, and its listeners
    are told, so the page stops waiting."""
    message = Message.objects.filter(
        id=message_id, role=Message.Role.ASSISTANT, status=Message.Status.PENDING
    ).first()
    if message is None:
        return
    message.status = Message.Status.FAILED
    message.error_for_user = UNEXPECTED_FAILURE_MESSAGE
    message.save(update_fields=["status", "error_for_user"])
    if message.request_id is not None:
        ReplyPublisher(current_schema(), message.request_id).end(message.status)


def do_rename_conversation(conversation: Conversation, title: str) -> Conversation:
    title = " ".join(title.split())
    if not title:
        raise MessageRejected("Give the conversation a name.")
    if len(title) > TITLE_MAX_LENGTH:
        raise MessageRejected(f"Names are limited to {TITLE_MAX_LENGTH} characters.")
    conversation.title = title
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def do_delete_conversation(conversation: Conversation) -> Conversation:
    """Soft delete: gone for its owner at once, purged after the retention period."""
    conversation.deleted_at = timezone.now()
    conversation.save(update_fields=["deleted_at"])
    return conversation


def do_purge_deleted_conversations(*, now: datetime | None = None) -> int:
    """Remove, in the current tenant schema, conversations deleted longer ago than the retention period."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.CHAT_DELETED_RETENTION_DAYS)
    doomed = Conversation.objects.filter(deleted_at__isnull=False, deleted_at__lt=cutoff)
    count = doomed.count()
    doomed.delete()
    return count


def conversation_export(conversation: Conversation) -> dict[str, object]:
    """The owner's own copy of a conversation: what they see, nothing internal (no request ids)."""
    return {
        "id": str(conversation.id),
        "title": conversation.title or "New conversation",
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "messages": [
            {
                "role": message.role,
                "status": message.status,
                "created_at": message.created_at.isoformat(),
                "content": message.content if message.status == Message.Status.DONE else "",
                "error": message.error_for_user,
            }
            for message in conversation.messages.order_by("created_at")
        ],
    }


def conversation_export_markdown(conversation: Conversation) -> str:
    data = conversation_export(conversation)
    lines = [f"# {data['title']}", "", f"_Exported from ConvoSuite. Started {data['created_at']}._", ""]
    for message in data["messages"]:  # type: ignore[attr-defined]
        speaker = "You" if message["role"] == Message.Role.USER else "Assistant"
        lines += [f"## {speaker} · {message['created_at']}", ""]
        lines += [message["content"] or f"_({message['error'] or 'no answer'})_", ""]
    return "\n".join(lines)
