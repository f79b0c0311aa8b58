"""gateway.streaming.stream: one audited, streamed model call for one tenant.

Order of work, which callers can rely on: check the tenant context, route the model, reserve the worst case
(policy), call the provider with streaming on, pass tokens on while checking the kill switch between chunks,
and when the stream ends (finished, failed, cut off by the kill switch or by the caller closing the
iterator) write the ModelCall row, settle or release the reservation, and only then yield the final event.

Errors before the first token (refusals, provider down) are raised as GatewayError, so an HTTP caller can
still answer with a status code. Once tokens have flowed, a failure ends the stream with an "end" event that
carries the error instead.
"""

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from django.db import IntegrityError, transaction

from audit.chain import seal_in_chain
from gateway import policy
from gateway.config import ModelRoute, UnknownModelError, get_model_route
from gateway.errors import GatewayError, KillSwitchOn, ModelNotAllowed, ProviderUnavailable
from gateway.models import ModelCall
from gateway.service import _check_tenant_context, litellm_module

logger = logging.getLogger(__name__)

CLIENT_GONE = "The client closed the stream before it ended."


@dataclass(frozen=True)
class StreamResult:
    call_id: uuid.UUID
    request_id: uuid.UUID
    status: str  # a ModelCall.Status value
    text: str
    model_served: str
    tokens_in: int
    tokens_out: int
    cost: Decimal
    latency_ms: int
    ttft_ms: int | None
    finish_reason: str
    # Why the stream did not finish normally (None when status is ok); its message is safe to show.
    error: GatewayError | None


@dataclass(frozen=True)
class StreamEvent:
    """kind "token": a piece of the answer in `text`. kind "end": the last event, with the recorded result."""

    kind: Literal["token", "end"]
    text: str = ""
    result: StreamResult | None = None


def count_prompt_tokens(route: ModelRoute, messages: list[dict[str, str]]) -> int:
    try:
        return int(litellm_module().token_counter(model=route.litellm_model, messages=messages))
    except Exception:  # noqa: BLE001 - a tokenizer problem must not block the call; estimate instead
        return sum(len(str(message.get("content", ""))) // 3 + 4 for message in messages)


def count_text_tokens(route: ModelRoute, text: str) -> int:
    if not text:
        return 0
    try:
        return int(litellm_module().token_counter(model=route.litellm_model, text=text))
    except Exception:  # noqa: BLE001 - see count_prompt_tokens
        return max(1, len(text) // 3)


def effective_max_tokens(route: ModelRoute, requested: int | None) -> int:
    """max_tokens is always sent, never above the model's configured cap: the reservation is an upper bound."""
    if requested is None or requested <= 0:
        return route.max_tokens
    return min(requested, route.max_tokens)


def stream(
    *,
    tenant_schema: str,
    request_id: uuid.UUID,
    user_id: int | None,
    model: str,
    messages: list[dict[str, str]],
    max_tokens: int | None = None,
) -> Iterator[StreamEvent]:
    _check_tenant_context(tenant_schema)
    previous = ModelCall.objects.filter(request_id=request_id).first()
    if previous is not None:
        yield from _replay(previous)
        return

    try:
        route = get_model_route(model)
    except UnknownModelError as refusal:
        call = _record(
            request_id, user_id, model, messages, status=ModelCall.Status.REFUSED, error=str(refusal)
        )
        raise ModelNotAllowed(str(refusal), call=call) from refusal

    limit = effective_max_tokens(route, max_tokens)
    try:
        reservation = policy.reserve(
            tenant_schema=tenant_schema,
            request_id=request_id,
            user_id=user_id,
            model=model,
            prompt_tokens=count_prompt_tokens(route, messages),
            max_tokens=limit,
        )
    except GatewayError as refusal:
        refusal.call = _record(
            request_id,
            user_id,
            model,
            messages,
            status=ModelCall.Status.REFUSED,
            error=refusal.user_message,
            provider=route.provider,
        )
        raise

    started = time.perf_counter()
    try:
        response: Any = litellm_module().completion(
            model=route.litellm_model,
            messages=messages,
            api_base=route.api_base,
            api_key=route.api_key,
            max_tokens=limit,
            timeout=route.timeout_seconds,
            num_retries=0,
            stream=True,
            # The provider's own count arrives in a final chunk; we count ourselves only if it never comes.
            stream_options={"include_usage": True},
            metadata={"tenant": tenant_schema, "request_id": str(request_id)},
        )
    except Exception as failure:  # noqa: BLE001 - every provider failure must be recorded, whatever its type
        policy.release(reservation)
        call = _record_failure(route, request_id, user_id, model, messages, failure, started)
        raise ProviderUnavailable(
            "The assistant is unavailable right now. Please try again.", call=call
        ) from failure

    pieces: list[str] = []
    usage: Any = None
    model_served = ""
    finish_reason = ""
    ttft_ms: int | None = None
    status = ModelCall.Status.OK
    error: GatewayError | None = None
    error_detail = ""
    try:
        for chunk in response:
            model_served = model_served or str(getattr(chunk, "model", "") or "")
            if getattr(chunk, "usage", None) is not None:
                usage = chunk.usage
            for choice in getattr(chunk, "choices", None) or []:
                finish_reason = choice.finish_reason or finish_reason
                text = getattr(choice.delta, "content", None) or ""
                if not text:
                    continue
                if ttft_ms is None:
                    ttft_ms = _elapsed_ms(started)
                pieces.append(text)
                yield StreamEvent(kind="token", text=text)
            # Between chunks, so that an administrator's kill switch stops a long answer within one token.
            policy.check_kill_switch(tenant_schema)
    except KillSwitchOn as cut:
        status, error, error_detail = ModelCall.Status.CUT_OFF, cut, f"kill switch: {cut.user_message}"
    except GeneratorExit:
        # The caller stopped reading (a browser or API client went away): record what was produced, then stop.
        _close_provider_stream(response)
        _finish(
            reservation, route, request_id, user_id, model, messages, pieces, usage, model_served,
            status=ModelCall.Status.CUT_OFF, error_detail=CLIENT_GONE, started=started, ttft_ms=ttft_ms,
        )  # fmt: skip
        raise
    except Exception as failure:  # noqa: BLE001 - a broken stream is recorded like any provider failure
        status = ModelCall.Status.ERROR
        error = ProviderUnavailable("The assistant stopped answering before it finished. Please try again.")
        error_detail = f"{type(failure).__name__}: {failure}"[:2000]
        logger.warning(
            "model stream failed tenant=%s request_id=%s model=%s error=%s",
            tenant_schema,
            request_id,
            model,
            type(failure).__name__,
        )
    if status != ModelCall.Status.OK:
        _close_provider_stream(response)

    result = _finish(
        reservation, route, request_id, user_id, model, messages, pieces, usage, model_served,
        status=status, error_detail=error_detail, started=started, ttft_ms=ttft_ms,
        finish_reason=finish_reason, error=error,
    )  # fmt: skip
    logger.info(
        "model stream %s tenant=%s request_id=%s model=%s tokens_in=%d tokens_out=%d ttft_ms=%s latency_ms=%d",
        result.status,
        tenant_schema,
        request_id,
        model,
        result.tokens_in,
        result.tokens_out,
        result.ttft_ms,
        result.latency_ms,
    )
    yield StreamEvent(kind="end", result=result)


def _finish(
    reservation: policy.Reservation,
    route: ModelRoute,
    request_id: uuid.UUID,
    user_id: int | None,
    model: str,
    messages: list[dict[str, str]],
    pieces: list[str],
    usage: Any,
    model_served: str,
    *,
    status: str,
    error_detail: str,
    started: float,
    ttft_ms: int | None,
    finish_reason: str = "",
    error: GatewayError | None = None,
) -> StreamResult:
    """Record the call, then settle the reservation to what was actually used. Runs exactly once per stream."""
    text = "".join(pieces)
    if usage is not None:
        tokens_in, tokens_out = int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)
    else:
        tokens_in, tokens_out = count_prompt_tokens(route, messages), count_text_tokens(route, text)
    cost = route.cost(tokens_in, tokens_out)
    latency_ms = _elapsed_ms(started)
    call = _record(
        request_id,
        user_id,
        model,
        messages,
        status=status,
        error=error_detail,
        model_served=model_served,
        provider=route.provider,
        response_text=text,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost=cost,
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
    )
    if status == ModelCall.Status.ERROR and not pieces:
        policy.release(reservation)
    else:
        # Tokens produced before a cut or a failure were still generated (and billed) by the provider.
        policy.settle(reservation, tokens_in=tokens_in, tokens_out=tokens_out, cost=cost)
    return StreamResult(
        call_id=call.id,
        request_id=request_id,
        status=call.status,
        text=call.response,
        model_served=call.model_served,
        tokens_in=call.tokens_in,
        tokens_out=call.tokens_out,
        cost=call.cost,
        latency_ms=call.latency_ms,
        ttft_ms=call.ttft_ms,
        finish_reason=finish_reason or ("stop" if status == ModelCall.Status.OK else ""),
        error=error,
    )


def _replay(previous: ModelCall) -> Iterator[StreamEvent]:
    """Idempotent by request id: a redelivered task gets the recorded answer, the provider is not re-called."""
    if previous.status == ModelCall.Status.REFUSED:
        raise GatewayError(previous.error or "The assistant could not answer this message.", call=previous)
    if previous.status == ModelCall.Status.ERROR and not previous.response:
        raise GatewayError("The assistant could not answer this message.", call=previous)
    if previous.response:
        yield StreamEvent(kind="token", text=previous.response)
    error: GatewayError | None = None
    if previous.status == ModelCall.Status.CUT_OFF:
        reason = previous.error.removeprefix("kill switch: ")
        error = KillSwitchOn(reason, call=previous) if previous.error.startswith("kill switch: ") else None
    elif previous.status == ModelCall.Status.ERROR:
        error = ProviderUnavailable("The assistant stopped answering before it finished. Please try again.")
    yield StreamEvent(
        kind="end",
        result=StreamResult(
            call_id=previous.id,
            request_id=previous.request_id,
            status=previous.status,
            text=previous.response,
            model_served=previous.model_served,
            tokens_in=previous.tokens_in,
            tokens_out=previous.tokens_out,
            cost=previous.cost,
            latency_ms=previous.latency_ms,
            ttft_ms=previous.ttft_ms,
            finish_reason="stop" if previous.status == ModelCall.Status.OK else "",
            error=error,
        ),
    )


def _close_provider_stream(response: Any) -> None:
    """Stop the provider generating tokens nobody will read (closes the HTTP response)."""
    for candidate in (getattr(response, "completion_stream", None), response):
        close = getattr(candidate, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001, S110 - best effort; the record is what matters
                pass
            return


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _record_failure(
    route: ModelRoute,
    request_id: uuid.UUID,
    user_id: int | None,
    model: str,
    messages: list[dict[str, str]],
    failure: Exception,
    started: float,
) -> ModelCall:
    logger.warning(
        "model stream failed to start request_id=%s model=%s error=%s",
        request_id,
        model,
        type(failure).__name__,
    )
    return _record(
        request_id,
        user_id,
        model,
        messages,
        status=ModelCall.Status.ERROR,
        error=f"{type(failure).__name__}: {failure}"[:2000],
        provider=route.provider,
        latency_ms=_elapsed_ms(started),
    )


def _record(
    request_id: uuid.UUID,
    user_id: int | None,
    model: str,
    messages: list[dict[str, str]],
    *,
    status: str,
    error: str = "",
    model_served: str = "",
    provider: str = "",
    response_text: str = "",
    tokens_in: int = 0,
    tokens_out: int = 0,
    cost: Decimal = Decimal(0),
    latency_ms: int = 0,
    ttft_ms: int | None = None,
) -> ModelCall:
    try:
        with transaction.atomic():
            call = ModelCall.objects.create(
                request_id=request_id,
                user_id=user_id,
                model_requested=model,
                model_served=model_served,
                provider=provider,
                messages=messages,
                response=response_text,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost=cost,
                latency_ms=latency_ms,
                ttft_ms=ttft_ms,
                status=status,
                error=error,
            )
            # Written once, final: sealed into the tenant's model-call chain in the same transaction.
            seal_in_chain(ModelCall, call.pk)
            call.refresh_from_db()
            return call
    except IntegrityError:
        # Another delivery of the same request recorded it first; that record is the truth.
        return ModelCall.objects.get(request_id=request_id)
