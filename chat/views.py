"""Thin views: parse, check access (tenant_view + access_* helpers), call one action, render."""

import json
import uuid
from typing import Any

from django.contrib import messages as flash
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from accounts.access import tenant_view
from accounts.requests import TenantRequest
from chat.actions import (
    MessageRejected,
    access_conversation_by_id,
    access_message_by_id,
    attach_reply_details,
    chat_availability,
    chat_models_for_tenant,
    conversation_export,
    conversation_export_markdown,
    conversations_for_user,
    do_delete_conversation,
    do_edit_and_resend,
    do_post_user_message,
    do_regenerate_reply,
    do_rename_conversation,
    do_set_conversation_model,
    do_start_conversation,
    do_stop_reply,
    search_conversations,
)
from chat.live import relay_reply
from chat.models import Conversation, Message
from convosuite.markdown import render_partial_markdown
from prompts.actions import access_agent_by_id, agents_for_end_users

SEARCH_LIMIT = 50


def _rejected(rejection: MessageRejected) -> HttpResponse:
    return HttpResponse(str(rejection), status=400, content_type="text/plain; charset=utf-8")


def _chat_context(request: TenantRequest, **extra: Any) -> dict[str, Any]:
    """What every chat page shows around the thread: the list, the pickers and whether answers are possible."""
    return {
        "conversations": conversations_for_user(request.user),
        "agents": agents_for_end_users(),
        "models": chat_models_for_tenant(),
        "availability": chat_availability(),
        **extra,
    }


@require_GET
@tenant_view()
def home(request: TenantRequest) -> HttpResponse:
    return render(request, "chat/home.html", _chat_context(request))


@require_POST
@tenant_view()
def new_conversation(request: TenantRequest) -> HttpResponse:
    """The chat home's message box (agent, model and first message), or an empty new conversation."""
    agent_id = request.POST.get("agent", "")
    agent = access_agent_by_id(agent_id) if agent_id else None
    try:
        conversation = do_start_conversation(
            request.user,
            agent=agent,
            model=request.POST.get("model", ""),
            first_message=request.POST.get("content", ""),
        )
    except MessageRejected as rejection:
        # The home page again, with what was typed and picked kept.
        context = _chat_context(
            request,
            compose_error=str(rejection),
            draft=request.POST.get("content", ""),
            selected_agent=agent_id,
            selected_model=request.POST.get("model", ""),
        )
        return render(request, "chat/home.html", context, status=400)
    return redirect("chat:conversation", conversation_id=conversation.id)


@require_GET
@tenant_view()
def conversation_detail(request: TenantRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = access_conversation_by_id(request.user, conversation_id)
    context = _chat_context(
        request,
        conversation=conversation,
        messages=attach_reply_details(list(conversation.messages.all())),
        selected_model=conversation.model,
    )
    return render(request, "chat/conversation.html", context)


@require_GET
@tenant_view()
def search(request: TenantRequest) -> HttpResponse:
    """The person's own conversations matching ?q=; htmx gets the sidebar's list, a browser the chat home
    with the results in the sidebar."""
    query = request.GET.get("q", "").strip()[:200]
    context: dict[str, Any] = {"search_query": query, "search_limit": SEARCH_LIMIT}
    if query:
        context["hits"] = search_conversations(request.user, query, limit=SEARCH_LIMIT)
    current = request.GET.get("c", "")
    if current:
        try:
            context["conversation"] = access_conversation_by_id(request.user, uuid.UUID(current))
        except (ValueError, Http404):
            pass
    if request.htmx:
        if not query:
            context["conversations"] = conversations_for_user(request.user)
            return render(request, "chat/_conversation_list.html", context)
        return render(request, "chat/_search_results.html", context)
    return render(request, "chat/home.html", _chat_context(request, **context))


@require_POST
@tenant_view()
def send_message(request: TenantRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = access_conversation_by_id(request.user, conversation_id)
    try:
        user_message, assistant_message = do_post_user_message(conversation, request.POST.get("content", ""))
    except MessageRejected as rejection:
        return _rejected(rejection)
    context = {
        "conversation": conversation,
        "user_message": user_message,
        "assistant_message": assistant_message,
    }
    return render(request, "chat/_send_response.html", context)


def _thread(request: TenantRequest, conversation: Conversation) -> HttpResponse:
    """The whole thread again, after a change that replaced part of it (regenerate, edit and resend)."""
    if not request.htmx:
        return redirect("chat:conversation", conversation_id=conversation.id)
    messages = attach_reply_details(list(conversation.messages.all()))
    return render(request, "chat/_thread.html", {"conversation": conversation, "messages": messages})


@require_POST
@tenant_view()
def regenerate_reply(request: TenantRequest, conversation_id: uuid.UUID, message_id: uuid.UUID) -> HttpResponse:
    conversation = access_conversation_by_id(request.user, conversation_id)
    message: Message = access_message_by_id(conversation, message_id)
    try:
        do_regenerate_reply(conversation, message)
    except MessageRejected as rejection:
        return _rejected(rejection)
    return _thread(request, conversation)


@require_POST
@tenant_view()
def edit_message(request: TenantRequest, conversation_id: uuid.UUID, message_id: uuid.UUID) -> HttpResponse:
    conversation = access_conversation_by_id(request.user, conversation_id)
    message: Message = access_message_by_id(conversation, message_id)
    try:
        do_edit_and_resend(conversation, message, request.POST.get("content", ""))
    except MessageRejected as rejection:
        return _rejected(rejection)
    return _thread(request, conversation)


@require_POST
@tenant_view()
def stop_reply(request: TenantRequest, conversation_id: uuid.UUID, message_id: uuid.UUID) -> HttpResponse:
    """Stop the answer being written; the page learns the outcome from the answer's event stream."""
    conversation = access_conversation_by_id(request.user, conversation_id)
    message: Message = access_message_by_id(conversation, message_id)
    try:
        do_stop_reply(message)
    except MessageRejected as rejection:
        return _rejected(rejection)
    if not request.htmx:
        return redirect("chat:conversation", conversation_id=conversation.id)
    return HttpResponse(status=202)


@require_POST
@tenant_view()
def set_model(request: TenantRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = access_conversation_by_id(request.user, conversation_id)
    try:
        do_set_conversation_model(conversation, request.POST.get("model", ""))
    except MessageRejected as rejection:
        return _rejected(rejection)
    if not request.htmx:
        return redirect("chat:conversation", conversation_id=conversation.id)
    return HttpResponse(status=204)


@require_GET
@tenant_view()
def message_fragment(request: TenantRequest, conversation_id: uuid.UUID, message_id: uuid.UUID) -> HttpResponse:
    """Polled by htmx while an answer is pending; the fragment stops polling once the answer is there."""
    conversation = access_conversation_by_id(request.user, conversation_id)
    message: Message = access_message_by_id(conversation, message_id)
    attach_reply_details([message])
    return render(request, "chat/_message.html", {"conversation": conversation, "message": message})


@require_POST
@tenant_view()
def rename_conversation(request: TenantRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = access_conversation_by_id(request.user, conversation_id)
    try:
        do_rename_conversation(conversation, request.POST.get("title", ""))
    except MessageRejected as rejection:
        if request.htmx:
            return _rejected(rejection)
        flash.error(request, str(rejection))
    return redirect("chat:conversation", conversation_id=conversation.id)


@require_POST
@tenant_view()
def delete_conversation(request: TenantRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = access_conversation_by_id(request.user, conversation_id)
    do_delete_conversation(conversation)
    flash.success(request, f"Deleted “{conversation}”.")
    return redirect("chat:home")


EXPORT_FORMATS = {"json": "application/json", "md": "text/markdown; charset=utf-8"}


@require_GET
@tenant_view()
def export_conversation(request: TenantRequest, conversation_id: uuid.UUID, export_format: str) -> HttpResponse:
    conversation = access_conversation_by_id(request.user, conversation_id)
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
    request: TenantRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponseBase:
    """Server-sent events: the answer while the worker streams it (its text, and the text so far rendered
    and sanitised like a finished answer), then the final rendered message. The page polls message_fragment
    instead if this connection cannot be kept."""
    conversation = access_conversation_by_id(request.user, conversation_id)
    message: Message = access_message_by_id(conversation, message_id)

    def render_final(current: Message) -> str:
        current.__dict__.pop("html", None)  # rendered Markdown is cached per instance; the content changed
        attach_reply_details([current])
        return render_to_string(
            "chat/_message.html", {"conversation": conversation, "message": current}, request
        )

    events = relay_reply(
        request.tenant.schema_name,
        message,
        render_final,
        render_partial=render_partial_markdown,
        last_event_id=request.headers.get("Last-Event-ID", ""),
    )
    response = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a proxy (nginx) must pass each event on at once
    return response
