"""gateway.embeddings.embed: one policed, recorded embedding call for one tenant.

The protocol of gateway.protocol, as for completions and streams: claim the request id with a 'started' record,
policy (allow-list, kill switch, rate limits, reservation of the input tokens), the provider call through
the Router along the tenant's fallback chain, then the record is completed and the reservation settled
before the vectors are returned. The inputs stand in for the messages; no response text, tokens out = 0.
"""

import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway import policy
from gateway.config import EMBEDDING_KIND, model_kind
from gateway.errors import GatewayError
from gateway.models import ModelCall
from gateway.protocol import GatewayCall, Outcome, error_for_record, settled_record

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
    call = GatewayCall.begin(
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
    if call is None:
        previous = settled_record(tenant_schema, request_id)
        if previous.status == ModelCall.Status.OK:
            # Vectors are not stored (they are large and derivable); a repeated request id is a client bug.
            raise GatewayError("This request id was already used.", call=previous)
        raise error_for_record(previous)

    extra: dict[str, Any] = {"dimensions": dimensions} if dimensions else {}
    with call.finished_even_if_interrupted():
        routed = call.call_provider(
            "embedding", unavailable_message=EMBEDDING_UNAVAILABLE, input=inputs, **extra
        )
        response: Any = routed.response
        vectors = [list(item["embedding"]) for item in sorted(response.data, key=lambda item: item["index"])]
        usage = getattr(response, "usage", None)
        outcome = Outcome(
            status=ModelCall.Status.OK,
            route=routed.route,
            fallback_taken=routed.fallback_taken,
            model_served=str(getattr(response, "model", "") or ""),
            # Without the provider's count, the reserved count stands (recorded and settled alike).
            tokens_in=int(usage.prompt_tokens or 0) if usage is not None else call.reservation.tokens,
            errors=routed.errors,
        )
        recorded = call.finish(outcome)
    if not recorded:
        raise error_for_record(call.record())
    logger.info(
        "model call ok (embedding) tenant=%s request_id=%s model=%s inputs=%d tokens_in=%d latency_ms=%d",
        tenant_schema,
        request_id,
        model,
        len(inputs),
        outcome.tokens_in,
        call.latency_ms,
    )
    return Embeddings(
        call_id=call.call_id,
        request_id=request_id,
        vectors=vectors,
        model_served=outcome.model_served,
        tokens_in=outcome.tokens_in,
        cost=outcome.cost,
    )
