"""Policy checked on every model call before a provider is contacted: allow-list, kill switch, rate limits
and the budget reservation (reserve the worst case, settle to actual, release on failure).

This module's functions are the contract between the call paths (complete, stream, the tenant API) and
the policy store. The gateway issue fills in the bodies; their signatures are stable.
"""

import uuid
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Reservation:
    tenant_schema: str
    request_id: uuid.UUID
    user_id: int | None
    model: str
    tokens: int
    cost: Decimal


def check_kill_switch(tenant_schema: str) -> None:
    """Raise KillSwitchOn if the tenant's kill switch is on. Cheap enough to call between stream chunks."""


def reserve(
    *,
    tenant_schema: str,
    request_id: uuid.UUID,
    user_id: int | None,
    model: str,
    prompt_tokens: int,
    max_tokens: int,
) -> Reservation:
    """Check allow-list, kill switch and rate limits, then atomically reserve the worst case.
    Raises ModelNotAllowed, KillSwitchOn, RateLimited or BudgetExceeded."""
    return Reservation(tenant_schema, request_id, user_id, model, prompt_tokens + max_tokens, Decimal(0))


def settle(reservation: Reservation, *, tokens_in: int, tokens_out: int, cost: Decimal) -> None:
    """Replace the reserved worst case with the actual usage."""


def release(reservation: Reservation) -> None:
    """Give the reservation back after a failed call."""
