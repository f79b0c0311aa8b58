"""gateway.embeddings.embed: one audited embedding call for one tenant, recorded like any model call
(the inputs stand in for the messages, no response text, tokens out = 0)."""

import logging
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings

from gateway import policy
from gateway.config import UnknownModelError, get_model_route
from gateway.errors import GatewayError, ModelNotAllowed, ProviderUnavailable
from gateway.models import ModelCall
from gateway.service import _check_tenant_context, litellm_module
from gateway.streaming import _record, count_text_tokens

logger = logging.getLogger(__name__)

EMBEDDING_KIND = "embedding"


@dataclass(frozen=True)
class Embeddings:
    call_id: uuid.UUID
    request_id: uuid.UUID
    vectors: list[list[float]]
    model_served: str
    tokens_in: int
    cost: Decimal


def model_kind(alias: str) -> str:
    """ "chat" or "embedding", from the model's entry in settings.GATEWAY_MODELS."""
    return str(settings.GATEWAY_MODELS.get(alias, {}).get("kind", "chat"))


def embed(
    *,
    tenant_schema: str,
    request_id: uuid.UUID,
    user_id: int | None,
    model: str,
    inputs: list[str],
    dimensions: int | None = None,
) -> Embeddings:
    _check_tenant_context(tenant_schema)
    recorded_inputs = [{"role": "input", "content": text} for text in inputs]
    previous = ModelCall.objects.filter(request_id=request_id).first()
    if previous is not None:
        # Vectors are not stored (they are large and derivable); a repeated request id is a client bug.
        raise GatewayError("This request id was already used.", call=previous)
    try:
        route = get_model_route(model)
        if model_kind(model) != EMBEDDING_KIND:
            raise UnknownModelError(f"The model {model!r} is not an embedding model.")
    except UnknownModelError as refusal:
        call = _record(
            request_id, user_id, model, recorded_inputs, status=ModelCall.Status.REFUSED, error=str(refusal)
        )
        raise ModelNotAllowed(str(refusal), call=call) from refusal

    prompt_tokens = sum(count_text_tokens(route, text) for text in inputs)
    try:
        reservation = policy.reserve(
            tenant_schema=tenant_schema,
            request_id=request_id,
            user_id=user_id,
            model=model,
            prompt_tokens=prompt_tokens,
            max_tokens=0,
        )
    except GatewayError as refusal:
        refusal.call = _record(
            request_id,
            user_id,
            model,
            recorded_inputs,
            status=ModelCall.Status.REFUSED,
            error=refusal.user_message,
            provider=route.provider,
        )
        raise

    started = time.perf_counter()
    extra: dict[str, Any] = {"dimensions": dimensions} if dimensions else {}
    try:
        response: Any = litellm_module().embedding(
            model=route.litellm_model,
            input=inputs,
            api_base=route.api_base,
            api_key=route.api_key,
            timeout=route.timeout_seconds,
            num_retries=0,
            metadata={"tenant": tenant_schema, "request_id": str(request_id)},
            **extra,
        )
    except Exception as failure:  # noqa: BLE001 - every provider failure must be recorded, whatever its type
        policy.release(reservation)
        logger.warning(
            "embedding call failed tenant=%s request_id=%s model=%s error=%s",
            tenant_schema,
            request_id,
            model,
            type(failure).__name__,
        )
        call = _record(
            request_id,
            user_id,
            model,
            recorded_inputs,
            status=ModelCall.Status.ERROR,
            error=f"{type(failure).__name__}: {failure}"[:2000],
            provider=route.provider,
            latency_ms=int((time.perf_counter() - started) * 1000),
        )
        raise ProviderUnavailable(
            "The embedding model is unavailable right now. Please try again.", call=call
        ) from failure

    latency_ms = int((time.perf_counter() - started) * 1000)
    vectors = [list(item["embedding"]) for item in sorted(response.data, key=lambda item: item["index"])]
    usage = getattr(response, "usage", None)
    tokens_in = int(usage.prompt_tokens or 0) if usage is not None else prompt_tokens
    cost = route.cost(tokens_in, 0)
    call = _record(
        request_id,
        user_id,
        model,
        recorded_inputs,
        status=ModelCall.Status.OK,
        model_served=str(getattr(response, "model", "") or ""),
        provider=route.provider,
        tokens_in=tokens_in,
        cost=cost,
        latency_ms=latency_ms,
    )
    policy.settle(reservation, tokens_in=tokens_in, tokens_out=0, cost=cost)
    logger.info(
        "embedding call ok tenant=%s request_id=%s model=%s inputs=%d tokens_in=%d latency_ms=%d",
        tenant_schema,
        request_id,
        model,
        len(inputs),
        tokens_in,
        latency_ms,
    )
    return Embeddings(
        call_id=call.id,
        request_id=request_id,
        vectors=vectors,
        model_served=call.model_served,
        tokens_in=tokens_in,
        cost=cost,
    )
