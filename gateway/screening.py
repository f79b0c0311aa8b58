"""Cross-tenant screening: every outgoing prompt and every answer is scanned, in one pass, for the secret
canary markers of every tenant. A marker of *another* tenant means that tenant's data is in this tenant's
call: the call is blocked before the text reaches the provider, the records or the caller.

Each tenant has secret canary tokens (`cs-canary-` and 24 hex digits). They are planted where the tenant's
data leaves its schema on the way to a model (its prompts' system text, its knowledge-base context; see
`plant`), read from the schema the data came from, so data read in the wrong tenant's schema carries that
tenant's marker wherever it goes. The scan is one Aho-Corasick automaton (pyahocorasick, C) over the tokens
of all tenants: its cost grows with the text, not with the number of tenants (bench/incidents/).

The gateway owns the scan. Where the tokens come from and what a hit sets in motion (a platform incident,
audit events, freezing model calls, alerts) belong to the platform's incident app, which registers them
with `register()` when Django starts; the gateway never imports it. Without a registration (a bare gateway)
nothing is planted and nothing is found.

A tenant's own marker is not a finding: it is stripped from what is recorded and from what is returned, so
neither users nor admins ever see it (the provider does, in the system text it was planted in).
"""

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import ahocorasick
import redis
from django.conf import settings

from gateway import store
from gateway.errors import CrossTenantBlocked
from tenants.context import current_schema, in_tenant_schema

logger = logging.getLogger(__name__)

CANARY_PREFIX = "cs-canary-"
CANARY_HEX_DIGITS = 24
CANARY_LENGTH = len(CANARY_PREFIX) + CANARY_HEX_DIGITS
CANARY_RE = re.compile(re.escape(CANARY_PREFIX) + f"[0-9a-f]{{{CANARY_HEX_DIGITS}}}")

# Where a text was screened, as findings and incidents name it.
PROMPT, RESPONSE, RETRIEVAL, EXPORT = "prompt", "response", "retrieval", "export"

BLOCKED_MESSAGE = (
    "This request was stopped by a security check and the platform's security team has been alerted. "
    "Nothing was sent. Please try again later."
)
WITHHELD = "[withheld: blocked by the cross-tenant screen]"


@dataclass(frozen=True)
class Canary:
    token: str
    owner: str  # the tenant schema whose marker it is
    kind: str  # where it is planted: "prompt", "knowledge"
    canary_id: int


@dataclass(frozen=True)
class Finding:
    """Another tenant's marker found in a text. Never carries the token itself."""

    owner: str
    kind: str
    canary_id: int


@dataclass(frozen=True)
class Screening:
    foreign: tuple[Finding, ...] = ()
    own: bool = False


@dataclass(frozen=True)
class HitReport:
    """What the incident handler is told: which tenant's call (or read, or export) carried whose markers."""

    tenant_schema: str  # the tenant the text was going to
    where: str  # PROMPT, RESPONSE, RETRIEVAL or EXPORT
    findings: tuple[Finding, ...]
    request_id: str = ""
    user_id: int | None = None
    model: str = ""
    source: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Hooks:
    load_canaries: Callable[[], list[Canary]]
    on_hit: Callable[[HitReport], str]
    marker_for: Callable[[str, str], str]


_hooks: _Hooks | None = None


def register(
    *,
    load_canaries: Callable[[], list[Canary]],
    on_hit: Callable[[HitReport], str],
    marker_for: Callable[[str, str], str],
) -> None:
    """load_canaries: every tenant's tokens (retired ones too: old data still carries them).
    on_hit: opens the incident and contains it; returns the incident's reference (e.g. "INC-12").
    marker_for(schema, kind): the tenant's active token of that kind, created if missing."""
    global _hooks
    _hooks = _Hooks(load_canaries, on_hit, marker_for)
    forget_canaries()


# --- the automaton, shared by every call of the process -----------------------------------------------


@dataclass
class _Automaton:
    version: Any
    checked_at: float
    automaton: Any  # ahocorasick.Automaton, or None when no tenant has a canary yet


_current: _Automaton | None = None
_UNKNOWN_VERSION = object()


def canary_version_key() -> str:
    return f"gw:{{{store.namespace()}}}:canaries:version"


def _automaton() -> Any:
    global _current
    if _hooks is None:
        return None
    moment = time.monotonic()
    current = _current
    if current is not None and moment - current.checked_at < settings.GATEWAY_CANARY_CHECK_SECONDS:
        return current.automaton
    version: Any
    try:
        version = store.client().get(canary_version_key())
    except redis.RedisError:
        logger.warning("canary version check failed; screening with the markers as last read")
        if current is not None:
            current.checked_at = moment
            return current.automaton
        version = _UNKNOWN_VERSION
    if current is not None and version == current.version:
        current.checked_at = moment
        return current.automaton
    canaries = _hooks.load_canaries()
    automaton = None
    if canaries:
        automaton = ahocorasick.Automaton()
        for canary in canaries:
            automaton.add_word(canary.token, (canary.owner, canary.kind, canary.canary_id))
        automaton.make_automaton()
    _current = _Automaton(version=version, checked_at=moment, automaton=automaton)
    return automaton


def forget_canaries() -> None:
    """This process reloads the markers at its next scan."""
    global _current
    _current = None


def announce_canary_change() -> None:
    """After a committed change of any tenant's markers: every process reloads at its next check
    (GATEWAY_CANARY_CHECK_SECONDS), this one at once."""
    forget_canaries()
    try:
        store.client().incr(canary_version_key())
    except redis.RedisError:
        logger.error("canary change not announced: Redis unreachable", exc_info=True)


# --- scanning ----------------------------------------------------------------------------------------


def screen(tenant_schema: str, texts: Iterable[str]) -> Screening:
    """One pass of the automaton over each text. Pure: no side effect, nothing raised."""
    automaton = _automaton()
    if automaton is None:
        return Screening()
    foreign: dict[int, Finding] = {}
    own = False
    for text in texts:
        if not text or CANARY_PREFIX not in text:
            # A substring test is several times cheaper than the automaton and rules out almost every text.
            continue
        for _end, (owner, kind, canary_id) in automaton.iter(text):
            if owner == tenant_schema:
                own = True
            else:
                foreign.setdefault(canary_id, Finding(owner=owner, kind=kind, canary_id=canary_id))
    return Screening(foreign=tuple(foreign.values()), own=own)


def strip_canaries(text: str) -> str:
    """The text without any marker (the tenant's own, before it is recorded or shown)."""
    return CANARY_RE.sub("", text) if CANARY_PREFIX in text else text


def block(report: HitReport) -> CrossTenantBlocked:
    """Tell the incident handler (it opens the incident, contains, alerts) and return the error to raise.
    The handler failing must not let the text through: the call is blocked either way."""
    logger.critical(
        "cross-tenant canary hit tenant=%s where=%s owners=%s request_id=%s",
        report.tenant_schema,
        report.where,
        ",".join(sorted({finding.owner for finding in report.findings})),
        report.request_id,
    )
    reference = ""
    if _hooks is not None:
        try:
            reference = _hooks.on_hit(report)
        except Exception:  # noqa: BLE001 - see docstring
            logger.exception("cross-tenant hit handler failed tenant=%s", report.tenant_schema)
    message = BLOCKED_MESSAGE + (f" Reference: {reference}." if reference else "")
    return CrossTenantBlocked(message, reference=reference)


def check(
    tenant_schema: str,
    texts: Iterable[str],
    *,
    where: str,
    request_id: str = "",
    user_id: int | None = None,
    model: str = "",
    source: str = "",
    details: dict[str, Any] | None = None,
) -> Screening:
    """Screen texts on their way to tenant_schema; raise CrossTenantBlocked (after reporting) on a hit."""
    screening = screen(tenant_schema, texts)
    if screening.foreign:
        raise block(
            HitReport(
                tenant_schema=tenant_schema,
                where=where,
                findings=screening.foreign,
                request_id=request_id,
                user_id=user_id,
                model=model,
                source=source,
                details=details or {},
            )
        )
    return screening


def screen_messages(messages: list[dict[str, Any]]) -> list[str]:
    return [content for message in messages if isinstance(content := message.get("content"), str)]


def messages_for_record(messages: list[dict[str, Any]], screening: Screening) -> list[dict[str, Any]]:
    """What the record keeps of the prompt: the tenant's own markers stripped."""
    if not screening.own:
        return messages
    return [
        {**message, "content": strip_canaries(message["content"])}
        if isinstance(message.get("content"), str)
        else message
        for message in messages
    ]


def plant(text: str, kind: str, *, note: str = "Internal reference {token}; never repeat it.") -> str:
    """Append the current schema's marker of that kind to a text on its way to a model. The schema the data
    was read from decides the marker: a read in the wrong tenant's schema carries that tenant's marker."""
    if _hooks is None or not in_tenant_schema():
        return text
    token = _hooks.marker_for(current_schema(), kind)
    return f"{text}\n\n({note.format(token=token)})" if token else text


_PLANTED_RE = re.compile(r"\n\n\(Internal reference " + CANARY_RE.pattern + r"[^)\n]*\)$")


def unplant(text: str) -> str:
    """The text without the note plant() appended (what the tenant wrote; for tests and display)."""
    return _PLANTED_RE.sub("", text)


class StreamScreen:
    """Screens a streamed answer piece by piece. Text is released only once it cannot be the beginning of a
    marker, so a marker split across chunks is caught before any of it is shown; ordinary text (anything
    not ending in a prefix of `cs-canary-<hex>`) is released at once, with no delay."""

    def __init__(self, tenant_schema: str) -> None:
        self.tenant_schema = tenant_schema
        self.pending = ""

    def feed(self, piece: str) -> tuple[str, Screening]:
        """The text that may be shown now, and the screening (foreign findings mean: stop, show nothing)."""
        self.pending += piece
        screening = screen(self.tenant_schema, [self.pending])
        if screening.foreign:
            self.pending = ""
            return "", screening
        if screening.own:
            self.pending = strip_canaries(self.pending)
        cut = _held_back_from(self.pending)
        released, self.pending = self.pending[:cut], self.pending[cut:]
        return released, screening

    def finish(self) -> str:
        """What is left at the end of the stream (already screened: it is not a whole marker)."""
        rest, self.pending = self.pending, ""
        return rest


_HEX = frozenset("0123456789abcdef")


def _held_back_from(text: str) -> int:
    """Index of the earliest suffix of text that could still grow into a marker (len(text) if none)."""
    start = max(0, len(text) - CANARY_LENGTH + 1)
    position = text.find("c", start)
    while position != -1:
        tail = text[position:]
        if len(tail) <= len(CANARY_PREFIX):
            if CANARY_PREFIX.startswith(tail):
                return position
        elif tail.startswith(CANARY_PREFIX) and _HEX.issuperset(tail[len(CANARY_PREFIX) :]):
            return position
        position = text.find("c", position + 1)
    return len(text)
