"""What a platform admin can read under an open break-glass grant. Each function runs inside
tenant_context(grant.tenant) and is reached only through platform_console.views.under_grant, which records
the read as an audit event in the tenant's schema first."""

import uuid

from django.db.models import Count, QuerySet
from django.http import Http404

from chat.models import Conversation
from gateway.models import ModelCall


def conversations_under_grant() -> QuerySet[Conversation]:
    return (
        Conversation.objects.select_related("owner")
        .annotate(message_count=Count("messages"))
        .order_by("-updated_at")
    )


def access_conversation_under_grant(conversation_id: uuid.UUID) -> Conversation:
    conversation = Conversation.objects.select_related("owner").filter(id=conversation_id).first()
    if conversation is None:
        raise Http404("No such conversation in this tenant.")
    return conversation


def model_calls_under_grant() -> QuerySet[ModelCall]:
    return (
        ModelCall.objects.select_related("user")
        .defer("messages", "response", "tool_calls")
        .order_by("-created_at")
    )


def access_model_call_under_grant(call_id: uuid.UUID) -> ModelCall:
    call = ModelCall.objects.select_related("user").filter(id=call_id).first()
    if call is None:
        raise Http404("No such model call in this tenant.")
    return call
