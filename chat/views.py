"""Thin views: parse, check access (tenant_view + access_* helpers), call one action, render."""

import uuid

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.access import tenant_view
from chat.actions import (
    MessageRejected,
    access_conversation_by_id,
    access_message_by_id,
    conversations_for_user,
    do_post_user_message,
    do_start_conversation,
)
from chat.models import Message
from prompts.actions import access_agent_by_id, agents_for_end_users


@require_GET
@tenant_view()
def home(request: HttpRequest) -> HttpResponse:
    context = {"conversations": conversations_for_user(request.user), "agents": agents_for_end_users()}  # type: ignore[arg-type]
    return render(request, "chat/home.html", context)


@require_POST
@tenant_view()
def new_conversation(request: HttpRequest) -> HttpResponse:
    agent_id = request.POST.get("agent", "")
    agent = access_agent_by_id(agent_id) if agent_id else None
    conversation = do_start_conversation(request.user, agent=agent)  # type: ignore[arg-type]
    return redirect("chat:conversation", conversation_id=conversation.id)


@require_GET
@tenant_view()
def conversation_detail(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = access_conversation_by_id(request.user, conversation_id)  # type: ignore[arg-type]
    context = {
        "conversation": conversation,
        "messages": list(conversation.messages.all()),
        "conversations": conversations_for_user(request.user),  # type: ignore[arg-type]
        "agents": agents_for_end_users(),
    }
    return render(request, "chat/conversation.html", context)


@require_POST
@tenant_view()
def send_message(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = access_conversation_by_id(request.user, conversation_id)  # type: ignore[arg-type]
    try:
        user_message, assistant_message = do_post_user_message(conversation, request.POST.get("content", ""))
    except MessageRejected as rejection:
        return HttpResponse(str(rejection), status=400, content_type="text/plain; charset=utf-8")
    context = {
        "conversation": conversation,
        "user_message": user_message,
        "assistant_message": assistant_message,
    }
    return render(request, "chat/_send_response.html", context)


@require_GET
@tenant_view()
def message_fragment(request: HttpRequest, conversation_id: uuid.UUID, message_id: uuid.UUID) -> HttpResponse:
    """Polled by htmx while an answer is pending; the fragment stops polling once the answer is there."""
    conversation = access_conversation_by_id(request.user, conversation_id)  # type: ignore[arg-type]
    message: Message = access_message_by_id(conversation, message_id)
    return render(request, "chat/_message.html", {"conversation": conversation, "message": message})
