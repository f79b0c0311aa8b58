"""What a platform admin can read under an open break-glass grant. Each function runs inside
tenant_context(grant.tenant) and is reached only through platform_console.views.under_grant, which records
the read as an audit event in the tenant's schema first."""

import uuid

from django.db.models import Count, QuerySet
from django.http import Http404

from chat.models import Conversation
from gateway.models import ModelCall
from knowledge.models import Document, KnowledgeBase
from prompts.models import PromptTemplate, PromptVersion


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


def prompt_templates_under_grant() -> QuerySet[PromptTemplate]:
    return PromptTemplate.objects.annotate(version_count=Count("versions", distinct=True)).order_by("name")


def access_prompt_template_under_grant(template_id: uuid.UUID) -> PromptTemplate:
    template = PromptTemplate.objects.filter(id=template_id).first()
    if template is None:
        raise Http404("No such prompt template in this tenant.")
    return template


def prompt_versions_under_grant(template: PromptTemplate) -> list[PromptVersion]:
    """Newest first, each with the names of the labels pointing at it (bodies decrypt through the ORM fields)."""
    versions = list(template.versions.select_related("author").prefetch_related("labels").order_by("-number"))
    for version in versions:
        version.label_names = sorted(label.name for label in version.labels.all())  # type: ignore[attr-defined]
    return versions


def knowledge_bases_under_grant() -> QuerySet[KnowledgeBase]:
    return KnowledgeBase.objects.annotate(document_count=Count("documents")).order_by("name")


def access_knowledge_base_under_grant(knowledge_base_id: uuid.UUID) -> KnowledgeBase:
    knowledge_base = KnowledgeBase.objects.filter(id=knowledge_base_id).first()
    if knowledge_base is None:
        raise Http404("No such knowledge base in this tenant.")
    return knowledge_base


def documents_under_grant(knowledge_base: KnowledgeBase) -> QuerySet[Document]:
    return knowledge_base.documents.select_related("active_version", "latest_version").order_by("name")
