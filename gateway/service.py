"""gateway.service.complete: one audited, policed model call for one tenant.

It drives the protocol of gateway.protocol (the same for streams and embeddings), which callers can rely on:
1. check the tenant context;
2. claim the request id: write a 'started' ModelCall under the request id's unique constraint. A second
   delivery of the same request finds it and never calls the provider again (it returns the recorded
   answer, waits for the owner, or declares the call interrupted once the owner is gone);
3. policy: allow-list, kill switch, rate limits, budget reservation (gateway.policy);
4. the provider call along the tenant's fallback chain (gateway.routing);
5. complete the record (status, model served, fallback, tokens, cost, latency) and, in the same
   transaction, seal it into the tenant's model-call hash chain (audit.chain.seal_in_chain);
6. settle the reservation to exactly what was recorded;
7. only then return the answer (or raise a GatewayError whose user_message is safe to show).
"""

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gateway import policy as gateway_policy
from gateway import screening
from gateway.errors import GatewayError, TenantContextError
from gateway.models import ModelCall
from gateway.protocol import GatewayCall, Outcome, error_for_record, settled_record
from gateway.provider import litellm_module
from gateway.routing import router

logger = logging.getLogger(__name__)

__all__ = [
    "Completion",
    "GatewayError",
    "TenantContextError",
    "complete",
    "load_provider_client",
]


def load_provider_client() -> None:
    """Import LiteLLM and build the Router before the first call (worker start-up)."""
    litellm_module()
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
        return _answer_for_existing(tenant_schema, request_id)
    with call.finished_even_if_interrupted():
        routed = call.call_provider(messages=messages, max_tokens=call.max_tokens)
        response = routed.response
        choice = response.choices[0]
        usage = response.usage
        outcome = Outcome(
            status=ModelCall.Status.OK,
            route=routed.route,
            fallback_taken=routed.fallback_taken,
            model_served=str(response.model or ""),
            response=choice.message.content or "",
            tool_calls=[tool_call.model_dump() for tool_call in (choice.message.tool_calls or [])],
            tokens_in=int(usage.prompt_tokens or 0),
            tokens_out=int(usage.completion_tokens or 0),
            # Earlier attempts that failed before a fallback answered, for the evidence.
            errors=routed.errors,
        )
        # Another tenant's canary marker in the answer: withheld and reported (gateway.screening).
        answer = screening.screen(
            tenant_schema, [outcome.response, *(json.dumps(tool_call) for tool_call in outcome.tool_calls)]
        )
        if answer.foreign:
            raise call.block_answer(outcome, answer)
        if answer.own:
            outcome.response = screening.strip_canaries(outcome.response)
        recorded = call.finish(outcome)
    if not recorded:
        return _answer_for_existing(tenant_schema, request_id)
    latency_ms = call.latency_ms
    logger.info(
        "model call ok tenant=%s request_id=%s model=%s served=%s fallback=%s tokens_in=%d tokens_out=%d "
        "latency_ms=%d",
        tenant_schema,
        request_id,
        model,
        outcome.model_served,
        routed.fallback_taken,
        outcome.tokens_in,
        outcome.tokens_out,
        latency_ms,
    )
    return Completion(
        call_id=call.call_id,
        request_id=request_id,
        text=outcome.response,
        model_served=outcome.model_served,
        tokens_in=outcome.tokens_in,
        tokens_out=outcome.tokens_out,
        cost=outcome.cost,
        latency_ms=latency_ms,
        model_requested=model,
        fallback_taken=routed.fallback_taken,
        tool_calls=outcome.tool_calls,
    )


def _answer_for_existing(tenant_schema: str, request_id: uuid.UUID) -> Completion:
    call = settled_record(tenant_schema, request_id)
    if call.status == ModelCall.Status.OK:
        return _completion_from_record(call)
    raise error_for_record(call)
