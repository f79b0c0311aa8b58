"""Model aliases the product offers, read from settings.GATEWAY_MODELS."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings


class UnknownModelError(LookupError):
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


def get_model_route(alias: str) -> ModelRoute:
    try:
        entry = settings.GATEWAY_MODELS[alias]
    except KeyError:
        raise UnknownModelError(f"The model {alias!r} is not offered.") from None
    for price_field in ("input_cost_per_token", "output_cost_per_token"):
        # A model with no known price would be recorded as free; refuse to route to it instead.
        if entry.get(price_field) in (None, ""):
            raise UnknownModelError(f"The model {alias!r} has no price configured.")
    return ModelRoute(
        alias=alias,
        litellm_model=entry["litellm_model"],
        api_base=entry["api_base"],
        api_key=entry["api_key"],
        provider=entry.get("provider", ""),
        input_cost_per_token=Decimal(str(entry["input_cost_per_token"])),
        output_cost_per_token=Decimal(str(entry["output_cost_per_token"])),
        max_tokens=int(entry.get("max_tokens", 256)),
        timeout_seconds=float(entry.get("timeout_seconds", 60)),
    )
