"""Thin views: parse, check access (tenant_view + access_* helpers), call one action, render."""

import uuid

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
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
from chat.live import relay_reply
from chat.models import Message


@require_GET
@tenant_view()
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "chat/home.html", {"conversations": conversations_for_user(request.user)})  # type: ignore[arg-type]


@require_POST
@tenant_view()
def new_conversation(request: HttpRequest) -> HttpResponse:
    conversation = do_start_conversation(request.user)  # type: ignore[arg-type]
    return redirect("chat:conversation", conversation_id=conversation.id)


@require_GET
@tenant_view()
def conversation_detail(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = access_conversation_by_id(request.user, conversation_id)  # type: ignore[arg-type]
    context = {
        "conversation": conversation,
        "messages": list(conversation.messages.all()),
        "conversations": conversations_for_user(request.user),  # type: ignore[arg-type]
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


@require_GET
@tenant_view()
def message_stream(
    request: HttpRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponseBase:
    """Server-sent events: the answer's tokens while the worker streams it, then the final rendered message.
    The page polls message_fragment instead if this connection cannot be kept."""
    conversation = access_conversation_by_id(request.user, conversation_id)  # type: ignore[arg-type]
    message: Message = access_message_by_id(conversation, message_id)

    def render_final(current: Message) -> str:
        current.__dict__.pop("html", None)  # rendered Markdown is cached per instance; the content changed
        return render_to_string(
            "chat/_message.html", {"conversation": conversation, "message": current}, request
        )

    events = relay_reply(
        request.tenant.schema_name,  # type: ignore[attr-defined]
        message,
        render_final,
        last_event_id=request.headers.get("Last-Event-ID", ""),
    )
    response = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a proxy (nginx) must pass each event on at once
    return response
