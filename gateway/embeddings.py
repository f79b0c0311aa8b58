"""gateway.embeddings.embed: one policed, recorded embedding call for one tenant.

Same protocol as gateway.service.complete (shared code): claim the request id with a 'started' record,
policy (allow-list, kill switch, rate limits, reservation of the input tokens), the provider call through
the Router along the tenant's fallback chain, then the record is completed and the reservation settled
before the vectors are returned. The inputs stand in for the messages; no response text, tokens out = 0.
"""

import logging
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway import policy
from gateway.config import EMBEDDING_KIND, model_kind
from gateway.errors import GatewayError
from gateway.models import ModelCall
from gateway.routing import AllProvidersFailed, call_chain
from gateway.service import (
    begin_call,
    error_for_record,
    fail_call,
    finish_record,
    settle_or_leave_to_expiry,
    settled_record,
)

logger = logging.getLogger(__name__)

__all__ = ["EMBEDDING_KIND", "Embeddings", "embed", "model_kind"]

EMBEDDING_UNAVAILABLE = "The embedding model is unavailable right now. Please try again."


@dataclass(frozen=True)
class Embeddings:
    call_id: uuid.UUID
    request_id: uuid.UUID
    vectors: list[list[float]]
    model_served: str
    tokens_in: int
    cost: Decimal


def embed(
    *,
    tenant_schema: str,
    request_id: uuid.UUID,
    user_id: int | None,
    model: str,
    inputs: list[str],
    dimensions: int | None = None,
    source: str = "",
    api_key: policy.KeyLimits | None = None,
) -> Embeddings:
    recorded_inputs = [{"role": "input", "content": text} for text in inputs]
    claimed = begin_call(
        tenant_schema=tenant_schema,
        request_id=request_id,
        user_id=user_id,
        model=model,
        messages=recorded_inputs,
        max_tokens=None,
        source=source,
        kind=EMBEDDING_KIND,
        api_key=api_key,
    )
    if claimed is None:
        previous = settled_record(tenant_schema, request_id)
        if previous.status == ModelCall.Status.OK:
            # Vectors are not stored (they are large and derivable); a repeated request id is a client bug.
            raise GatewayError("This request id was already used.", call=previous)
        raise error_for_record(previous)

    started = time.perf_counter()
    extra: dict[str, Any] = {"dimensions": dimensions} if dimensions else {}
    try:
        routed = call_chain(
            claimed.chain, metadata=claimed.metadata, operation="embedding", input=inputs, **extra
        )
    except AllProvidersFailed as failure:
        raise fail_call(claimed, failure, started, EMBEDDING_UNAVAILABLE) from failure

    latency_ms = int((time.perf_counter() - started) * 1000)
    response: Any = routed.response
    vectors = [list(item["embedding"]) for item in sorted(response.data, key=lambda item: item["index"])]
    usage = getattr(response, "usage", None)
    tokens_in = int(usage.prompt_tokens or 0) if usage is not None else claimed.reservation.tokens
    cost = routed.route.cost(tokens_in, 0)
    model_served = str(getattr(response, "model", "") or "")
    finished = finish_record(
        claimed.call_id,
        status=ModelCall.Status.OK,
        model_served=model_served,
        model_alias_served=routed.route.alias,
        fallback_taken=routed.fallback_taken,
        provider=routed.route.provider,
        tokens_in=tokens_in,
        cost=cost,
        latency_ms=latency_ms,
        error="; ".join(routed.errors)[:2000],
    )
    settle_or_leave_to_expiry(
        policy.settle, claimed.reservation, tokens_in=tokens_in, tokens_out=0, cost=cost
    )
    if not finished:
        raise error_for_record(ModelCall.objects.get(id=claimed.call_id))
    logger.info(
        "model call ok (embedding) tenant=%s request_id=%s model=%s inputs=%d tokens_in=%d latency_ms=%d",
        tenant_schema,
        request_id,
        model,
        len(inputs),
        tokens_in,
        latency_ms,
    )
    return Embeddings(
        call_id=claimed.call_id,
        request_id=request_id,
        vectors=vectors,
        model_served=model_served,
        tokens_in=tokens_in,
        cost=cost,
    )
