"""Listeners above the gateway (the incident tooling) are told about model calls and circuit-breaker changes,
without the gateway importing them (layers: apps above register here when Django starts).

A listener runs inside the call path, in the tenant's context: it must be quick (one Redis round trip is the
budget of the anomaly watch, measured in bench/incidents/) and must not raise; an exception is logged and the
call goes on.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallObserved:
    """A call that passed the policy (its worst case reserved) or was refused by it."""

    tenant_schema: str
    source: str  # "chat", "api", "key:<prefix>", ...
    user_id: int | None
    model: str
    tokens: int = 0  # the worst case reserved (prompt + max_tokens); 0 when refused
    refused_code: str = ""  # the GatewayError code when the policy refused it


_call_listeners: list[Callable[[CallObserved], None]] = []
_breaker_listeners: list[Callable[[str, str], None]] = []


def on_call(listener: Callable[[CallObserved], None]) -> None:
    if listener not in _call_listeners:
        _call_listeners.append(listener)


def on_breaker_change(listener: Callable[[str, str], None]) -> None:
    """listener(alias, "open" | "closed"): called by the process that opened or closed the breaker."""
    if listener not in _breaker_listeners:
        _breaker_listeners.append(listener)


def call_observed(observation: CallObserved) -> None:
    for listener in _call_listeners:
        try:
            listener(observation)
        except Exception:  # noqa: BLE001 - see module docstring
            logger.exception("call listener failed tenant=%s", observation.tenant_schema)


def breaker_changed(alias: str, state: str) -> None:
    for listener in _breaker_listeners:
        try:
            listener(alias, state)
        except Exception:  # noqa: BLE001 - see module docstring
            logger.exception("breaker listener failed model=%s", alias)
