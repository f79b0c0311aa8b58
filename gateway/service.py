"""gateway.service.complete: one audited model call for one tenant.

Order of work, which callers can rely on: check the tenant context, route the model, call the provider,
write the ModelCall row in the tenant's schema, and only then return the answer. Policy (allow-list,
kill switch, rate limits, budget reservation) joins in the gateway issue at the marked step.
"""

import functools
import logging
import os
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from audit.chain import append_to_chain
from gateway.config import UnknownModelError, get_model_route
from gateway.errors import GatewayError, ModelNotAllowed, ProviderUnavailable, TenantContextError
from gateway.models import ModelCall
from tenants.context import current_schema, in_tenant_schema

logger = logging.getLogger(__name__)


@functools.cache
def _litellm() -> Any:
    """LiteLLM takes ~3 s to import: load it on the first model call, not in every web process."""
    # Use LiteLLM's bundled price map: never fetch it from the internet at import time.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # LiteLLM must not phone home or print request bodies.
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


def load_provider_client() -> None:
    _litellm()


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
    )


def _check_tenant_context(tenant_schema: str) -> None:
    active = current_schema()
    if not in_tenant_schema() or active != tenant_schema:
        raise TenantContextError(f"Model call for tenant {tenant_schema!r} attempted in schema {active!r}.")


def complete(
    *,
    tenant_schema: str,
    request_id: uuid.UUID,
    user_id: int | None,
    model: str,
    messages: list[dict[str, str]],
) -> Completion:
    _check_tenant_context(tenant_schema)
    previous = ModelCall.objects.filter(request_id=request_id).first()
    if previous is not None:
        # Idempotent by request id: a redelivered task gets the recorded answer, the provider is not re-called.
        if previous.status == ModelCall.Status.OK:
            return _completion_from_record(previous)
        raise GatewayError("The assistant could not answer this message.", call=previous)

    try:
        route = get_model_route(model)
    except UnknownModelError as refusal:
        call = _record(
            request_id, user_id, model, messages, status=ModelCall.Status.REFUSED, error=str(refusal)
        )
        raise ModelNotAllowed(str(refusal), call=call) from refusal

    # (The gateway issue adds: allow-list, kill switch, rate limit and budget reservation here.)
    started = time.perf_counter()
    try:
        response: Any = _litellm().completion(
            model=route.litellm_model,
            messages=messages,
            api_base=route.api_base,
            api_key=route.api_key,
            max_tokens=route.max_tokens,
            timeout=route.timeout_seconds,
            num_retries=0,
            metadata={"tenant": tenant_schema, "request_id": str(request_id)},
        )
    except Exception as failure:  # noqa: BLE001 - every provider failure must be recorded, whatever its type
        latency_ms = int((time.perf_counter() - started) * 1000)
        logger.warning(
            "model call failed tenant=%s request_id=%s model=%s error=%s",
            tenant_schema,
            request_id,
            model,
            type(failure).__name__,
        )
        call = _record(
            request_id,
            user_id,
            model,
            messages,
            status=ModelCall.Status.ERROR,
            error=f"{type(failure).__name__}: {failure}"[:2000],
            provider=route.provider,
            latency_ms=latency_ms,
        )
        raise ProviderUnavailable(
            "The assistant is unavailable right now. Please try again.", call=call
        ) from failure

    latency_ms = int((time.perf_counter() - started) * 1000)
    choice = response.choices[0]
    text = choice.message.content or ""
    tool_calls = [tool_call.model_dump() for tool_call in (choice.message.tool_calls or [])]
    usage = response.usage
    tokens_in, tokens_out = int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)
    call = _record(
        request_id,
        user_id,
        model,
        messages,
        status=ModelCall.Status.OK,
        model_served=str(response.model or ""),
        provider=route.provider,
        response_text=text,
        tool_calls=tool_calls,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost=route.cost(tokens_in, tokens_out),
        latency_ms=latency_ms,
    )
    logger.info(
        "model call ok tenant=%s request_id=%s model=%s served=%s tokens_in=%d tokens_out=%d latency_ms=%d",
        tenant_schema,
        request_id,
        model,
        call.model_served,
        tokens_in,
        tokens_out,
        latency_ms,
    )
    return _completion_from_record(call)


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
    tool_calls: list[dict[str, Any]] | None = None,
    tokens_in: int = 0,
    tokens_out: int = 0,
    cost: Decimal = Decimal(0),
    latency_ms: int = 0,
) -> ModelCall:
    try:
        with transaction.atomic():
            return append_to_chain(
                ModelCall,
                request_id=request_id,
                user_id=user_id,
                model_requested=model,
                model_served=model_served,
                provider=provider,
                messages=messages,
                response=response_text,
                tool_calls=tool_calls or [],
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost=cost,
                latency_ms=latency_ms,
                status=status,
                error=error,
            )
    except IntegrityError:
        # Another delivery of the same request recorded it first; that record is the truth.
        return ModelCall.objects.get(request_id=request_id)
