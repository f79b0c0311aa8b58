"""The protocol every model call follows, written once. Completions (gateway.service), streams
(gateway.streaming) and embeddings (gateway.embeddings) each drive one GatewayCall:

    call = GatewayCall.begin(...)      1 tenant context check
                                       2 claim the request id: a 'started' record under its unique constraint
                                       3 policy: allow-list, model kind, kill switch, rate limits, reservation
    if call is None: settled_record()  another delivery of this request id owns it (or finished it)
    call.call_provider(...)            4 LiteLLM Router along the tenant's fallback chain (a failure of every
                                         model is recorded and raised as ProviderUnavailable)
    call.finish(Outcome(...))          5 complete the record and seal it into the tenant's hash chain
                                       6 settle the reservation to exactly what the record says
    return / yield the end event       7 only after 5 and 6

The rule that keeps counters equal to records: finish() settles the reservation to the tokens and cost it
has just written, whatever the outcome (ok, error, cut off); a call recorded with no usage gives its whole
reservation back. A call whose record another delivery finished first (declared interrupted) follows that
record too.
"""

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
from gateway.config import (
    CHAT_KIND,
    EMBEDDING_KIND,
    ModelRoute,
    UnknownModelError,
    get_model_route,
    model_kind,
)
from gateway.errors import (
    BudgetExceeded,
    ContextLengthExceeded,
    CrossTenantBlocked,
    GatewayError,
    KillSwitchOn,
    ModelNotAllowed,
    ProviderUnavailable,
    RateLimited,
    TenantContextError,
)
from gateway.models import ModelCall
from gateway.routing import UNAVAILABLE_MESSAGE, AllProvidersFailed, RoutedResponse, call_chain
from keys.fields import EncryptedTextField
from tenants.context import current_schema, in_tenant_schema

logger = logging.getLogger(__name__)

INTERRUPTED_MESSAGE = "The assistant was interrupted while answering this message. Please send it again."
INTERRUPTED_RECORD_ERROR = (
    "Interrupted: the process handling this call stopped before the provider's answer was recorded. "
    "The provider may have been called; its usage is unknown."
)
_ERROR_TYPES: dict[str, type[GatewayError]] = {
    cls.code: cls
    for cls in (
        ModelNotAllowed,
        ContextLengthExceeded,
        KillSwitchOn,
        RateLimited,
        BudgetExceeded,
        ProviderUnavailable,
        CrossTenantBlocked,
    )
}


# Where a record's token counts come from: the provider's answer, the model's own tokenizer and chat template
# (a streamed answer without usage, gateway/tokens.py), or an estimate (a model without an exact tokenizer).
USAGE_REPORTED, USAGE_COUNTED, USAGE_ESTIMATED = "reported", "counted", "estimated"


def check_tenant_context(tenant_schema: str) -> None:
    active = current_schema()
    if not in_tenant_schema() or active != tenant_schema:
        raise TenantContextError(f"Model call for tenant {tenant_schema!r} attempted in schema {active!r}.")


@dataclass
class Outcome:
    """How a call ended: what finish() writes to the record and settles the reservation to."""

    status: str  # a ModelCall.Status value
    route: ModelRoute | None = None  # the catalogue model that answered (None: no model answered)
    fallback_taken: bool = False
    model_served: str = ""
    response: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    ttft_ms: int | None = None
    usage_source: str = USAGE_REPORTED
    error_code: str = ""
    # For the record (never shown to users): earlier attempts that failed, then why this one stopped.
    errors: list[str] = field(default_factory=list)

    @property
    def cost(self) -> Decimal:
        return self.route.cost(self.tokens_in, self.tokens_out) if self.route is not None else Decimal(0)


class GatewayCall:
    """A call this process owns: its 'started' record is written and its worst case is reserved. Drive it
    with call_provider() and end it with exactly one finish() (fail() is a finish for "no model answered")."""

    def __init__(
        self,
        *,
        call_id: uuid.UUID,
        tenant_schema: str,
        request_id: uuid.UUID,
        model: str,
        kind: str,
        chain: list[str],
        max_tokens: int,
        reservation: gateway_policy.Reservation,
    ) -> None:
        self.call_id, self.tenant_schema, self.request_id = call_id, tenant_schema, request_id
        self.model, self.kind, self.chain = model, kind, chain
        self.max_tokens, self.reservation = max_tokens, reservation
        self.started = time.perf_counter()
        self.latency_ms = 0
        self.finished = False

    # --- 1-3 ----------------------------------------------------------------------------------------------

    @classmethod
    def begin(
        cls,
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
    ) -> "GatewayCall | None":
        """Check the tenant context, screen the prompt for other tenants' canary markers, claim the request
        id, then policy (allow-list -> model kind -> kill switch -> rate limits -> budget reservation).

        Returns None when another delivery already claimed this request id (use settled_record). A refusal
        is recorded and raised as its GatewayError; a policy store failure is recorded and fails closed.
        kind: "chat" (max_tokens capped by the chain and always sent) or "embedding" (nothing generated).
        api_key: the limits of the API key the call is made with (the tenant API), reserved with the tenant's."""
        check_tenant_context(tenant_schema)
        # Before anything is written or sent: another tenant's marker in the prompt stops the call here.
        screened = screening.screen(tenant_schema, screening.screen_messages(messages))
        if screened.foreign:
            _block_prompt(tenant_schema, request_id, user_id, model, source, screened)
            return None  # an earlier delivery blocked and reported it: settled_record answers
        call_id = claim(request_id, user_id, model, screening.messages_for_record(messages, screened), source)
        if call_id is None:
            return None
        try:
            policy = gateway_policy.load_policy(tenant_schema, max_age=settings.GATEWAY_POLICY_CACHE_SECONDS)
            gateway_policy.check_model_allowed(policy, model)
            if model_kind(model) != kind:
                raise ModelNotAllowed(f"The model {model!r} is not a {kind} model.")
            chain = policy.chain_for(model)
            routes = [_route(alias) for alias in chain]
            if kind == EMBEDDING_KIND:
                call_max_tokens = 0
            else:
                route_max = min(route.max_tokens for route in routes)
                # Always sent to the provider, so the reservation below is a true upper bound of the answer.
                call_max_tokens = max(1, min(max_tokens, route_max)) if max_tokens else route_max
            check_context_window(routes[0], messages)
            reservation = gateway_policy.reserve(
                tenant_schema=tenant_schema,
                request_id=request_id,
                user_id=user_id,
                model=model,
                # Counted for each model that may answer (a fallback's tokenizer may count more).
                prompt_tokens=max(route.counter.prompt_bound(messages) for route in routes),
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
        hooks.call_observed(
            hooks.CallObserved(tenant_schema, source, user_id, model, tokens=reservation.tokens)
        )
        return cls(
            call_id=call_id,
            tenant_schema=tenant_schema,
            request_id=request_id,
            model=model,
            kind=kind,
            chain=chain,
            max_tokens=call_max_tokens,
            reservation=reservation,
        )

    @property
    def metadata(self) -> dict[str, str]:
        return {"tenant": self.tenant_schema, "request_id": str(self.request_id)}

    def elapsed_ms(self) -> int:
        """Since the provider was called."""
        return int((time.perf_counter() - self.started) * 1000)

    # --- 4 ------------------------------------------------------------------------------------------------

    def call_provider(
        self, operation: str = "completion", *, unavailable_message: str = UNAVAILABLE_MESSAGE, **params: Any
    ) -> RoutedResponse:
        """The Router along the chain; when no model answers, the call is finished as an error and
        ProviderUnavailable(unavailable_message) is raised. params go to the Router as they are."""
        self.started = time.perf_counter()
        try:
            return call_chain(self.chain, metadata=self.metadata, operation=operation, **params)
        except AllProvidersFailed as failure:
            raise self.fail(failure, unavailable_message) from failure

    def fail(self, failure: AllProvidersFailed, message: str = UNAVAILABLE_MESSAGE) -> ProviderUnavailable:
        """No model of the chain answered: finish the call as an error (no usage) and return the error to
        raise (its message is safe to show)."""
        logger.warning(
            "model call failed tenant=%s request_id=%s model=%s attempts=%d",
            self.tenant_schema,
            self.request_id,
            self.model,
            len(failure.errors),
        )
        self.finish(
            Outcome(status=ModelCall.Status.ERROR, error_code=ProviderUnavailable.code, errors=[str(failure)])
        )
        return ProviderUnavailable(message, call=self.record())

    def block_answer(self, outcome: Outcome, screened: screening.Screening) -> CrossTenantBlocked:
        """The provider's answer carries another tenant's marker: report it, finish the call with the answer
        withheld (its usage recorded and settled: the provider did the work) and return the error to raise
        instead of the answer."""
        blocked = screening.block(
            screening.HitReport(
                tenant_schema=self.tenant_schema,
                where=screening.RESPONSE,
                findings=screened.foreign,
                request_id=str(self.request_id),
                model=self.model,
                details={
                    "call_id": str(self.call_id),
                    "model_served": outcome.route.alias if outcome.route else "",
                },
            )
        )
        outcome.response, outcome.tool_calls = screening.WITHHELD, []
        outcome.error_code, outcome.errors = blocked.code, [blocked.user_message]
        self.finish(outcome)
        blocked.call = self.record()
        return blocked

    # --- 5-6 ----------------------------------------------------------------------------------------------

    def finish(self, outcome: Outcome) -> bool:
        """Complete the record and seal it (one transaction), then settle the reservation to the tokens and
        cost just recorded. False if another delivery had finished the record first (it declared the call
        interrupted after this process's lease): that record stands, and so do the counters it settled."""
        if self.finished:
            raise RuntimeError(f"model call {self.request_id} finished twice")
        self.finished = True
        self.latency_ms = self.elapsed_ms()
        route = outcome.route
        fields: dict[str, Any] = {
            "latency_ms": self.latency_ms,
            "max_tokens": self.max_tokens,
            "tokens_in": outcome.tokens_in,
            "tokens_out": outcome.tokens_out,
            "cost": outcome.cost,
            "error_code": outcome.error_code,
            "error": "; ".join(outcome.errors)[:2000],
        }
        if route is not None:
            fields |= {
                "model_served": outcome.model_served,
                "model_alias_served": route.alias,
                "fallback_taken": outcome.fallback_taken,
                "provider": route.provider,
            }
        if self.kind != EMBEDDING_KIND:
            fields |= {
                "response": outcome.response,
                "tool_calls": outcome.tool_calls,
                "ttft_ms": outcome.ttft_ms,
            }
        recorded = finish_record(self.call_id, status=outcome.status, **fields)
        if recorded:
            _settle_or_leave_to_expiry(
                gateway_policy.settle,
                self.reservation,
                tokens_in=outcome.tokens_in,
                tokens_out=outcome.tokens_out,
                cost=outcome.cost,
            )
        else:
            # Declared interrupted by another delivery, which released the reservation; the counters follow
            # that record (no usage), so this usage is not counted either. Rare: the lease outlived the call.
            logger.warning(
                "model call finished after it was declared interrupted tenant=%s request_id=%s tokens=%d",
                self.tenant_schema,
                self.request_id,
                outcome.tokens_in + outcome.tokens_out,
            )
            _settle_or_leave_to_expiry(gateway_policy.release, self.reservation)
        return recorded

    @contextmanager
    def finished_even_if_interrupted(self) -> Iterator["GatewayCall"]:
        """An exception of our own between the claim and finish() (a bug, a time limit) still finishes the
        call, as an interrupted error with no usage, instead of leaving it 'started' until the sweep."""
        try:
            yield self
        except BaseException as interruption:
            if not self.finished:
                try:
                    self.finish(
                        Outcome(
                            status=ModelCall.Status.ERROR,
                            error_code="interrupted",
                            errors=[f"{INTERRUPTED_RECORD_ERROR} ({type(interruption).__name__})"],
                        )
                    )
                except Exception:  # noqa: BLE001 - the original exception is the one to report
                    logger.exception("could not record an interrupted call request_id=%s", self.request_id)
            raise

    def record(self) -> ModelCall:
        return ModelCall.objects.get(id=self.call_id)


def _settle_or_leave_to_expiry(action: Any, reservation: gateway_policy.Reservation, **usage: Any) -> None:
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


def _route(alias: str) -> ModelRoute:
    try:
        return get_model_route(alias)
    except UnknownModelError as unpriced:
        raise ModelNotAllowed(str(unpriced)) from unpriced


def check_context_window(route: ModelRoute, messages: list[dict[str, Any]]) -> None:
    """A prompt that leaves no room for an answer in the model's context window is the caller's error, told
    before anything is reserved or sent. Only with the model's own tokenizer: a bound proves nothing here."""
    if route.context_window is None or not route.counter.exact:
        return
    prompt_tokens = route.counter.prompt_tokens(messages)
    if prompt_tokens >= route.context_window:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {route.context_window:,} tokens. However, your messages "
            f"resulted in {prompt_tokens:,} tokens. Please reduce the length of the messages."
        )


# --- the record -------------------------------------------------------------------------------------------

_CLAIM_COLUMNS = (
    "id, created_at, request_id, source, user_id, model_requested, messages, status, lease_expires_at"
)


def _claim_sql(asynchronous: bool) -> str:
    """Every other column gets its database default (ModelCall's fields declare db_default), so no column
    list has to be kept by hand here."""
    commit = (
        " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS claim_commit" if asynchronous else ""
    )
    # Identifiers come from the model's own metadata; every value is a query parameter.
    return (
        f"INSERT INTO {ModelCall._meta.db_table} ({_CLAIM_COLUMNS}) "  # noqa: S608
        f"SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s{commit} ON CONFLICT (request_id) DO NOTHING RETURNING id"
    )


def claim(
    request_id: uuid.UUID, user_id: int | None, model: str, messages: list[dict[str, Any]], source: str
) -> uuid.UUID | None:
    """Write the 'started' record in one round trip; None if this request id already has a record.

    Outside a caller's transaction the claim commits without waiting for its WAL flush: it is visible to
    other sessions at once, which is all idempotency needs, and the completed record (a normal, durable
    commit) is the evidence. Only a database crash within a few hundred ms could lose a claim."""
    call_id = uuid.uuid4()
    now = timezone.now()
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
        cursor.execute(_claim_sql(asynchronous=not connection.in_atomic_block), params)
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
    call_id = claim(request_id, None, model, [{"role": "system", "content": screening.WITHHELD}], source)
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


# --- another delivery of the same request id ----------------------------------------------------------------


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
    check_tenant_context(tenant_schema)
    cutoff = timezone.now() - dt.timedelta(seconds=settings.GATEWAY_ABANDONED_AFTER_SECONDS)
    abandoned = ModelCall.objects.filter(status=ModelCall.Status.STARTED, lease_expires_at__lt=cutoff)
    return sum(declare_interrupted(tenant_schema, call) for call in abandoned.order_by("created_at")[:500])
