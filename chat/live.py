"""Live delivery of an assistant reply while the worker streams it.

The worker appends each token to a Redis stream keyed by tenant and request id (the broker's Redis, its own
keys); the web process reads that stream from the start and relays it to the browser as server-sent events.
Reading from the start is what lets a late subscriber (a reload, a second tab, a reconnect) get the whole
answer. The database stays the truth: the final event is rendered from the stored message, and when Redis
has nothing to say (stream expired, worker not started yet) the relay asks the database.
"""

import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import redis
from django.conf import settings
from django.db import connection

from chat.models import Message

logger = logging.getLogger(__name__)

# Long enough for any late subscriber of a finished answer; the stored message outlives it anyway.
STREAM_TTL_SECONDS = 15 * 60
# How long one blocking read waits before the relay checks the database and sends a keep-alive.
READ_BLOCK_MS = 5_000
# An answer cannot take longer than the task's hard time limit; the relay gives up a little after that.
RELAY_LIMIT_SECONDS = settings.CELERY_TASK_TIME_LIMIT + 30
# The rendered preview of an answer being written is sent at most this often (each render is the whole
# answer so far through the Markdown renderer and the sanitiser).
RENDER_INTERVAL_SECONDS = 0.1
_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=READ_BLOCK_MS / 1000 + 5)


def stream_key(tenant_schema: str, request_id: uuid.UUID) -> str:
    return f"convosuite:reply-stream:{tenant_schema}:{request_id}"


class ReplyPublisher:
    """Used by the worker. A Redis hiccup must not lose the answer: the web process falls back to the
    database, so publishing failures are logged and swallowed."""

    def __init__(self, tenant_schema: str, request_id: uuid.UUID) -> None:
        self.key = stream_key(tenant_schema, request_id)
        self.broken = False

    def token(self, text: str) -> None:
        self._add({"type": "token", "text": text})

    def end(self, status: str) -> None:
        self._add({"type": "end", "status": status})

    def restart(self) -> None:
        """A redelivered task starts the reply over: drop what an earlier, killed attempt published, and
        tell a browser that already shows part of it to clear it (its position is older than this event)."""
        try:
            _redis().delete(self.key)
        except redis.RedisError:
            self.broken = True
        self._add({"type": "reset"})

    def _add(self, fields: dict[str, str]) -> None:
        if self.broken:
            return
        try:
            pipe = _redis().pipeline(transaction=False)
            pipe.xadd(self.key, fields)  # type: ignore[arg-type]
            pipe.expire(self.key, STREAM_TTL_SECONDS)
            pipe.execute()
        except redis.RedisError as failure:
            self.broken = True
            logger.warning("reply stream unavailable key=%s error=%s", self.key, type(failure).__name__)


def sse_event(event: str, data: dict[str, Any], event_id: str | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id:
        lines.append(f"id: {event_id}")
    lines.append(f"data: {json.dumps(data, separators=(',', ':'))}")
    return "\n".join(lines) + "\n\n"


def _entry_key(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def relay_reply(
    tenant_schema: str,
    message: Message,
    render_final: Callable[[Message], str],
    *,
    render_partial: Callable[[str], str] | None = None,
    last_event_id: str = "",
) -> Iterator[str]:
    """Server-sent events for one assistant message: `token` events (the text as it comes), `render` events
    (the whole answer so far rendered as sanitised HTML by render_partial, at most every
    RENDER_INTERVAL_SECONDS), then one `done` event carrying the message's final HTML. A reconnecting
    browser sends Last-Event-ID: tokens resume after it; the next render event has the whole text again."""
    if message.status != Message.Status.PENDING or message.request_id is None:
        yield sse_event("done", {"html": render_final(message)})
        return
    key = stream_key(tenant_schema, message.request_id)
    # The stream is always read from its start (the rendered preview needs the whole text); events this
    # browser already saw, up to Last-Event-ID, are not sent again.
    seen_until = _entry_key(last_event_id) if _ENTRY_ID.match(last_event_id) else None
    position = "0-0"
    text = ""
    # Whether this browser may be showing part of the answer: only then does a restarted answer need a "reset".
    shown = seen_until is not None
    unrendered = False
    rendered_at = 0.0
    # Do not hold a database connection while waiting on Redis; the next query opens one again.
    connection.close()
    yield "retry: 2000\n\n"
    deadline = time.monotonic() + RELAY_LIMIT_SECONDS
    while time.monotonic() < deadline:
        wait_ms = READ_BLOCK_MS
        if unrendered:
            wait_ms = max(1, int((rendered_at + RENDER_INTERVAL_SECONDS - time.monotonic()) * 1000))
        try:
            batches: Any = _redis().xread({key: position}, count=200, block=wait_ms)
        except redis.RedisError as failure:
            logger.warning("reply stream read failed key=%s error=%s", key, type(failure).__name__)
            batches = []
            time.sleep(1)
        if not batches and not unrendered:
            message.refresh_from_db(fields=["status", "content", "error_for_user", "citations"])
            connection.close()
            if message.status != Message.Status.PENDING:
                yield sse_event("done", {"html": render_final(message)})
                return
            yield ": still working\n\n"
            continue
        for _key, entries in batches:
            for entry_id, fields in entries:
                position = entry_id.decode()
                fresh = seen_until is None or _entry_key(position) > seen_until
                kind = fields.get(b"type", b"").decode()
                if kind == "token":
                    piece = fields.get(b"text", b"").decode()
                    text += piece
                    unrendered = True
                    if fresh:
                        shown = True
                        yield sse_event("token", {"text": piece}, position)
                elif kind == "reset":
                    text, unrendered = "", False
                    if fresh and shown:
                        shown = False
                        yield sse_event("reset", {}, position)
                elif kind == "end":
                    message.refresh_from_db(fields=["status", "content", "error_for_user", "citations"])
                    yield sse_event("done", {"html": render_final(message)}, position)
                    return
        if (
            unrendered
            and render_partial is not None
            and time.monotonic() >= rendered_at + RENDER_INTERVAL_SECONDS
        ):
            shown = True
            yield sse_event("render", {"html": render_partial(text)}, position)
            unrendered, rendered_at = False, time.monotonic()
        elif render_partial is None:
            unrendered = False
    # Still pending after the longest a task may run: let the page poll (the task may be redelivered).
    yield sse_event("timeout", {})
