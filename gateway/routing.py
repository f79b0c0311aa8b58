"""The provider call: LiteLLM Router over the platform catalogue, walked along the tenant's fallback chain.

- The Router holds one deployment group per catalogue alias and does deployment selection, retries with
  backoff (a provider's Retry-After is honoured) and per-error retry policy; each attempt has a timeout,
  so an outage ends in an error, never a hang.
- The gateway walks the chain (model, then its fallbacks in the tenant's order) itself, consulting the
  shared circuit breaker before each model and recording which model answered.
"""

import functools
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from gateway import breaker, hooks
from gateway.config import ModelRoute, get_model_route, priced_routes
from gateway.provider import litellm_module

logger = logging.getLogger(__name__)

UNAVAILABLE_MESSAGE = "The assistant is unavailable right now. Please try again."


class AllProvidersFailed(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors)[:2000])
        self.errors = errors


@dataclass(frozen=True)
class RoutedResponse:
    response: Any
    route: ModelRoute
    fallback_taken: bool
    errors: list[str]


@functools.lru_cache(maxsize=4)
def _router_for(catalogue_json: str) -> Any:
    litellm = litellm_module()
    model_list = [
        {
            "model_name": route["alias"],
            "litellm_params": {
                "model": route["litellm_model"],
                "api_base": route["api_base"] or None,
                "api_key": route["api_key"] or None,
                "timeout": route["timeout_seconds"],
                # Retries are the Router's job (with backoff); the HTTP client must not add its own.
                "max_retries": 0,
            },
        }
        for route in json.loads(catalogue_json)
    ]
    retries = settings.GATEWAY_RETRIES
    return litellm.Router(
        model_list=model_list,
        num_retries=retries,
        retry_policy={
            # A provider that hangs until the timeout will likely hang again: go to the fallback.
            "TimeoutErrorRetries": 0,
            "RateLimitErrorRetries": retries,
            "InternalServerErrorRetries": retries,
            "BadRequestErrorRetries": 0,
            "AuthenticationErrorRetries": 0,
            "ContentPolicyViolationErrorRetries": 0,
        },
        retry_after=0,
        # Cooldowns are shared across processes by gateway.breaker instead of kept per process.
        disable_cooldowns=True,
    )


def router() -> Any:
    routes = [
        {
            "alias": r.alias,
            "litellm_model": r.litellm_model,
            "api_base": r.api_base,
            "api_key": r.api_key,
            "timeout_seconds": r.timeout_seconds,
        }
        for r in priced_routes()
    ]
    return _router_for(json.dumps(routes, sort_keys=True))


def call_chain(
    chain: list[str], *, metadata: dict[str, str], operation: str = "completion", **params: Any
) -> RoutedResponse:
    """Try each model of the chain in order; raise AllProvidersFailed when none answers.

    operation: the Router method ("completion" or "embedding"); params go to it as they are (messages,
    max_tokens, stream, input, ...). For a stream, only opening it can fail over: once the provider has
    answered with a stream, its chunks belong to that model."""
    breakers = breaker.states(chain, max_age=settings.GATEWAY_POLICY_CACHE_SECONDS)
    errors: list[str] = []
    for position, alias in enumerate(chain):
        state = breakers[alias]
        if not state.allows_calls:
            errors.append(f"{alias}: circuit open")
            continue
        route = get_model_route(alias)
        try:
            response = getattr(router(), operation)(model=alias, metadata=metadata, **params)
        except Exception as failure:  # noqa: BLE001 - any provider failure moves on to the fallback
            summary = f"{type(failure).__name__}: {failure}"[:500]
            errors.append(f"{alias}: {summary}")
            if breaker.record_failure(alias, summary) == "open":
                logger.warning("circuit opened model=%s error=%s", alias, type(failure).__name__)
                hooks.breaker_changed(alias, "open")
            continue
        if not state.is_clean:
            breaker.record_success(alias)
            if state.opened_until:
                hooks.breaker_changed(alias, "closed")
        return RoutedResponse(response, route, position > 0, errors)
    raise AllProvidersFailed(errors)
