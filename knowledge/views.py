"""Console pages for knowledge bases (tenant admins) and the passage view behind chat citations (members).
Thin: parse, check access (tenant_view + access_* helpers), call one action, render."""

import time
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.access import tenant_view
from convosuite.markdown import render_untrusted_markdown
from knowledge.actions import (
    KnowledgeInputError,
    access_document_by_id,
    access_knowledge_base_by_id,
    access_passage_by_id,
    do_create_knowledge_base,
    do_delete_document,
    do_delete_knowledge_base,
    do_update_knowledge_base_settings,
    do_upload_documents,
    documents_with_versions,
    passage_in_context,
)
from knowledge.embeddings import EmbeddingUnavailable, embedding_model_choices
from knowledge.models import KnowledgeBase
from knowledge.parsing import human_size
from knowledge.retrieval import search_knowledge_bases

ADMIN = ["tenant_admin"]


def _bad_request(message: str, target: str = "#upload-error") -> HttpResponse:
    """A 400 with the reason; htmx shows it in `target` (the page lets htmx swap 4xx responses)."""
    response = HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
    response["HX-Retarget"] = target
    response["HX-Reswap"] = "innerHTML"
    return response


def _upload_too_large(request: HttpRequest) -> HttpResponse | None:
    """Refuse an oversized request before Django spools its files to disk."""
    files = settings.KNOWLEDGE_MAX_FILES_PER_UPLOAD
    limit = settings.KNOWLEDGE_MAX_UPLOAD_BYTES * files + (1 << 20)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= limit:
        return None
    response = _bad_request(
        f"The upload is too large: at most {files} file{'s' if files != 1 else ''} of "
        f"{human_size(settings.KNOWLEDGE_MAX_UPLOAD_BYTES)} each."
    )
    response.status_code = 413
    return response


def _render_documents(request: HttpRequest, knowledge_base: KnowledgeBase) -> HttpResponse:
    return render(request, "console/knowledge/_documents.html", _documents_context(knowledge_base))


def _documents_context(knowledge_base: KnowledgeBase) -> dict[str, object]:
    documents = documents_with_versions(knowledge_base)
    pending = any(d.latest_version is not None and not d.latest_version.is_settled for d in documents)
    return {"knowledge_base": knowledge_base, "documents": documents, "polling": pending}


@require_GET
@tenant_view(roles=ADMIN)
def knowledge_home(request: HttpRequest) -> HttpResponse:
    context = {
        "knowledge_bases": list(KnowledgeBase.objects.all()),
        "models": embedding_model_choices(),
    }
    return render(request, "console/knowledge/home.html", context)


@require_POST
@tenant_view(roles=ADMIN)
def create_knowledge_base(request: HttpRequest) -> HttpResponse:
    try:
        knowledge_base = do_create_knowledge_base(
            request.POST.get("name", ""),
            description=request.POST.get("description", ""),
            embedding_model=request.POST.get("embedding_model") or None,
            use_in_chat_by_default=request.POST.get("use_in_chat_by_default") == "on",
            acting_user=request.user,
        )
    except (KnowledgeInputError, ValueError) as rejection:
        context = {
            "knowledge_bases": list(KnowledgeBase.objects.all()),
            "models": embedding_model_choices(),
            "create_error": str(rejection),
            "form": request.POST,
        }
        return render(request, "console/knowledge/home.html", context, status=400)
    return redirect("knowledge:detail", knowledge_base_id=knowledge_base.id)


@require_GET
@tenant_view(roles=ADMIN)
def knowledge_base_detail(request: HttpRequest, knowledge_base_id: uuid.UUID) -> HttpResponse:
    knowledge_base = access_knowledge_base_by_id(knowledge_base_id)
    context = {**_documents_context(knowledge_base), "models": embedding_model_choices()}
    return render(request, "console/knowledge/detail.html", context)


@require_GET
@tenant_view(roles=ADMIN)
def document_list(request: HttpRequest, knowledge_base_id: uuid.UUID) -> HttpResponse:
    """Polled by htmx while any document is still being processed."""
    knowledge_base = access_knowledge_base_by_id(knowledge_base_id)
    return _render_documents(request, knowledge_base)


@require_POST
@tenant_view(roles=ADMIN)
def upload_documents(request: HttpRequest, knowledge_base_id: uuid.UUID) -> HttpResponse:
    knowledge_base = access_knowledge_base_by_id(knowledge_base_id)
    if too_large := _upload_too_large(request):
        return too_large
    try:
        do_upload_documents(knowledge_base, request.FILES.getlist("files"), acting_user=request.user)
    except KnowledgeInputError as rejection:
        return _bad_request(str(rejection))
    return _render_documents(request, knowledge_base)


@require_POST
@tenant_view(roles=ADMIN)
def upload_new_version(
    request: HttpRequest, knowledge_base_id: uuid.UUID, document_id: uuid.UUID
) -> HttpResponse:
    knowledge_base = access_knowledge_base_by_id(knowledge_base_id)
    document = access_document_by_id(knowledge_base, document_id)
    if too_large := _upload_too_large(request):
        return too_large
    try:
        do_upload_documents(
            knowledge_base,
            request.FILES.getlist("files"),
            acting_user=request.user,
            replace_document=document,
        )
    except KnowledgeInputError as rejection:
        return _bad_request(str(rejection))
    return _render_documents(request, knowledge_base)


@require_POST
@tenant_view(roles=ADMIN)
def delete_document(
    request: HttpRequest, knowledge_base_id: uuid.UUID, document_id: uuid.UUID
) -> HttpResponse:
    knowledge_base = access_knowledge_base_by_id(knowledge_base_id)
    do_delete_document(access_document_by_id(knowledge_base, document_id), acting_user=request.user)
    return _render_documents(request, knowledge_base)


@require_POST
@tenant_view(roles=ADMIN)
def update_settings(request: HttpRequest, knowledge_base_id: uuid.UUID) -> HttpResponse:
    knowledge_base = access_knowledge_base_by_id(knowledge_base_id)
    try:
        do_update_knowledge_base_settings(
            knowledge_base,
            embedding_model=request.POST.get("embedding_model", ""),
            use_in_chat_by_default=request.POST.get("use_in_chat_by_default") == "on",
            acting_user=request.user,
        )
    except KnowledgeInputError as rejection:
        return _bad_request(str(rejection), target="#settings-error")
    return redirect("knowledge:detail", knowledge_base_id=knowledge_base.id)


@require_POST
@tenant_view(roles=ADMIN)
def delete_knowledge_base(request: HttpRequest, knowledge_base_id: uuid.UUID) -> HttpResponse:
    do_delete_knowledge_base(access_knowledge_base_by_id(knowledge_base_id), acting_user=request.user)
    return redirect("knowledge:home")


@require_POST
@tenant_view(roles=ADMIN)
def test_query(request: HttpRequest, knowledge_base_id: uuid.UUID) -> HttpResponse:
    """Retrieval exactly as chat runs it, in this web process (the local model loads in ~0.3 s once)."""
    knowledge_base = access_knowledge_base_by_id(knowledge_base_id)
    question = request.POST.get("question", "").strip()[:2000]
    if not question:
        return _bad_request("Type a question to test retrieval.", target="#query-results")
    started = time.perf_counter()
    try:
        passages = search_knowledge_bases([knowledge_base], question, top_k=8, user_id=request.user.pk)
    except EmbeddingUnavailable as unavailable:
        return _bad_request(unavailable.user_message, target="#query-results")
    context = {
        "question": question,
        "passages": passages,
        "elapsed_ms": round((time.perf_counter() - started) * 1000),
    }
    return render(request, "console/knowledge/_query_results.html", context)


@require_GET
@tenant_view()
def passage_detail(request: HttpRequest, chunk_id: uuid.UUID) -> HttpResponse:
    """A cited passage, rendered as Markdown between its neighbours, with a way back: to the conversation
    in ?from= (a UUID only, no lookup: someone else's conversation is a 404 there), else the knowledge
    base for its admins, else the chat."""
    chunk = access_passage_by_id(request.user, chunk_id)
    try:
        back = reverse("chat:conversation", args=[uuid.UUID(request.GET.get("from", ""))])
        back_label = "Back to the conversation"
    except ValueError:
        if "tenant_admin" in (getattr(request.user, "roles", None) or []):
            back, back_label = (
                reverse("knowledge:detail", args=[chunk.knowledge_base_id]),
                "Back to the knowledge base",
            )
        else:
            back, back_label = reverse("chat:home"), "Back to the chat"
    context = {
        "chunk": chunk,
        "passages": [
            {"number": p.ordinal + 1, "html": render_untrusted_markdown(p.text), "cited": p.cited}
            for p in passage_in_context(chunk)
        ],
        "passage_number": chunk.ordinal + 1,
        "back_url": back,
        "back_label": back_label,
    }
    return render(request, "console/knowledge/passage.html", context)
