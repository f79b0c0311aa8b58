"""gateway.service.complete: one audited, policed model call for one tenant.

Order of work, which callers can rely on:
1. check the tenant context;
2. claim the request id: write a 'started' ModelCall under the request id's unique constraint. A second
   delivery of the same request finds it and never calls the provider again (it returns the recorded
   answer, waits for the owner, or declares the call interrupted once the owner's lease has expired);
3. policy: allow-list, kill switch, rate limits, budget reservation (gateway.policy);
4. the provider call along the tenant's fallback chain (gateway.routing);
5. complete the record (status, model served, fallback, tokens, cost, latency) and, in the same
   transaction, seal it into the tenant's model-call hash chain (audit.chain.seal_in_chain);
6. settle the reservation to the actual usage (or release it on failure);
7. only then return the answer (or raise a GatewayError whose user_message is safe to show).
"""

import datetime as dt
import functools
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field, JSONField
from django.utils import timezone

from audit.chain import seal_in_chain
from gateway import hooks, screening
from gateway import policy as gateway_policy
from gateway.config import CHAT_KIND, EMBEDDING_KIND, model_kind
from gateway.errors import (
    BudgetExceeded,
    CrossTenantBlocked,
    GatewayError,
    KillSwitchOn,
    ModelNotAllowed,
    ProviderUnavailable,
    RateLimited,
    TenantContextError,
)
from gateway.models import ModelCall
from gateway.routing import UNAVAILABLE_MESSAGE, AllProvidersFailed, call_chain
from keys.fields import EncryptedTextField
from tenants.context import current_schema, in_tenant_schema

logger = logging.getLogger(__name__)

__all__ = [
    "ClaimedCall",
    "Completion",
    "GatewayError",
    "TenantContextError",
    "begin_call",
    "complete",
    "fail_call",
    "load_provider_client",
    "settled_record",
]

INTERRUPTED_MESSAGE = "The assistant was interrupted while answering this message. Please send it again."
_ERROR_TYPES: dict[str, type[GatewayError]] = {
    cls.code: cls
    for cls in (
        ModelNotAllowed,
        KillSwitchOn,
        RateLimited,
        BudgetExceeded,
        ProviderUnavailable,
        CrossTenantBlocked,
    )
}


@functools.cache
def litellm_module() -> Any:
    """LiteLLM takes ~3 s to import: load it on the first model call, not in every web process."""
    # Use LiteLLM's bundled price map: never fetch it from the internet at import time.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # LiteLLM must not phone home or print request bodies.
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


def load_provider_client() -> None:
    litellm_module()
    from gateway.routing import router

    router()


@dataclass(frozen=True)
class Completion:
    call_id: uuid.UUID
    request_id: uuid.UUID
    text: str
    model_served: str
    tokens_in: int
    tokens_out: int
    cost: Decimal
    latency_ms: int
    model_requested: str = ""
    fallback_taken: bool = False
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


def _completion_from_record(call: ModelCall) -> Completion:
    return Completion(
        call_id=call.id,
        request_id=call.request_id,
        text=call.response,
        model_served=call.model_served,
        tokens_in=call.tokens_in,
        tokens_out=call.tokens_out,
        cost=call.cost,
        latency_ms=call.latency_ms,
        model_requested=call.model_requested,
        fallback_taken=call.fallback_taken,
        tool_calls=list(call.tool_calls or []),
    )


def _check_tenant_context(tenant_schema: str) -> None:
    active = current_schema()
    if not in_tenant_schema() or active != tenant_schema:
        raise TenantContextError(f"Model call for tenant {tenant_schema!r} attempted in schema {active!r}.")


def error_for_record(call: ModelCall) -> GatewayError:
    """The error a finished, failed call answers with, again (a redelivery gets what the first got)."""
    error_type = _ERROR_TYPES.get(call.error_code)
    if call.error_code == CrossTenantBlocked.code:
        return CrossTenantBlocked(call.error, call=call)
    if call.status == ModelCall.Status.REFUSED and error_type is not None:
        return error_type(call.error, call=call)
    if call.error_code == "interrupted":
        return ProviderUnavailable(INTERRUPTED_MESSAGE, call=call)
    return ProviderUnavailable(UNAVAILABLE_MESSAGE, call=call)


@dataclass(frozen=True)
class ClaimedCall:
    """A call this process owns: its 'started' record is written and its worst case is reserved."""

    call_id: uuid.UUID
    tenant_schema: str
    request_id: uuid.UUID
    model: str
    chain: list[str]
    max_tokens: int
    reservation: gateway_policy.Reservation

    @property
    def metadata(self) -> dict[str, str]:
        return {"tenant": self.tenant_schema, "request_id": str(self.request_id)}


def begin_call(
    *,
    tenant_schema: str,
    request_id: uuid.UUID,
    user_id: int | None,
    model: str,
    messages: list[dict[str, Any]],
    max_tokens: int | None,
    source: str,
    kind: str = CHAT_KIND,
    now: dt.datetime | None = None,
    api_key: gateway_policy.KeyLimits | None = None,
) -> ClaimedCall | None:
    """Steps 1-3 of every call path (complete, stream, embed): check the tenant context, claim the request
    id, then policy (allow-list -> kill switch -> rate limits -> budget reservation).

    Returns None when another delivery already claimed this request id (use settled_record). A refusal is
    recorded and raised as its GatewayError; a policy store failure is recorded and fails closed.
    kind: "chat" (max_tokens capped by the chain and always sent) or "embedding" (nothing generated).
    api_key: the limits of the API key the call is made with (the tenant API), reserved with the tenant's."""
    _check_tenant_context(tenant_schema)
    # Before anything is written or sent: another tenant's marker in the prompt stops the call here.
    screened = screening.screen(tenant_schema, screening.screen_messages(messages))
    if screened.foreign:
        _block_prompt(tenant_schema, request_id, user_id, model, source, screened)
        return None  # an earlier delivery blocked and reported it: settled_record answers
    call_id = _claim(request_id, user_id, model, screening.messages_for_record(messages, screened), source)
    if call_id is None:
        return None
    try:
        policy = gateway_policy.load_policy(tenant_schema, max_age=settings.GATEWAY_POLICY_CACHE_SECONDS)
        gateway_policy.check_model_allowed(policy, model)
        if model_kind(model) != kind:
            raise ModelNotAllowed(f"The model {model!r} is not a {kind} model.")
        chain = policy.chain_for(model)
        if kind == EMBEDDING_KIND:
            call_max_tokens = 0
        else:
            route_max = min(_route_max_tokens(alias) for alias in chain)
            # Always sent to the provider, so the reservation below is a true upper bound of the completion.
            call_max_tokens = max(1, min(max_tokens, route_max)) if max_tokens else route_max
        reservation = gateway_policy.reserve(
            tenant_schema=tenant_schema,
            request_id=request_id,
            user_id=user_id,
            model=model,
            prompt_tokens=gateway_policy.estimate_prompt_tokens(messages),
            max_tokens=call_max_tokens,
            now=now,
            policy=policy,
            api_key=api_key,
        )
    except GatewayError as refusal:
        logger.info(
            "model call refused tenant=%s request_id=%s model=%s code=%s",
            tenant_schema,
            request_id,
            model,
            refusal.code,
        )
        hooks.call_observed(
            hooks.CallObserved(tenant_schema, source, user_id, model, refused_code=refusal.code)
        )
        finish_record(
            call_id, status=ModelCall.Status.REFUSED, error_code=refusal.code, error=refusal.user_message
        )
        refusal.call = ModelCall.objects.get(id=call_id)
        raise
    except Exception:
        # The policy store failed (e.g. Redis down): fail closed, budgets cannot be enforced.
        logger.exception("policy check failed tenant=%s request_id=%s", tenant_schema, request_id)
        finish_record(
            call_id,
            status=ModelCall.Status.ERROR,
            error_code="policy_unavailable",
            error="The budget and policy store could not be reached; the call was not made.",
        )
        raise ProviderUnavailable(UNAVAILABLE_MESSAGE, call=ModelCall.objects.get(id=call_id)) from None
    # Listeners above the gateway (the anomaly watch) see every call that passed the policy.
    hooks.call_observed(hooks.CallObserved(tenant_schema, source, user_id, model, tokens=reservation.tokens))
    return ClaimedCall(call_id, tenant_schema, request_id, model, chain, call_max_tokens, reservation)


def _block_prompt(
    tenant_schema: str,
    request_id: uuid.UUID,
    user_id: int | None,
    model: str,
    source: str,
    screened: screening.Screening,
) -> None:
    """Record the blocked call as refused, its prompt withheld (it carries another tenant's data), and raise.
    The record names no user: a call carrying another tenant's data may carry that tenant's user id too (the
    incident keeps the id the caller passed). A redelivery finds the record and gets the same refusal."""
    call_id = _claim(request_id, None, model, [{"role": "system", "content": screening.WITHHELD}], source)
    if call_id is None:
        return
    blocked = screening.block(
        screening.HitReport(
            tenant_schema=tenant_schema,
            where=screening.PROMPT,
            findings=screened.foreign,
            request_id=str(request_id),
            user_id=user_id,
            model=model,
            source=source,
            details={"call_id": str(call_id)},
        )
    )
    finish_record(
        call_id, status=ModelCall.Status.REFUSED, error_code=blocked.code, error=blocked.user_message
    )
    blocked.call = ModelCall.objects.get(id=call_id)
    raise blocked


def fail_call(
    claimed: ClaimedCall, failure: AllProvidersFailed, started: float, message: str = UNAVAILABLE_MESSAGE
) -> ProviderUnavailable:
    """No model of the chain answered: record the error, give the reservation back, return the error to
    raise (its message is safe to show)."""
    logger.warning(
        "model call failed tenant=%s request_id=%s model=%s attempts=%d",
        claimed.tenant_schema,
        claimed.request_id,
        claimed.model,
        len(failure.errors),
    )
    finish_record(
        claimed.call_id,
        status=ModelCall.Status.ERROR,
        error_code=ProviderUnavailable.code,
        error=str(failure),
        latency_ms=int((time.perf_counter() - started) * 1000),
        max_tokens=claimed.max_tokens,
    )
    settle_or_leave_to_expiry(gateway_policy.release, claimed.reservation)
    return ProviderUnavailable(message, call=ModelCall.objects.get(id=claimed.call_id))


def complete(
    *,
    tenant_schema: str,
    request_id: uuid.UUID,
    user_id: int | None,
    model: str,
    messages: list[dict[str, Any]],
    max_tokens: int | None = None,
    source: str = "",
    now: dt.datetime | None = None,
    api_key: gateway_policy.KeyLimits | None = None,
) -> Completion:
    """One policed, recorded model call (see the module docstring for the order of work).

    max_tokens: the caller's cap, lowered to the catalogue's cap of every model in the fallback chain.
    source: where the call came from ("chat", "api", ...), kept on the record.
    now: the policy clock (budget calendar and rate windows); tests set it, callers leave it alone.
    api_key: the calling API key's own limits (gateway.policy.KeyLimits), if any."""
    claimed = begin_call(
        tenant_schema=tenant_schema,
        request_id=request_id,
        user_id=user_id,
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        source=source,
        now=now,
        api_key=api_key,
    )
    if claimed is None:
        return _answer_for_existing(tenant_schema, request_id)
    call_id, reservation, call_max_tokens = claimed.call_id, claimed.reservation, claimed.max_tokens

    started = time.perf_counter()
    try:
        routed = call_chain(
            claimed.chain, metadata=claimed.metadata, messages=messages, max_tokens=call_max_tokens
        )
    except AllProvidersFailed as failure:
        raise fail_call(claimed, failure, started) from failure

    latency_ms = int((time.perf_counter() - started) * 1000)
    response = routed.response
    choice = response.choices[0]
    text = choice.message.content or ""
    tool_calls = [tool_call.model_dump() for tool_call in (choice.message.tool_calls or [])]
    usage = response.usage
    tokens_in, tokens_out = int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)
    cost = routed.route.cost(tokens_in, tokens_out)
    answer = screening.screen(tenant_schema, [text, *(json.dumps(call) for call in tool_calls)])
    if answer.foreign:
        raise _block_answer(claimed, routed, answer, tokens_in, tokens_out, cost, latency_ms)
    if answer.own:
        text = screening.strip_canaries(text)
    fields: dict[str, Any] = {
        "model_served": str(response.model or ""),
        "model_alias_served": routed.route.alias,
        "fallback_taken": routed.fallback_taken,
        "provider": routed.route.provider,
        "response": text,
        "tool_calls": tool_calls,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost": cost,
        "latency_ms": latency_ms,
        "max_tokens": call_max_tokens,
        # Earlier attempts that failed before a fallback answered, for the evidence.
        "error": "; ".join(routed.errors)[:2000],
    }
    finished = finish_record(call_id, status=ModelCall.Status.OK, **fields)
    # Settle even when another delivery declared this call interrupted: the usage did happen.
    settle_or_leave_to_expiry(
        gateway_policy.settle, reservation, tokens_in=tokens_in, tokens_out=tokens_out, cost=cost
    )
    if not finished:
        return _answer_for_existing(tenant_schema, request_id)
    logger.info(
        "model call ok tenant=%s request_id=%s model=%s served=%s fallback=%s tokens_in=%d tokens_out=%d "
        "latency_ms=%d",
        tenant_schema,
        request_id,
        model,
        fields["model_served"],
        routed.fallback_taken,
        tokens_in,
        tokens_out,
        latency_ms,
    )
    return Completion(
        call_id=call_id,
        request_id=request_id,
        text=text,
        model_served=fields["model_served"],
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost=cost,
        latency_ms=latency_ms,
        model_requested=model,
        fallback_taken=routed.fallback_taken,
        tool_calls=tool_calls,
    )


def _block_answer(
    claimed: ClaimedCall,
    routed: Any,
    answer: screening.Screening,
    tokens_in: int,
    tokens_out: int,
    cost: Decimal,
    latency_ms: int,
) -> CrossTenantBlocked:
    """The provider's answer carries another tenant's marker: record the call with the answer withheld, settle
    what the provider used, report, and return the error to raise instead of the answer."""
    blocked = screening.block(
        screening.HitReport(
            tenant_schema=claimed.tenant_schema,
            where=screening.RESPONSE,
            findings=answer.foreign,
            request_id=str(claimed.request_id),
            model=claimed.model,
            details={"call_id": str(claimed.call_id), "model_served": routed.route.alias},
        )
    )
    finish_record(
        claimed.call_id,
        status=ModelCall.Status.ERROR,
        error_code=blocked.code,
        error=blocked.user_message,
        response=screening.WITHHELD,
        model_alias_served=routed.route.alias,
        fallback_taken=routed.fallback_taken,
        provider=routed.route.provider,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost=cost,
        latency_ms=latency_ms,
        max_tokens=claimed.max_tokens,
    )
    settle_or_leave_to_expiry(
        gateway_policy.settle, claimed.reservation, tokens_in=tokens_in, tokens_out=tokens_out, cost=cost
    )
    blocked.call = ModelCall.objects.get(id=claimed.call_id)
    return blocked


def settle_or_leave_to_expiry(action: Any, reservation: gateway_policy.Reservation, **usage: Any) -> None:
    """The call is recorded; if Redis fails now, the answer still goes out. The reservation then stays
    at its worst case (over-counting, the safe side) until it expires and is swept."""
    try:
        action(reservation, **usage)
    except Exception:  # noqa: BLE001 - see docstring
        logger.exception(
            "could not settle reservation tenant=%s request_id=%s",
            reservation.tenant_schema,
            reservation.request_id,
        )


def _route_max_tokens(alias: str) -> int:
    from gateway.config import UnknownModelError, get_model_route

    try:
        return get_model_route(alias).max_tokens
    except UnknownModelError as unpriced:
        raise ModelNotAllowed(str(unpriced)) from unpriced


_CLAIM_COLUMNS = (
    "id, created_at, request_id, source, user_id, model_requested, messages, status, lease_expires_at, "
    "model_served, model_alias_served, fallback_taken, provider, response, tool_calls, max_tokens, "
    "tokens_in, tokens_out, cost, latency_ms, error_code, error"
)
_CLAIM_VALUES = (
    # tool_calls '' reads back as [] (the encrypted JSON column's default); messages arrive encrypted.
    "%s, %s, %s, %s, %s, %s, %s, %s, %s, '', '', false, '', '', '', 0, 0, 0, 0, 0, '', ''"
)


def _claim(
    request_id: uuid.UUID, user_id: int | None, model: str, messages: list[dict[str, Any]], source: str
) -> uuid.UUID | None:
    """Write the 'started' record in one round trip; None if this request id already has a record.

    Outside a caller's transaction the claim commits without waiting for its WAL flush: it is visible to
    other sessions at once, which is all idempotency needs, and the completed record (a normal, durable
    commit) is the evidence. Only a database crash within a few hundred ms could lose a claim."""
    call_id = uuid.uuid4()
    now = timezone.now()
    asynchronous = (
        " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS claim_commit"
        if not connection.in_atomic_block
        else ""
    )
    sql = (
        f"INSERT INTO {ModelCall._meta.db_table} ({_CLAIM_COLUMNS}) SELECT {_CLAIM_VALUES}{asynchronous} "
        "ON CONFLICT (request_id) DO NOTHING RETURNING id"
    )
    params: list[Any] = [
        call_id,
        now,
        request_id,
        source[:16],
        user_id,
        model[:128],
        ModelCall._meta.get_field("messages").get_db_prep_value(messages, connection),
        ModelCall.Status.STARTED,
        now + dt.timedelta(seconds=settings.GATEWAY_LEASE_SECONDS),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.fetchone()
    return call_id if inserted else None


def finish_record(call_id: uuid.UUID, *, status: str, **fields: Any) -> bool:
    """Complete a 'started' record and seal it into the chain, in one transaction; False if it is no longer
    started (another delivery took it over and sealed it). The commit waits for the WAL flush unless
    GATEWAY_DURABLE_RECORDS is off (docs/gateway.md: a crash in the next few hundred ms then leaves the call
    'started' and unsealed, later marked interrupted and sealed)."""
    values = {"status": status, "finished_at": timezone.now(), **fields}
    assignments: list[str] = []
    params: list[Any] = []
    for name, value in values.items():
        model_field = ModelCall._meta.get_field(name)
        if not isinstance(model_field, Field):
            raise TypeError(f"{name} is not a column of ModelCall")
        if isinstance(model_field, EncryptedTextField):
            assignments.append(f"{model_field.column} = %s")
            params.append(model_field.get_db_prep_value(value, connection))
        elif isinstance(model_field, JSONField):
            assignments.append(f"{model_field.column} = %s::jsonb")
            params.append(json.dumps(value))
        else:
            assignments.append(f"{model_field.column} = %s")
            params.append(value)
    asynchronous = (
        " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS finish_commit"
        if not settings.GATEWAY_DURABLE_RECORDS and not connection.in_atomic_block
        else ""
    )
    # Identifiers come from the model's own metadata; every value is a query parameter.
    sql = (
        f"UPDATE {ModelCall._meta.db_table} SET {', '.join(assignments)}{asynchronous} "  # noqa: S608
        "WHERE id = %s AND status = %s"
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, call_id, ModelCall.Status.STARTED])
            finished = cursor.rowcount == 1
        if finished:
            # The record is final: it becomes evidence now, in the transaction that made it final.
            seal_in_chain(ModelCall, call_id)
    return finished


def _answer_for_existing(tenant_schema: str, request_id: uuid.UUID) -> Completion:
    call = settled_record(tenant_schema, request_id)
    if call.status == ModelCall.Status.OK:
        return _completion_from_record(call)
    raise error_for_record(call)


def settled_record(tenant_schema: str, request_id: uuid.UUID) -> ModelCall:
    """Another delivery of this request claimed it. Return its record once finished, wait while its owner
    may still be working on it, or, once the owner's lease has expired (it died), declare the call
    interrupted and release its reservation. The provider is never called a second time for one request id."""
    while True:
        call = ModelCall.objects.get(request_id=request_id)
        if call.status != ModelCall.Status.STARTED:
            return call
        now = timezone.now()
        if call.lease_expires_at is None or call.lease_expires_at <= now:
            declare_interrupted(tenant_schema, call)
            continue
        time.sleep(min(0.5, max(0.05, (call.lease_expires_at - now).total_seconds())))


INTERRUPTED_RECORD_ERROR = (
    "Interrupted: the process handling this call stopped before the provider's answer was recorded. "
    "The provider may have been called; its usage is unknown."
)


def declare_interrupted(tenant_schema: str, call: ModelCall) -> bool:
    """Finish a 'started' call whose owner's lease has expired (it died) as an interrupted error, seal it
    into the chain and release its reservation. False if someone finished it first."""
    with transaction.atomic():
        taken_over = ModelCall.objects.filter(
            id=call.id, status=ModelCall.Status.STARTED, lease_expires_at=call.lease_expires_at
        ).update(
            status=ModelCall.Status.ERROR,
            error_code="interrupted",
            error=INTERRUPTED_RECORD_ERROR,
            finished_at=timezone.now(),
        )
        if taken_over:
            seal_in_chain(ModelCall, call.id)
    if taken_over:
        gateway_policy.release_request(tenant_schema, call.request_id)
        logger.warning("model call interrupted tenant=%s request_id=%s", tenant_schema, call.request_id)
    return bool(taken_over)


def finish_abandoned_calls(tenant_schema: str) -> int:
    """Calls still 'started' well after their lease expired, whose request was never delivered again (a
    worker died and its task was lost, a web process died mid-stream): declare them interrupted, so they
    are sealed (evidence, in exports) and their budget is released. The grace period
    (GATEWAY_ABANDONED_AFTER_SECONDS past the lease) leaves time for a redelivery to do it, and for a stream
    that outlives its lease to finish normally."""
    _check_tenant_context(tenant_schema)
    cutoff = timezone.now() - dt.timedelta(seconds=settings.GATEWAY_ABANDONED_AFTER_SECONDS)
    abandoned = ModelCall.objects.filter(status=ModelCall.Status.STARTED, lease_expires_at__lt=cutoff)
    return sum(declare_interrupted(tenant_schema, call) for call in abandoned.order_by("created_at")[:500])
