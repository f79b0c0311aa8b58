"""The platform's model catalogue (settings.GATEWAY_MODELS): aliases, deployments and prices.

A tenant can only allow models from this catalogue, and only models with a known price: either a price in
our config or one in LiteLLM's bundled price map. A model without a price is refused when a tenant tries
to configure it, and never routed to (it would be recorded as free).
"""

import functools
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings


class UnknownModelError(LookupError):
    pass


class UnpricedModelError(UnknownModelError):
    pass


@dataclass(frozen=True)
class ModelRoute:
    alias: str
    litellm_model: str
    api_base: str
    api_key: str
    provider: str
    input_cost_per_token: Decimal
    output_cost_per_token: Decimal
    max_tokens: int
    timeout_seconds: float

    def cost(self, tokens_in: int, tokens_out: int) -> Decimal:
        return self.input_cost_per_token * tokens_in + self.output_cost_per_token * tokens_out


CHAT_KIND = "chat"
EMBEDDING_KIND = "embedding"


def model_kind(alias: str) -> str:
    """ "chat" or "embedding", from the model's entry in settings.GATEWAY_MODELS."""
    return str(settings.GATEWAY_MODELS.get(alias, {}).get("kind", CHAT_KIND))


def catalogue_aliases() -> list[str]:
    return sorted(settings.GATEWAY_MODELS)


def _litellm_price(litellm_model: str) -> tuple[Decimal, Decimal] | None:
    from gateway.service import litellm_module

    entry = litellm_module().model_cost.get(litellm_model) or litellm_module().model_cost.get(
        litellm_model.split("/", 1)[-1]
    )
    if not entry or entry.get("input_cost_per_token") is None or entry.get("output_cost_per_token") is None:
        return None
    return Decimal(str(entry["input_cost_per_token"])), Decimal(str(entry["output_cost_per_token"]))


@functools.lru_cache(maxsize=256)
def _route_from_entry(alias: str, entry_json: str) -> ModelRoute:
    entry: dict[str, Any] = json.loads(entry_json)
    prices: tuple[Decimal, Decimal] | None
    if entry.get("input_cost_per_token") in (None, "") or entry.get("output_cost_per_token") in (None, ""):
        prices = _litellm_price(entry["litellm_model"])
    else:
        prices = Decimal(str(entry["input_cost_per_token"])), Decimal(str(entry["output_cost_per_token"]))
    if prices is None:
        raise UnpricedModelError(f"The model {alias!r} has no price configured.")
    return ModelRoute(
        alias=alias,
        litellm_model=entry["litellm_model"],
        api_base=entry.get("api_base", ""),
        api_key=entry.get("api_key", ""),
        provider=entry.get("provider", ""),
        input_cost_per_token=prices[0],
        output_cost_per_token=prices[1],
        max_tokens=int(entry.get("max_tokens", 256)),
        timeout_seconds=float(entry.get("timeout_seconds", 60)),
    )


def get_model_route(alias: str) -> ModelRoute:
    """The catalogue entry for an alias, with its price. Raises UnknownModelError (or UnpricedModelError)."""
    try:
        entry = settings.GATEWAY_MODELS[alias]
    except KeyError:
        raise UnknownModelError(f"The model {alias!r} is not offered.") from None
    # Keyed on the entry's content, so a changed catalogue (tests point it at a new simulator) is seen.
    return _route_from_entry(alias, json.dumps(entry, sort_keys=True, default=str))


def priced_routes() -> list[ModelRoute]:
    routes = []
    for alias in catalogue_aliases():
        try:
            routes.append(get_model_route(alias))
        except UnknownModelError:
            continue
    return routes
