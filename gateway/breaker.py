"""A circuit breaker per catalogue model, shared by every worker through Redis.

closed -> (GATEWAY_BREAKER_THRESHOLD failures within GATEWAY_BREAKER_WINDOW_SECONDS) -> open for
GATEWAY_BREAKER_COOLDOWN_SECONDS: calls skip the model and go to its fallback (or fail fast) ->
half-open: the next call is let through; success closes the breaker, failure opens it again.
It replaces LiteLLM Router's per-process cooldown, so that every worker agrees on which provider is down.
Platform admins see the state with `manage.py gateway_circuits`.
"""

import time
from dataclasses import dataclass

from django.conf import settings

from gateway import store


@dataclass(frozen=True)
class BreakerState:
    alias: str
    failures: int
    opened_until: float
    times_opened: int
    last_error: str
    last_failure_at: float

    @property
    def state(self) -> str:
        if not self.opened_until:
            return "closed"
        return "open" if time.time() < self.opened_until else "half-open"

    @property
    def allows_calls(self) -> bool:
        return self.state != "open"

    @property
    def is_clean(self) -> bool:
        return not self.failures and not self.opened_until


_FIELDS = ["failures", "opened_until", "times_opened", "last_error", "last_failure_at"]


_recent: dict[str, tuple[float, BreakerState]] = {}


def states(aliases: list[str], *, max_age: float = 0.0) -> dict[str, BreakerState]:
    """Breaker states; with max_age, this process's reading of at most that many seconds ago may be used
    (another worker's opening is then seen up to max_age later; this process's own changes at once)."""
    if max_age:
        moment = time.monotonic()
        cached = {alias: _recent.get(alias) for alias in aliases}
        if all(entry is not None and moment - entry[0] < max_age for entry in cached.values()):
            return {alias: entry[1] for alias, entry in cached.items() if entry is not None}
    pipe = store.client().pipeline(transaction=False)
    for alias in aliases:
        pipe.hmget(store.breaker_key(alias), _FIELDS)
    result = {}
    for alias, values in zip(aliases, pipe.execute(), strict=True):
        failures, opened_until, times_opened, last_error, last_failure_at = values
        result[alias] = BreakerState(
            alias=alias,
            failures=int(failures or 0),
            opened_until=float(opened_until or 0),
            times_opened=int(times_opened or 0),
            last_error=store.decode(last_error or b""),
            last_failure_at=float(last_failure_at or 0),
        )
        _recent[alias] = (time.monotonic(), result[alias])
    return result


def record_failure(alias: str, error: str) -> str:
    _recent.pop(alias, None)
    return store.decode(
        store.run(
            store.BREAKER_FAILURE_SCRIPT,
            [store.breaker_key(alias)],
            [
                f"{time.time():.3f}",
                settings.GATEWAY_BREAKER_THRESHOLD,
                settings.GATEWAY_BREAKER_WINDOW_SECONDS,
                settings.GATEWAY_BREAKER_COOLDOWN_SECONDS,
                error[:300],
            ],
        )
    )


def record_success(alias: str) -> None:
    """Close the breaker (the counts restart). Callers skip this when the breaker was already clean."""
    _recent.pop(alias, None)
    times_opened = store.client().hget(store.breaker_key(alias), "times_opened")
    pipe = store.client().pipeline(transaction=True)
    pipe.delete(store.breaker_key(alias))
    if times_opened:
        pipe.hset(store.breaker_key(alias), "times_opened", times_opened)
    pipe.execute()


def reset(alias: str) -> None:
    _recent.pop(alias, None)
    store.client().delete(store.breaker_key(alias))
