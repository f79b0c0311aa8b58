"""The platform's model catalogue (catalogue.CatalogueEntry, public schema): aliases, deployments and prices.

A tenant can only allow models from this catalogue, and only enabled models with a known price: either a
price on the entry or one in LiteLLM's bundled price map. A model without a price is refused when a tenant
tries to configure it, and never routed to (it would be recorded as free).

Every model call reads its route here, so each process keeps the catalogue in memory and checks a version
counter in Redis at most every GATEWAY_CATALOGUE_CHECK_SECONDS (one GET); a committed change bumps the
counter (gateway/catalogue.py). Staleness window: another process sees a change at most that many seconds
after its commit (plus the reload itself); the process that made it sees it at once.
"""

import functools
import logging
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import redis
from django.conf import settings

from catalogue.models import CatalogueEntry
from gateway import store
from gateway.provider import litellm_module
from gateway.tokens import Counter, counter_for

logger = logging.getLogger(__name__)


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
    tokenizer: str = ""
    template_tokens: int = 0
    context_window: int | None = None

    def cost(self, tokens_in: int, tokens_out: int) -> Decimal:
        return self.input_cost_per_token * tokens_in + self.output_cost_per_token * tokens_out

    @functools.cached_property
    def counter(self) -> Counter:
        """How this model's tokens are counted (gateway/tokens.py)."""
        return counter_for(
            self.tokenizer, template_tokens=self.template_tokens, litellm_model=self.litellm_model
        )


CHAT_KIND = "chat"
EMBEDDING_KIND = "embedding"


@dataclass
class _Snapshot:
    version: Any  # the counter as Redis returned it (None before the first change)
    checked_at: float
    entries: dict[str, CatalogueEntry]  # enabled entries only
    # A route, or why there is none (the error class and message; a fresh exception is raised each time).
    routes: dict[str, ModelRoute | tuple[type[UnknownModelError], str]] = field(default_factory=dict)


_snapshot: _Snapshot | None = None
_UNKNOWN_VERSION = object()  # equal to no version Redis returns: the next check reloads


def _catalogue() -> _Snapshot:
    global _snapshot
    moment = time.monotonic()
    current = _snapshot
    if current is not None and moment - current.checked_at < settings.GATEWAY_CATALOGUE_CHECK_SECONDS:
        return current
    # The version is read before the rows: a change committed in between is loaded now and loaded again
    # at the next check (its bump is newer than this version), never missed.
    version: Any
    try:
        version = store.client().get(store.catalogue_version_key())
    except redis.RedisError:
        # Pages that list models keep working on what this process knows (model calls fail closed on
        # the same outage anyway); with nothing known yet, read the rows and check again next time.
        logger.warning("catalogue version check failed; using the catalogue as last read", exc_info=True)
        if current is not None:
            current.checked_at = moment
            return current
        version = _UNKNOWN_VERSION
    if current is not None and version == current.version:
        current.checked_at = moment
        return current
    entries = {entry.alias: entry for entry in CatalogueEntry.objects.filter(enabled=True)}
    _snapshot = _Snapshot(version=version, checked_at=moment, entries=entries)
    return _snapshot


def announce_catalogue_change() -> None:
    """After a committed change: every process (this one at once) reloads the catalogue at its next check."""
    global _snapshot
    _snapshot = None
    try:
        store.client().incr(store.catalogue_version_key())
    except redis.RedisError:
        # The change is committed; other processes see it once Redis is back and the next change bumps
        # the counter, or when they restart. Loud, because until then they may charge an old price.
        logger.error("catalogue change not announced: Redis unreachable", exc_info=True)


def forget_catalogue_cache() -> None:
    """This process reads the catalogue afresh at its next use (tests that edit rows inside a transaction)."""
    global _snapshot
    _snapshot = None


def model_kind(alias: str) -> str:
    """ "chat" or "embedding", from the model's catalogue entry (chat for an alias not offered)."""
    entry = _catalogue().entries.get(alias)
    return entry.kind if entry is not None else CHAT_KIND


def catalogue_aliases() -> list[str]:
    """The enabled models, priced or not."""
    return sorted(_catalogue().entries)


def is_offered(alias: str) -> bool:
    return alias in _catalogue().entries


def offered_entries() -> list[CatalogueEntry]:
    """The enabled catalogue entries (priced or not), by alias. Read-only: change them in gateway.catalogue."""
    entries = _catalogue().entries
    return [entries[alias] for alias in sorted(entries)]


def model_max_tokens(alias: str) -> int:
    """The catalogue's cap on a model's answer (UnknownModelError if the model is not offered)."""
    entry = _catalogue().entries.get(alias)
    if entry is None:
        raise UnknownModelError(f"The model {alias!r} is not offered.")
    return entry.max_tokens


def litellm_price(litellm_model: str) -> tuple[Decimal, Decimal] | None:
    """The price per input and output token in LiteLLM's bundled price map, if it has one."""
    entry = litellm_module().model_cost.get(litellm_model) or litellm_module().model_cost.get(
        litellm_model.split("/", 1)[-1]
    )
    if not entry or entry.get("input_cost_per_token") is None or entry.get("output_cost_per_token") is None:
        return None
    return Decimal(str(entry["input_cost_per_token"])), Decimal(str(entry["output_cost_per_token"]))


def _route_from_entry(entry: CatalogueEntry) -> ModelRoute:
    prices: tuple[Decimal, Decimal] | None
    if entry.input_cost_per_token is None or entry.output_cost_per_token is None:
        prices = litellm_price(entry.litellm_model)
    else:
        prices = entry.input_cost_per_token, entry.output_cost_per_token
    if prices is None:
        raise UnpricedModelError(f"The model {entry.alias!r} has no price configured.")
    return ModelRoute(
        alias=entry.alias,
        litellm_model=entry.litellm_model,
        api_base=entry.api_base,
        api_key=os.environ.get(entry.api_key_env, "") if entry.api_key_env else "",
        provider=entry.provider,
        input_cost_per_token=prices[0],
        output_cost_per_token=prices[1],
        max_tokens=entry.max_tokens,
        timeout_seconds=entry.timeout_seconds,
        tokenizer=entry.tokenizer,
        template_tokens=entry.template_tokens,
        context_window=entry.context_window,
    )


def get_model_route(alias: str) -> ModelRoute:
    """The catalogue entry for an alias, with its price. Raises UnknownModelError (or UnpricedModelError)."""
    snapshot = _catalogue()
    route = snapshot.routes.get(alias)
    if route is None:
        entry = snapshot.entries.get(alias)
        if entry is None:
            raise UnknownModelError(f"The model {alias!r} is not offered.")
        try:
            route = _route_from_entry(entry)
        except UnknownModelError as unpriced:
            route = (type(unpriced), str(unpriced))
        snapshot.routes[alias] = route
    if isinstance(route, tuple):
        error_class, message = route
        raise error_class(message)
    return route


def priced_routes() -> list[ModelRoute]:
    routes = []
    for alias in catalogue_aliases():
        try:
            routes.append(get_model_route(alias))
        except UnknownModelError:
            continue
    return routes
