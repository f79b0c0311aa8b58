"""Thin views: parse, check access (tenant_view + access_* helpers), call one action, render."""

import json
import uuid

from django.contrib import messages as flash
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from accounts.access import tenant_view
from chat.actions import (
    MessageRejected,
    access_conversation_by_id,
    access_message_by_id,
    conversation_export,
    conversation_export_markdown,
    conversations_for_user,
    do_delete_conversation,
    do_post_user_message,
    do_rename_conversation,
    do_start_conversation,
)
from chat.live import relay_reply
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


@require_POST
@tenant_view()
def rename_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = access_conversation_by_id(request.user, conversation_id)  # type: ignore[arg-type]
    try:
        do_rename_conversation(conversation, request.POST.get("title", ""))
    except MessageRejected as rejection:
        if request.htmx:  # type: ignore[attr-defined]
            return HttpResponse(str(rejection), status=400, content_type="text/plain; charset=utf-8")
        flash.error(request, str(rejection))
    return redirect("chat:conversation", conversation_id=conversation.id)


@require_POST
@tenant_view()
def delete_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = access_conversation_by_id(request.user, conversation_id)  # type: ignore[arg-type]
    do_delete_conversation(conversation)
    flash.success(request, f"Deleted “{conversation}”.")
    return redirect("chat:home")


EXPORT_FORMATS = {"json": "application/json", "md": "text/markdown; charset=utf-8"}


@require_GET
@tenant_view()
def export_conversation(request: HttpRequest, conversation_id: uuid.UUID, export_format: str) -> HttpResponse:
    conversation = access_conversation_by_id(request.user, conversation_id)  # type: ignore[arg-type]
    if export_format not in EXPORT_FORMATS:
        raise Http404("Conversations can be exported as .json or .md.")
    if export_format == "json":
        body = json.dumps(conversation_export(conversation), indent=2, ensure_ascii=False)
    else:
        body = conversation_export_markdown(conversation)
    response = HttpResponse(body, content_type=EXPORT_FORMATS[export_format])
    filename = (
        f"{slugify(conversation.title)[:60] or 'conversation'}-{str(conversation.id)[:8]}.{export_format}"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


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
