"""Conversation actions: the views and the worker call these; nothing else changes chat state."""

import uuid

from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from chat.models import Conversation, Message
from gateway.service import GatewayError, complete
from knowledge.retrieval import build_context_messages
from tenants.context import current_schema

TITLE_LENGTH = 60


class MessageRejected(ValueError):
    """User input that cannot be accepted; the message is shown to the user."""


def access_conversation_by_id(user: User, conversation_id: uuid.UUID) -> Conversation:
    """The user's own conversation, or 404: a colleague's conversation looks exactly like a missing one."""
    conversation = Conversation.objects.filter(id=conversation_id, owner=user).first()
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def access_message_by_id(conversation: Conversation, message_id: uuid.UUID) -> Message:
    message = Message.objects.filter(id=message_id, conversation=conversation).first()
    if message is None:
        raise Http404("No such message.")
    return message


def conversations_for_user(user: User) -> list[Conversation]:
    return list(Conversation.objects.filter(owner=user).order_by("-updated_at")[:200])


def do_start_conversation(user: User) -> Conversation:
    return Conversation.objects.create(owner=user)


@transaction.atomic
def do_post_user_message(conversation: Conversation, content: str) -> tuple[Message, Message]:
    """Store the user's message and a pending assistant reply; the worker fills the reply after commit."""
    text = content.strip()
    if not text:
        raise MessageRejected("Type a message first.")
    if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise MessageRejected(f"Messages are limited to {settings.CHAT_MAX_MESSAGE_CHARS} characters.")
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

    from chat.tasks import generate_assistant_reply

    tenant_schema = current_schema()
    message_id = str(assistant_message.id)
    transaction.on_commit(lambda: generate_assistant_reply.delay(tenant_schema, message_id))
    return user_message, assistant_message


def _history_for_model(assistant_message: Message) -> list[dict[str, str]]:
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
    return [{"role": "system", "content": settings.CHAT_SYSTEM_PROMPT}, *history]


def do_generate_assistant_reply(message_id: uuid.UUID) -> None:
    """Ask the model through the gateway and store the answer. Safe to run twice for one message."""
    message = (
        Message.objects.select_related("conversation")
        .filter(id=message_id, role=Message.Role.ASSISTANT)
        .first()
    )
    if message is None or message.status != Message.Status.PENDING or message.request_id is None:
        return
    messages = _history_for_model(message)
    question = messages[-1]["content"] if messages[-1]["role"] == Message.Role.USER else ""
    context_messages, citations = build_context_messages(message.conversation, question)
    messages = [messages[0], *context_messages, *messages[1:]]
    try:
        completion = complete(
            tenant_schema=current_schema(),
            request_id=message.request_id,
            user_id=message.conversation.owner_id,
            model=settings.GATEWAY_DEFAULT_MODEL,
            messages=messages,
        )
    except GatewayError as failure:
        message.status = Message.Status.FAILED
        message.error_for_user = failure.user_message[:500]
        message.save(update_fields=["status", "error_for_user"])
        return
    message.content = completion.text
    message.status = Message.Status.DONE
    message.citations = citations
    message.save(update_fields=["content", "status", "citations"])
    Conversation.objects.filter(id=message.conversation_id).update(updated_at=timezone.now())
