"""Conversation actions: the views and the worker call these; nothing else changes chat state."""

import logging
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from chat.live import ReplyPublisher
from chat.models import Conversation, Message
from convosuite import faults
from convosuite.log_redaction import remember_sensitive_text
from gateway import screening
from gateway.config import is_offered, model_kind
from gateway.errors import GatewayError, StopRequested
from gateway.models import ModelCall
from gateway.policy import default_model_for_tenant, load_policy, request_stop, stop_requested
from gateway.service import complete
from gateway.streaming import StreamResult, stream
from keys.crypto import bulk_decryptor
from knowledge.retrieval import build_context_messages
from prompts.actions import AgentPrompt, agent_prompt_for
from prompts.models import PromptTemplate
from tenants.context import current_schema
from tenants.models import Tenant
from tenants.status import TENANT_FROZEN_MESSAGE, model_calls_allowed
from tenants.task_context import send_tenant_task_on_commit

logger = logging.getLogger(__name__)

TITLE_LENGTH = 60
TITLE_MAX_LENGTH = 200
REPLY_BUSY_MESSAGE = "An answer is still being written. Wait for it to finish, or stop it first."
MODEL_UNAVAILABLE_MESSAGE = "That model is not available in this workspace."


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


@dataclass(frozen=True)
class ModelChoice:
    alias: str
    is_default: bool


def chat_models_for_tenant() -> list[ModelChoice]:
    """The chat models people may pick: the tenant's allow-list, chat models the catalogue offers."""
    policy = load_policy(current_schema())
    return [
        ModelChoice(alias, alias == policy.default_model)
        for alias in policy.allowed_models
        if is_offered(alias) and model_kind(alias) == "chat"
    ]


def check_chat_model(model: str) -> str:
    """A model the person picked: blank (the workspace's default) or one of chat_models_for_tenant."""
    model = model.strip()
    if model and model not in {choice.alias for choice in chat_models_for_tenant()}:
        raise MessageRejected(MODEL_UNAVAILABLE_MESSAGE)
    return model


@dataclass(frozen=True)
class ChatAvailability:
    """Whether people can get answers now, and if not, why (shown before they type, not after)."""

    available: bool
    reason: str = ""


def chat_availability() -> ChatAvailability:
    schema = current_schema()
    if not model_calls_allowed(schema):
        return ChatAvailability(False, TENANT_FROZEN_MESSAGE)
    policy = load_policy(schema)
    if policy.kill_switch:
        reason = "The assistant has been switched off for this workspace by an administrator."
        if policy.kill_switch_reason:
            reason += f" Reason: {policy.kill_switch_reason}"
        return ChatAvailability(False, reason)
    return ChatAvailability(True)


@transaction.atomic
def do_start_conversation(
    user: User, agent: PromptTemplate | None = None, *, model: str = "", first_message: str = ""
) -> Conversation:
    """agent: a template with a production version (prompts.actions.access_agent_by_id), or None for the
    general assistant. model: blank (the workspace's default) or a model from chat_models_for_tenant.
    first_message: when given (the chat home's message box), it is posted at once; if it is refused, no
    conversation is created either."""
    if agent is not None:
        model = ""  # the agent's version names its model
    conversation = Conversation.objects.create(owner=user, agent=agent, model=check_chat_model(model))
    if first_message.strip():
        do_post_user_message(conversation, first_message)
    return conversation


def do_set_conversation_model(conversation: Conversation, model: str) -> Conversation:
    """The model the next answers of this conversation use (the answers already given keep theirs)."""
    conversation.model = check_chat_model(model)
    conversation.save(update_fields=["model", "updated_at"])
    return conversation


_MARKDOWN_NOISE = re.compile(r"^[#>*+\-\s]+|[*_`~]+")


def title_from_text(text: str) -> str:
    """A conversation's first title, from its first message: the first line with words in it, without
    Markdown marks, cut at a word boundary."""
    line = next((candidate for candidate in text.splitlines() if re.search(r"\w", candidate)), text)
    words = " ".join(_MARKDOWN_NOISE.sub(" ", line).split())
    if len(words) <= TITLE_LENGTH:
        return words
    cut = words[:TITLE_LENGTH].rsplit(" ", 1)[0] if " " in words[:TITLE_LENGTH] else words[:TITLE_LENGTH]
    return cut.rstrip(",;:.-") + "…"


def _clean_message_text(content: str) -> str:
    text = content.strip()
    if not text:
        raise MessageRejected("Type a message first.")
    if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise MessageRejected(f"Messages are limited to {settings.CHAT_MAX_MESSAGE_CHARS} characters.")
    return text


def _lock(conversation: Conversation) -> None:
    """One change to a conversation's thread at a time (two tabs sending at once)."""
    Conversation.objects.select_for_update().filter(id=conversation.id).values_list("id").first()


def reply_in_progress(conversation: Conversation) -> Message | None:
    """The answer being written in this conversation, if any. A pending answer older than any task can run
    no longer blocks the conversation (its worker died; the sweeper and redelivery deal with it)."""
    since = timezone.now() - timedelta(seconds=settings.CHAT_REPLY_BUSY_SECONDS)
    return Message.objects.filter(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.PENDING,
        created_at__gte=since,
    ).first()


def _check_can_ask(conversation: Conversation) -> None:
    if not model_calls_allowed(current_schema()):
        raise MessageRejected(TENANT_FROZEN_MESSAGE)
    if reply_in_progress(conversation) is not None:
        raise MessageRejected(REPLY_BUSY_MESSAGE)


def _start_reply(conversation: Conversation) -> Message:
    """A pending assistant reply; the worker writes it after commit."""
    reply = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.PENDING,
        request_id=uuid.uuid4(),
    )
    send_tenant_task_on_commit("chat.generate_assistant_reply", str(reply.id))
    return reply


@transaction.atomic
def do_post_user_message(conversation: Conversation, content: str) -> tuple[Message, Message]:
    """Store the user's message and a pending assistant reply; the worker fills the reply after commit.
    Refused while the conversation's previous answer is still being written."""
    text = _clean_message_text(content)
    _lock(conversation)
    _check_can_ask(conversation)
    user_message = Message.objects.create(conversation=conversation, role=Message.Role.USER, content=text)
    if not conversation.title:
        conversation.title = title_from_text(text)
    conversation.save(update_fields=["title", "updated_at"])
    return user_message, _start_reply(conversation)


def _last_message(conversation: Conversation) -> Message | None:
    return Message.objects.filter(conversation=conversation).order_by("-created_at").first()


@transaction.atomic
def do_regenerate_reply(conversation: Conversation, reply: Message) -> Message:
    """Answer the last question again (Regenerate, or Retry after a failure): the last answer, finished,
    stopped or failed, is replaced by a new pending one. Its model call stays in the gateway's records."""
    _lock(conversation)
    if reply.role != Message.Role.ASSISTANT or _last_message(conversation) != reply:
        raise MessageRejected("Only the last answer can be written again.")
    _check_can_ask(conversation)
    reply.delete()
    conversation.save(update_fields=["updated_at"])
    return _start_reply(conversation)


@transaction.atomic
def do_edit_and_resend(
    conversation: Conversation, question: Message, content: str
) -> tuple[Message, Message]:
    """Edit one of the person's messages and ask again from there: the messages after it (the answers to
    the old text and anything later) are removed, and a new answer is written."""
    text = _clean_message_text(content)
    _lock(conversation)
    if question.role != Message.Role.USER:
        raise MessageRejected("Only your own messages can be edited.")
    _check_can_ask(conversation)
    Message.objects.filter(conversation=conversation, created_at__gt=question.created_at).delete()
    question.content = text
    question.edited_at = timezone.now()
    question.save(update_fields=["content", "edited_at"])
    first = Message.objects.filter(conversation=conversation).order_by("created_at").first()
    if first == question and not conversation.title_set_by_user:
        conversation.title = title_from_text(text)
    conversation.save(update_fields=["title", "updated_at"])
    return question, _start_reply(conversation)


def do_stop_reply(reply: Message) -> None:
    """Stop an answer being written (the Stop button): the gateway ends the model call at its next chunk,
    and the worker keeps what was said as a stopped answer. An answer already finished is left alone."""
    if reply.role != Message.Role.ASSISTANT or reply.request_id is None:
        raise MessageRejected("Only an answer can be stopped.")
    if reply.status == Message.Status.PENDING:
        request_stop(current_schema(), reply.request_id)


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
            status__in=[Message.Status.DONE, Message.Status.STOPPED],
        )
        .exclude(content="")
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
    # Stopped while the task was still queued: no model call at all.
    if stop_requested(tenant_schema, message.request_id):
        message.status = Message.Status.STOPPED
        message.save(update_fields=["status"])
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
    model = agent.model if agent else (message.conversation.model or default_model_for_tenant(tenant_schema))
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
    elif isinstance(result.error, StopRequested):
        # The person pressed Stop: what was said is their answer, not a failure.
        message.status = Message.Status.STOPPED
    else:
        # Cut off (kill switch) or broken mid-way: keep what was said and say why it stopped.
        message.status = Message.Status.FAILED
        reason = result.error.user_message if result.error else "The answer was cut off."
        message.error_for_user = reason[:500]
    message.citations = citations if message.content else []
    message.save(update_fields=["content", "status", "error_for_user", "citations"])
    Conversation.objects.filter(id=message.conversation_id).update(updated_at=timezone.now())
    publisher.end(message.status)
    if message.status == Message.Status.DONE:
        _title_after_first_answer(message)


# --- titles ---------------------------------------------------------------------------------------------

TITLE_INSTRUCTIONS = (
    "Write a title of at most six words for the conversation below. Answer with the title only: no quotes, "
    "no full stop, no introduction."
)
_TITLE_LABEL = re.compile(r"^\s*(title\s*:\s*)", re.I)


def _title_after_first_answer(answer: Message) -> None:
    """Once the first answer is there, ask the model for a better title (CHAT_GENERATED_TITLES)."""
    if not settings.CHAT_GENERATED_TITLES:
        return
    conversation = answer.conversation
    if conversation.title_set_by_user:
        return
    if Message.objects.filter(conversation=conversation, role=Message.Role.ASSISTANT).count() != 1:
        return
    send_tenant_task_on_commit("chat.generate_conversation_title", str(conversation.id))


def clean_generated_title(text: str) -> str:
    """The model's title as one short line: first line, no "Title:", quotes, Markdown or final full stop."""
    line = next((candidate for candidate in text.splitlines() if candidate.strip()), "")
    line = _TITLE_LABEL.sub("", line)
    line = " ".join(_MARKDOWN_NOISE.sub(" ", line).split()).strip(" \"'“”‘’«».")
    if len(line) > TITLE_LENGTH:
        line = line[:TITLE_LENGTH].rsplit(" ", 1)[0] + "…"
    return line


def do_generate_conversation_title(conversation_id: uuid.UUID) -> str:
    """A title written by the workspace's default model from the first question and answer, through the
    gateway like any call (recorded, budgeted, refused when the assistant is switched off). The first
    message's title stays when the call fails or says nothing usable, or once the person renamed it."""
    conversation = Conversation.objects.filter(id=conversation_id, deleted_at__isnull=True).first()
    if conversation is None or conversation.title_set_by_user:
        return ""
    first_two = list(
        Message.objects.filter(conversation=conversation, status=Message.Status.DONE).order_by("created_at")[
            :2
        ]
    )
    if len(first_two) != 2 or first_two[0].role != Message.Role.USER:
        return ""
    question, answer = (message.content[:1500] for message in first_two)
    tenant_schema = current_schema()
    try:
        completion = complete(
            tenant_schema=tenant_schema,
            # One title call per conversation, even if the task is delivered twice.
            request_id=uuid.uuid5(conversation.id, "title"),
            user_id=conversation.owner_id,
            model=default_model_for_tenant(tenant_schema),
            messages=[
                {"role": "system", "content": TITLE_INSTRUCTIONS},
                {"role": "user", "content": f"Question: {question}\n\nAnswer: {answer}"},
            ],
            max_tokens=24,
            source="chat:title",
        )
    except GatewayError as failure:
        logger.info("conversation title not generated conversation=%s code=%s", conversation.id, failure.code)
        return ""
    title = clean_generated_title(completion.text)
    if len(title) < 3:
        return ""
    remember_sensitive_text(title)
    # Not if the person renamed it meanwhile (the update re-checks the flag in the same statement).
    updated = Conversation.objects.filter(id=conversation.id, title_set_by_user=False).update(title=title)
    return title if updated else ""


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
    conversation.title_set_by_user = True
    conversation.save(update_fields=["title", "title_set_by_user", "updated_at"])
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


ANSWERED = (Message.Status.DONE, Message.Status.STOPPED)


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
                "content": message.content if message.status in ANSWERED else "",
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


# --- what answered --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplyDetails:
    """Which model answered and what the answer used, from the gateway's record of the call."""

    model: str
    fallback_taken: bool
    tokens_in: int
    tokens_out: int
    cost: Decimal
    latency_ms: int

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


def attach_reply_details(messages: list[Message]) -> list[Message]:
    """Sets message.reply_details on each finished answer, with one query for all of them."""
    answers = {m.request_id: m for m in messages if m.role == Message.Role.ASSISTANT and m.request_id}
    for message in messages:
        message.__dict__["reply_details"] = None
    rows = ModelCall.objects.filter(request_id__in=list(answers)).exclude(status=ModelCall.Status.STARTED)
    for row in rows.values(
        "request_id", "model_requested", "model_alias_served", "fallback_taken", "tokens_in", "tokens_out",
        "cost", "latency_ms",
    ):  # fmt: skip
        answers[row["request_id"]].__dict__["reply_details"] = ReplyDetails(
            model=row["model_alias_served"] or row["model_requested"],
            fallback_taken=row["fallback_taken"],
            tokens_in=row["tokens_in"],
            tokens_out=row["tokens_out"],
            cost=row["cost"],
            latency_ms=row["latency_ms"],
        )
    return messages


# --- search ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchHit:
    conversation: Conversation
    # The matching text around the first match, as (text, is_match) pieces for the template to mark.
    snippet: list[tuple[str, bool]]
    in_title: bool


SNIPPET_CONTEXT = 60
MAX_SEARCH_TERMS = 8


def search_conversations(user: User, query: str, *, limit: int = 50) -> list[SearchHit]:
    """The person's own conversations whose title or messages contain every word of the query (any case).

    Titles and messages are encrypted at rest with the tenant's key, so the database cannot search them:
    the person's most recent CHAT_SEARCH_MAX_CONVERSATIONS conversations are read and decrypted here, in one
    query per kind, and matched in memory. The cost grows with that one person's history, never with the
    tenant's (docs/console.md, "Conversation search")."""
    terms = list(dict.fromkeys(query.casefold().split()))[:MAX_SEARCH_TERMS]
    if not terms:
        return []
    conversations = list(
        Conversation.objects.filter(owner=user, deleted_at__isnull=True)
        .order_by("-updated_at")
        .annotate(raw_title=Cast("title", TextField()))
        .defer("title")[: settings.CHAT_SEARCH_MAX_CONVERSATIONS]
    )
    decrypt = bulk_decryptor(current_schema())
    texts: dict[uuid.UUID, list[str]] = defaultdict(list)
    rows = (
        Message.objects.filter(conversation_id__in=[c.id for c in conversations])
        .exclude(content="")
        .order_by("created_at")
        .annotate(raw=Cast("content", TextField()))
        .values_list("conversation_id", "raw")
    )
    for conversation_id, token in rows:
        texts[conversation_id].append(decrypt(token))
    hits = []
    for conversation in conversations:
        title = decrypt(conversation.raw_title) if conversation.raw_title else ""  # type: ignore[attr-defined]
        conversation.title = title
        haystack = "\n".join([title, *texts[conversation.id]]).casefold()
        if not all(term in haystack for term in terms):
            continue
        in_title = terms[0] in title.casefold()
        source = title if in_title else next(t for t in texts[conversation.id] if terms[0] in t.casefold())
        hits.append(SearchHit(conversation, _snippet(source, terms), in_title))
        if len(hits) == limit:
            break
    return hits


def _snippet(text: str, terms: list[str]) -> list[tuple[str, bool]]:
    folded = text.casefold()
    first = folded.find(terms[0])
    start = max(0, first - SNIPPET_CONTEXT)
    end = min(len(text), first + len(terms[0]) + SNIPPET_CONTEXT * 2)
    window = " ".join(text[start:end].split())
    pattern = re.compile("|".join(re.escape(term) for term in sorted(terms, key=len, reverse=True)), re.I)
    pieces: list[tuple[str, bool]] = [("…" if start else "", False)]
    position = 0
    for match in pattern.finditer(window):
        pieces += [(window[position : match.start()], False), (match.group(0), True)]
        position = match.end()
    pieces += [(window[position:], False), ("…" if end < len(text) else "", False)]
    return [piece for piece in pieces if piece[0]]
