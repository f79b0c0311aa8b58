"""gateway.streaming.stream: one audited, streamed model call for one tenant.

It drives the protocol of gateway.protocol (a GatewayCall), as gateway.service.complete does:
1. check the tenant context and claim the request id (a 'started' record under its unique constraint); a
   second delivery of the same request replays the recorded answer, waits for the owner, or declares the
   call interrupted once the owner's lease has expired: the provider is never called twice;
2. policy: allow-list, kill switch, rate limits, budget reservation of the worst case;
3. open the provider stream along the tenant's fallback chain (LiteLLM Router, circuit breaker). Failover
   happens only while opening the stream: once a model streams, a failure mid-way ends the answer;
4. pass tokens on, checking between chunks the kill switch and a stop request for this request id
   (policy.request_stop: the chat's Stop button); a cut stream is recorded as cut_off;
5. when the stream ends (finished, failed, cut off by the kill switch, a stop request or the caller closing
   the iterator) complete the record, settle (or release) the reservation, and only then yield the final
   event.

Errors before the first token (refusals, provider down) are raised as GatewayError, so an HTTP caller can
still answer with a status code. Once tokens have flowed, a failure ends the stream with an "end" event that
carries the error instead.
"""

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from gateway import policy, screening
from gateway.config import ModelRoute
from gateway.errors import CrossTenantBlocked, GatewayError, KillSwitchOn, ProviderUnavailable, StopRequested
from gateway.models import ModelCall
from gateway.protocol import (
    USAGE_COUNTED,
    USAGE_ESTIMATED,
    USAGE_REPORTED,
    GatewayCall,
    Outcome,
    error_for_record,
    settled_record,
)
from gateway.tokens import litellm_prompt_estimate

logger = logging.getLogger(__name__)

CLIENT_GONE = "The client closed the stream before it ended."
STREAM_BROKEN = "The assistant stopped answering before it finished. Please try again."
KILL_SWITCH_PREFIX = "kill switch: "
STOPPED_DETAIL = "Stopped at the caller's request."


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


def stream(
    *,
    tenant_schema: str,
    request_id: uuid.UUID,
    user_id: int | None,
    model: str,
    messages: list[dict[str, str]],
    max_tokens: int | None = None,
    source: str = "",
    now: dt.datetime | None = None,
    api_key: policy.KeyLimits | None = None,
) -> Iterator[StreamEvent]:
    call = GatewayCall.begin(
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
    if call is None:
        yield from _replay(settled_record(tenant_schema, request_id))
        return
    with call.finished_even_if_interrupted():
        routed = call.call_provider(
            messages=messages,
            max_tokens=call.max_tokens,
            stream=True,
            # The provider's own count arrives in a final chunk; we count ourselves only if it never comes.
            stream_options={"include_usage": True},
        )
        response: Any = routed.response
        attempt = _Attempt(call, routed.route, routed.fallback_taken, routed.errors, messages)
        # Text is passed on only once it cannot be the start of another tenant's marker (gateway.screening).
        guard = screening.StreamScreen(tenant_schema)
        try:
            for chunk in response:
                attempt.model_served = attempt.model_served or str(getattr(chunk, "model", "") or "")
                if getattr(chunk, "usage", None) is not None:
                    attempt.usage = chunk.usage
                for choice in getattr(chunk, "choices", None) or []:
                    attempt.finish_reason = choice.finish_reason or attempt.finish_reason
                    text = getattr(choice.delta, "content", None) or ""
                    if not text:
                        continue
                    text, screened = guard.feed(text)
                    if screened.foreign:
                        raise attempt.block(screened)
                    if not text:
                        continue
                    if attempt.ttft_ms is None:
                        attempt.ttft_ms = call.elapsed_ms()
                    attempt.pieces.append(text)
                    yield StreamEvent(kind="token", text=text)
                # Between chunks, so that an administrator's kill switch, or the person pressing Stop, ends a
                # long answer within one token.
                policy.check_stream_may_continue(tenant_schema, request_id)
            rest = guard.finish()
            if rest:
                attempt.pieces.append(rest)
                yield StreamEvent(kind="token", text=rest)
        except CrossTenantBlocked as blocked:
            attempt.stop(ModelCall.Status.CUT_OFF, blocked, blocked.code, blocked.user_message)
        except KillSwitchOn as cut:
            attempt.stop(
                ModelCall.Status.CUT_OFF, cut, KillSwitchOn.code, KILL_SWITCH_PREFIX + cut.user_message
            )
        except StopRequested as stopped:
            attempt.stop(ModelCall.Status.CUT_OFF, stopped, StopRequested.code, STOPPED_DETAIL)
        except GeneratorExit:
            # The caller stopped reading (a browser or API client went away): record what was produced, then
            # stop.
            _close_provider_stream(response)
            attempt.stop(ModelCall.Status.CUT_OFF, None, "client_closed", CLIENT_GONE)
            attempt.record()
            raise
        except Exception as failure:  # noqa: BLE001 - a broken stream is recorded like any provider failure
            logger.warning(
                "model stream failed tenant=%s request_id=%s model=%s error=%s",
                tenant_schema,
                request_id,
                model,
                type(failure).__name__,
            )
            attempt.stop(
                ModelCall.Status.ERROR,
                ProviderUnavailable(STREAM_BROKEN),
                ProviderUnavailable.code,
                f"{type(failure).__name__}: {failure}"[:2000],
            )
        if attempt.status != ModelCall.Status.OK:
            _close_provider_stream(response)
        result = attempt.record()
    logger.info(
        "model call %s (stream) tenant=%s request_id=%s model=%s served=%s fallback=%s tokens_in=%d "
        "tokens_out=%d ttft_ms=%s latency_ms=%d",
        result.status,
        tenant_schema,
        request_id,
        model,
        routed.route.alias,
        routed.fallback_taken,
        result.tokens_in,
        result.tokens_out,
        result.ttft_ms,
        result.latency_ms,
    )
    yield StreamEvent(kind="end", result=result)


class _Attempt:
    """What one stream produced so far, and how it ended; record() finishes the call once."""

    def __init__(
        self,
        call: GatewayCall,
        route: ModelRoute,
        fallback_taken: bool,
        earlier_errors: list[str],
        messages: list[dict[str, str]],
    ) -> None:
        self.call, self.route, self.fallback_taken = call, route, fallback_taken
        self.earlier_errors, self.messages = earlier_errors, messages
        self.pieces: list[str] = []
        self.usage: Any = None
        self.model_served = ""
        self.finish_reason = ""
        self.ttft_ms: int | None = None
        self.status: str = ModelCall.Status.OK
        self.error: GatewayError | None = None
        self.error_code = ""
        self.error_detail = ""
        # Another tenant's marker came back: the answer is not recorded nor returned (only its usage).
        self.withheld = False

    def block(self, screened: screening.Screening) -> CrossTenantBlocked:
        self.withheld = True
        return screening.block(
            screening.HitReport(
                tenant_schema=self.call.tenant_schema,
                where=screening.RESPONSE,
                findings=screened.foreign,
                request_id=str(self.call.request_id),
                model=self.call.model,
                details={"call_id": str(self.call.call_id), "model_served": self.route.alias},
            )
        )

    def stop(self, status: str, error: GatewayError | None, error_code: str, detail: str) -> None:
        self.status, self.error, self.error_code, self.error_detail = status, error, error_code, detail

    def counted_usage(self, produced: str) -> tuple[int, int, str]:
        """Tokens in and out of this stream, and where the numbers come from (docs/gateway.md, "Usage").

        LiteLLM hands over a final usage chunk whenever stream_options.include_usage is asked: the
        provider's own, or, when the provider sent none (llama.cpp), one it counted itself with a generic
        tokenizer and no chat template, which its Router's stream wrapper does not tell apart."""
        counter = self.route.counter
        if counter.exact:
            # The model's own tokenizer and chat template: what the model counts, usage chunk or not.
            return counter.prompt_tokens(self.messages), counter.text_tokens(produced), USAGE_COUNTED
        if self.usage is None:  # cut off or broken before the end
            return counter.prompt_tokens(self.messages), counter.text_tokens(produced), USAGE_ESTIMATED
        tokens_in, tokens_out = int(self.usage.prompt_tokens or 0), int(self.usage.completion_tokens or 0)
        made_up = tokens_in == litellm_prompt_estimate(self.route.litellm_model, self.messages)
        return tokens_in, tokens_out, USAGE_ESTIMATED if made_up else USAGE_REPORTED

    def record(self) -> StreamResult:
        """Finish the call: the record, then the reservation settled to what was recorded. Tokens produced
        before a cut or a failure were generated (and billed) by the provider too."""
        produced = "".join(self.pieces)
        text = "" if self.withheld else produced
        tokens_in, tokens_out, usage_source = self.counted_usage(produced)
        outcome = Outcome(
            status=self.status,
            route=self.route,
            fallback_taken=self.fallback_taken,
            model_served=self.model_served,
            response=screening.WITHHELD if self.withheld else text,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            ttft_ms=self.ttft_ms,
            usage_source=usage_source,
            error_code=self.error_code,
            errors=[*self.earlier_errors, self.error_detail] if self.error_detail else self.earlier_errors,
        )
        if not self.call.finish(outcome):
            record = self.call.record()
            return _result_from_record(record, error_for_record(record))
        return StreamResult(
            call_id=self.call.call_id,
            request_id=self.call.request_id,
            status=self.status,
            text=text,
            model_served=self.model_served,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost=outcome.cost,
            latency_ms=self.call.latency_ms,
            ttft_ms=self.ttft_ms,
            finish_reason=self.finish_reason or ("stop" if self.status == ModelCall.Status.OK else ""),
            error=self.error,
        )


def _result_from_record(record: ModelCall, error: GatewayError | None) -> StreamResult:
    return StreamResult(
        call_id=record.id,
        request_id=record.request_id,
        status=record.status,
        text=record.response,
        model_served=record.model_served,
        tokens_in=record.tokens_in,
        tokens_out=record.tokens_out,
        cost=record.cost,
        latency_ms=record.latency_ms,
        ttft_ms=record.ttft_ms,
        finish_reason="stop" if record.status == ModelCall.Status.OK else "",
        error=error,
    )


def _replay(previous: ModelCall) -> Iterator[StreamEvent]:
    """Idempotent by request id: a redelivered task gets the recorded answer, the provider is not re-called.
    A call that failed before any token (refused, provider down, interrupted) raises its error again, and so
    does one whose answer was withheld by the cross-tenant screen."""
    if previous.error_code == CrossTenantBlocked.code:
        raise error_for_record(previous)
    if previous.status in (ModelCall.Status.REFUSED, ModelCall.Status.ERROR) and not previous.response:
        raise error_for_record(previous)
    if previous.response:
        yield StreamEvent(kind="token", text=previous.response)
    error: GatewayError | None = None
    if previous.status == ModelCall.Status.CUT_OFF and previous.error_code == KillSwitchOn.code:
        kill_message = previous.error.rsplit(KILL_SWITCH_PREFIX, 1)[-1]
        error = KillSwitchOn(kill_message, call=previous)
    elif previous.status == ModelCall.Status.CUT_OFF and previous.error_code == StopRequested.code:
        error = StopRequested("Stopped.", call=previous)
    elif previous.status == ModelCall.Status.ERROR:
        error = ProviderUnavailable(STREAM_BROKEN, call=previous)
    yield StreamEvent(kind="end", result=_result_from_record(previous, error))


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
