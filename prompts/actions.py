"""Prompt actions: the console views, the import and the chat call these; nothing else changes prompts.

Every state change writes its audit event in the same transaction (audit.actions.do_record_audit_event).
Audit details carry ids, names and version numbers, never prompt text.
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Max, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from audit.actions import do_record_audit_event
from audit.models import AuditEvent
from gateway.config import catalogue_aliases, is_offered, model_max_tokens
from prompts.models import PRODUCTION, STAGING, PromptLabel, PromptTemplate, PromptVersion
from prompts.variables import PromptVariableError, check_template, render_prompt

LABEL_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
MAX_BODY_CHARS = 20_000
MAX_KNOWLEDGE_BASES = 20
STANDARD_LABELS = (PRODUCTION, STAGING)


class PromptError(ValueError):
    """Input that cannot be accepted; the message is shown to the admin as is."""


@dataclass
class VersionDraft:
    """What an admin submits for a new version, already parsed (the form or an import builds it)."""

    body: str
    model: str
    temperature: Decimal
    max_tokens: int
    variables: dict[str, str] = field(default_factory=dict)
    knowledge_base_ids: list[Any] = field(default_factory=list)
    message: str = ""

    def fingerprint(self) -> str:
        return json.dumps(
            [
                self.body,
                self.model,
                str(self.temperature),
                self.max_tokens,
                self.variables,
                self.knowledge_base_ids,
            ],
            sort_keys=True,
        )


def draft_from_version(version: PromptVersion, message: str = "") -> VersionDraft:
    return VersionDraft(
        body=version.body,
        model=version.model,
        temperature=version.temperature,
        max_tokens=version.max_tokens,
        variables=version.variables,
        knowledge_base_ids=list(version.knowledge_base_ids),
        message=message,
    )


def offered_models() -> list[str]:
    return catalogue_aliases()


def check_draft(draft: VersionDraft) -> None:
    """Raise PromptError with a message the admin can act on; nothing is stored."""
    if not draft.body.strip():
        raise PromptError("The prompt is empty.")
    if len(draft.body) > MAX_BODY_CHARS:
        raise PromptError(f"Prompts are limited to {MAX_BODY_CHARS} characters.")
    if not is_offered(draft.model):
        raise PromptError(
            f"Model {draft.model!r} is not offered here. Choose one of: {', '.join(offered_models())}."
        )
    model_limit = model_max_tokens(draft.model)
    if not 1 <= draft.max_tokens <= model_limit:
        raise PromptError(f"Max tokens must be between 1 and {model_limit} for {draft.model}.")
    if not Decimal("0") <= draft.temperature <= Decimal("2"):
        raise PromptError("Temperature must be between 0 and 2.")
    if draft.temperature != draft.temperature.quantize(Decimal("0.01")):
        raise PromptError("Temperature takes at most two decimals.")
    if len(draft.knowledge_base_ids) > MAX_KNOWLEDGE_BASES or not all(
        isinstance(kb, (int, str)) and not isinstance(kb, bool) and len(str(kb)) <= 64
        for kb in draft.knowledge_base_ids
    ):
        raise PromptError(f"Knowledge bases: at most {MAX_KNOWLEDGE_BASES} ids (numbers or short text).")
    if len(draft.message) > 500:
        raise PromptError("The version message is limited to 500 characters.")
    try:
        check_template(draft.body, draft.variables)
    except PromptVariableError as problem:
        raise PromptError(str(problem)) from None


def parse_decimal(text: str, label: str) -> Decimal:
    try:
        return Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise PromptError(f"{label} must be a number.") from None


def parse_int(text: str, label: str) -> int:
    try:
        return int(text.strip())
    except (ValueError, AttributeError):
        raise PromptError(f"{label} must be a whole number.") from None


def parse_knowledge_base_ids(text: str) -> list[Any]:
    ids: list[Any] = []
    for raw in re.split(r"[,\s]+", text.strip()):
        if raw:
            ids.append(int(raw) if raw.isdigit() else raw)
    return ids


def check_label_name(name: str) -> str:
    name = name.strip().lower()
    if not LABEL_RE.match(name):
        raise PromptError(
            "Label names use a-z, 0-9 and -, start with a letter, and are at most 40 characters."
        )
    return name


def check_template_name(name: str, *, excluding: PromptTemplate | None = None) -> str:
    name = " ".join(name.split())
    if not name:
        raise PromptError("Give the template a name.")
    if len(name) > 100:
        raise PromptError("Names are limited to 100 characters.")
    clash = PromptTemplate.objects.filter(name__iexact=name)
    if excluding is not None:
        clash = clash.exclude(pk=excluding.pk)
    if clash.exists():
        raise PromptError(f"A template named {name!r} already exists.")
    return name


# --- reading --------------------------------------------------------------------------------------------


def access_template_by_id(template_id: uuid.UUID) -> PromptTemplate:
    """Callers are tenant admins (the view's gate); other tenants' ids simply do not exist in this schema."""
    template = PromptTemplate.objects.filter(id=template_id).first()
    if template is None:
        raise Http404("No such prompt template.")
    return template


def access_version_by_number(template: PromptTemplate, number: int) -> PromptVersion:
    version = PromptVersion.objects.filter(template=template, number=number).first()
    if version is None:
        raise Http404("No such version.")
    return version


def templates_for_console() -> QuerySet[PromptTemplate]:
    return (
        PromptTemplate.objects.annotate(latest_number=Max("versions__number"))
        .prefetch_related("labels__version")
        .order_by("name")
    )


def labels_by_version(template: PromptTemplate) -> dict[uuid.UUID, list[str]]:
    result: dict[uuid.UUID, list[str]] = {}
    for label in PromptLabel.objects.filter(template=template):
        result.setdefault(label.version_id, []).append(label.name)
    return result


def template_history(template: PromptTemplate, limit: int = 200) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(kind__startswith="prompts.", details__template_id=str(template.id))
        .select_related("actor")
        .order_by("-created_at", "-id")[:limit]
    )


def agents_for_end_users() -> list[PromptTemplate]:
    """Templates with a production version: what end-users can pick (name and description only)."""
    return list(PromptTemplate.objects.filter(labels__name=PRODUCTION).order_by("name"))


def access_agent_by_id(template_id: uuid.UUID | str) -> PromptTemplate:
    try:
        agent_id = uuid.UUID(str(template_id))
    except ValueError:
        raise Http404("No such agent.") from None
    agent = PromptTemplate.objects.filter(id=agent_id, labels__name=PRODUCTION).first()
    if agent is None:
        raise Http404("No such agent.")
    return agent


def production_version(template_id: uuid.UUID) -> PromptVersion | None:
    label = (
        PromptLabel.objects.filter(template_id=template_id, name=PRODUCTION).select_related("version").first()
    )
    return label.version if label is not None else None


@dataclass(frozen=True)
class AgentPrompt:
    system_prompt: str
    model: str
    temperature: Decimal
    max_tokens: int
    knowledge_base_ids: list[Any]
    version_id: uuid.UUID


def agent_prompt_for(template_id: uuid.UUID, *, user: User, tenant_name: str) -> AgentPrompt | None:
    """The system prompt of the template's production version, filled for this user (None: no version)."""
    version = production_version(template_id)
    if version is None:
        return None
    runtime = {
        "user_name": user.display_name or user.get_username(),
        "tenant_name": tenant_name,
        "today": timezone.localdate().isoformat(),
    }
    return AgentPrompt(
        system_prompt=render_prompt(version.body, version.variables, runtime),
        model=version.model,
        temperature=version.temperature,
        max_tokens=version.max_tokens,
        knowledge_base_ids=list(version.knowledge_base_ids),
        version_id=version.id,
    )


# --- changing -------------------------------------------------------------------------------------------


def _actor_label(user: User | None) -> str:
    return str(user) if user is not None else ""


def _template_details(template: PromptTemplate, **extra: Any) -> dict[str, Any]:
    return {"template_id": str(template.id), "template_name": template.name, **extra}


@transaction.atomic
def do_create_prompt_template(
    *,
    name: str,
    description: str,
    draft: VersionDraft,
    acting_user: User | None,
    labels: tuple[str, ...] = (PRODUCTION,),
) -> PromptTemplate:
    name = check_template_name(name)
    if len(description) > 300:
        raise PromptError("The description is limited to 300 characters.")
    check_draft(draft)
    template = PromptTemplate.objects.create(name=name, description=description.strip())
    do_record_audit_event(
        kind="prompts.template_created", actor=acting_user, details=_template_details(template)
    )
    do_publish_prompt_version(template, draft, acting_user=acting_user, labels=labels)
    return template


@transaction.atomic
def do_update_template_details(
    template: PromptTemplate, *, name: str, description: str, acting_user: User | None
) -> PromptTemplate:
    new_name = check_template_name(name, excluding=template)
    if len(description) > 300:
        raise PromptError("The description is limited to 300 characters.")
    if (new_name, description.strip()) == (template.name, template.description):
        return template
    old_name = template.name
    template.name, template.description, template.updated_at = new_name, description.strip(), timezone.now()
    template.save(update_fields=["name", "description", "updated_at"])
    do_record_audit_event(
        kind="prompts.template_renamed",
        actor=acting_user,
        details=_template_details(template, old_name=old_name),
    )
    return template


@transaction.atomic
def do_publish_prompt_version(
    template: PromptTemplate,
    draft: VersionDraft,
    *,
    acting_user: User | None,
    labels: tuple[str, ...] | list[str] = (),
    author_label: str = "",
    created_at: Any = None,
    number: int | None = None,
) -> PromptVersion:
    """A new immutable version (number = latest + 1), then the requested labels moved onto it."""
    check_draft(draft)
    # Serialises concurrent publishes of one template, so version numbers never collide.
    PromptTemplate.objects.select_for_update().filter(pk=template.pk).first()
    if number is None:
        number = (template.versions.aggregate(m=Max("number"))["m"] or 0) + 1
    version = PromptVersion.objects.create(
        template=template,
        number=number,
        body=draft.body,
        variables=dict(sorted(draft.variables.items())),
        model=draft.model,
        temperature=draft.temperature,
        max_tokens=draft.max_tokens,
        knowledge_base_ids=draft.knowledge_base_ids,
        author=acting_user,
        author_label=author_label or _actor_label(acting_user),
        message=draft.message.strip(),
        created_at=created_at or timezone.now(),
    )
    PromptTemplate.objects.filter(pk=template.pk).update(updated_at=timezone.now())
    do_record_audit_event(
        kind="prompts.version_published",
        actor=acting_user,
        details=_template_details(template, version=version.number),
    )
    for label in labels:
        do_move_label(template, label, version, acting_user=acting_user)
    return version


@transaction.atomic
def do_move_label(
    template: PromptTemplate,
    label_name: str,
    version: PromptVersion,
    *,
    acting_user: User | None,
    reason: str = "",
) -> PromptLabel | None:
    """Point a label at a version (promotion or rollback). Returns None if it already pointed there."""
    label_name = check_label_name(label_name)
    if version.template_id != template.pk:
        raise PromptError("That version belongs to another template.")
    label = PromptLabel.objects.select_for_update().filter(template=template, name=label_name).first()
    old_number: int | None = None
    if label is None:
        label = PromptLabel.objects.create(
            template=template, name=label_name, version=version, moved_by=acting_user
        )
    else:
        if label.version_id == version.pk:
            return None
        old_number = PromptVersion.objects.values_list("number", flat=True).get(pk=label.version_id)
        label.version, label.moved_by, label.moved_at = version, acting_user, timezone.now()
        label.save(update_fields=["version", "moved_by", "moved_at"])
    PromptTemplate.objects.filter(pk=template.pk).update(updated_at=timezone.now())
    do_record_audit_event(
        kind="prompts.label_moved",
        actor=acting_user,
        details=_template_details(
            template, label=label_name, from_version=old_number, to_version=version.number, reason=reason
        ),
    )
    return label


@transaction.atomic
def do_remove_label(template: PromptTemplate, label_name: str, *, acting_user: User | None) -> None:
    if label_name == PRODUCTION:
        raise PromptError("The production label can be moved but not removed: the chat uses it.")
    label = PromptLabel.objects.select_for_update().filter(template=template, name=label_name).first()
    if label is None:
        return
    old_number = label.version.number
    label.delete()
    do_record_audit_event(
        kind="prompts.label_removed",
        actor=acting_user,
        details=_template_details(template, label=label_name, from_version=old_number, to_version=None),
    )
