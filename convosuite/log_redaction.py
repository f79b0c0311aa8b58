"""Prompt, message and response text never reaches a log at INFO or above.

Two rules, applied to every log record at INFO and above when it is created (a LogRecord factory, so it
holds for every logger and every handler, including the ones Celery and pytest install on their own):

1. Records from libraries that may print request or response bodies (LiteLLM, httpx, httpcore, openai)
   keep their logger name and level but their text is withheld.
2. Any record whose text (message or traceback) contains a text this process recently encrypted,
   decrypted or explicitly registered (keys.crypto and chat register prompts, messages and answers) gets
   that text replaced by a marker. Texts shorter than MIN_SENSITIVE_CHARS are not registered: they would
   redact ordinary words everywhere; their lines are matched individually for longer texts.

The factory is installed by the ``RedactSensitiveText`` filter that settings.LOGGING attaches to its
handlers (so configuring Django logging is enough); the filter then re-checks records for those handlers.
DEBUG records are left alone: DEBUG is never enabled outside a developer's machine.
"""

import logging
import threading
import traceback
from collections import OrderedDict
from typing import Any

REDACTED = "[redacted]"
MIN_SENSITIVE_CHARS = 12
MAX_REMEMBERED_TEXTS = 1024
BODY_LOGGERS = ("LiteLLM", "litellm", "httpx", "httpcore", "openai")

_lock = threading.Lock()
_sensitive: "OrderedDict[str, None]" = OrderedDict()


def remember_sensitive_text(text: str) -> None:
    """Register a text (and each of its longer lines) that must not appear in logs."""
    if len(text) < MIN_SENSITIVE_CHARS:
        return
    pieces = {text.strip()} | {line.strip() for line in text.splitlines()}
    with _lock:
        for piece in pieces:
            if len(piece) >= MIN_SENSITIVE_CHARS:
                _sensitive[piece] = None
                _sensitive.move_to_end(piece)
        while len(_sensitive) > MAX_REMEMBERED_TEXTS:
            _sensitive.popitem(last=False)


def _redact(text: str) -> str:
    with _lock:
        pieces = [piece for piece in _sensitive if piece in text]
    # Longest first, so a whole text is replaced before one of its lines.
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, REDACTED)
    return text


def redact_record(record: logging.LogRecord) -> None:
    if record.levelno < logging.INFO or getattr(record, "_convosuite_redacted", False):
        return
    record._convosuite_redacted = True
    if record.name.startswith(BODY_LOGGERS):
        record.msg = f"{REDACTED} {record.name} log text withheld (may contain prompt or response text)"
        record.args = ()
        if record.exc_info:
            record.exc_text = f"{REDACTED} traceback withheld: {record.exc_info[0]!r}"
            record.exc_info = None
        return
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string must not break logging; leave it to the handler
        return
    cleaned = _redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, ()
    if record.exc_info and record.exc_info[0] is not None:
        rendered = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        cleaned_tb = _redact(rendered)
        if cleaned_tb != rendered:
            record.exc_text, record.exc_info = cleaned_tb, None
    if record.stack_info:
        record.stack_info = _redact(record.stack_info)


_installed = False


def install_record_factory() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


class RedactSensitiveText(logging.Filter):
    """For settings.LOGGING handlers: installs the record factory and redacts again at the handler."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        install_record_factory()

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True
