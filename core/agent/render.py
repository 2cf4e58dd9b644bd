"""Error policy in one place: every failure becomes one Reply (chat) or one line (CLI).

A reply says what stopped the request and what to do next, and never an internal address: an LLM
``base_url`` or a database host may sit in an exception's text (useful in pgbot's log, where it also
goes), but people in chat get the sentence without it.
"""

from __future__ import annotations

import re

import structlog

from core.errors import (
    DatabaseUnavailableError,
    LlmAuthError,
    LlmError,
    LlmLengthError,
    LlmRateLimitError,
    LlmResponseError,
    LlmUnavailableError,
    PgbotError,
)
from core.messages import Reply, ReplyKind, new_id

log = structlog.get_logger(__name__)

STILL_WORKS = "/sql and /tables still work"
_URL = re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s,;)\"'<>]+", re.IGNORECASE)
_IP = re.compile(r"(?:\b(?:\d{1,3}\.){3}\d{1,3}|\[[0-9a-f:]*:[0-9a-f:]*\])(?::\d+)?(?:/[^\s,;)\"'<>]*)?",
                 re.IGNORECASE)
_HOST_PORT = re.compile(r"\(\s*'[^']*'\s*,\s*\d+(?:\s*,\s*\d+)*\s*\)")  # asyncpg/OS: ('10.1.2.3', 5432)
_HOST_WORD = re.compile(r"\b(host(?:\s+name)?)\s+\"[^\"]+\"", re.IGNORECASE)
_AT_ADDRESS = re.compile(r"\s+(?:at|to|from)\s+(?:the\s+)?(?:endpoint\s+)?\x00")
_HOST_AND_PORT = re.compile(r"\b(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+):\d{1,5}(?:/[^\s,;)\"'<>]*)?",
                            re.IGNORECASE)
# "endpoint at llm.internal" / "at the endpoint llm.internal/v1": whatever names the endpoint is an address
_ENDPOINT_NAMED = re.compile(r"(\bendpoint)\s+at\s+[^\s,;()]+?(?=[\s,;()]|\.(?:\s|$)|$)"
                             r"|\s+at\s+the\s+endpoint\s+[^\s,;()]+?(?=[\s,;()]|\.(?:\s|$)|$)")


def without_addresses(text: str) -> str:
    """``text`` with URLs, IP addresses (with port and path), host:port pairs and quoted host names taken out
    ("endpoint at http://x/v1 timed out" → "endpoint timed out"); what is left still reads as a sentence."""

    def mark(match: re.Match[str]) -> str:
        address = match.group(0)
        return "\x00" + address[len(address.rstrip(".")):]  # a sentence's full stop is not part of it

    text = _URL.sub(mark, text)
    text = _IP.sub(mark, text)
    text = _HOST_AND_PORT.sub(mark, text)
    text = _AT_ADDRESS.sub("", text)
    text = _ENDPOINT_NAMED.sub(lambda m: m.group(1) or "", text)
    text = _AT_ADDRESS.sub("", text)
    text = text.replace("\x00", "(an internal address)")
    text = _HOST_PORT.sub("", text)
    text = _HOST_WORD.sub(r"\1 (hidden)", text)
    return re.sub(r"\s+([.,;:)])", r"\1", re.sub(r" {2,}", " ", text)).strip()


def _for_people(exc: PgbotError) -> str:
    """The user message without internal addresses, plus the next step where the type says one."""
    text = without_addresses(exc.user_message)
    if isinstance(exc, LlmLengthError):
        return text  # it says the limit and the next step itself
    if isinstance(exc, LlmError):
        body = text.rstrip(".")
        if isinstance(exc, LlmAuthError):
            return f"{body}. Whoever runs pgbot must fix that; {STILL_WORKS} meanwhile."
        if isinstance(exc, LlmRateLimitError):
            return f"{body}. Try again in a minute; {STILL_WORKS} meanwhile."
        if isinstance(exc, LlmResponseError):
            return f"{body}. Ask again, perhaps in other words; {STILL_WORKS}."
        state = "is down" if isinstance(exc, LlmUnavailableError) else "refused the request"
        return f"The model service {state} ({body[:1].lower()}{body[1:]}); {STILL_WORKS}."
    if isinstance(exc, DatabaseUnavailableError) and "again" not in text:
        return f"{text.rstrip('.')}. Try again in a moment; if it lasts, tell whoever runs pgbot."
    return text


def render_error(exc: BaseException, *, database: str | None = None, error_id: str | None = None) -> Reply:
    """A :class:`PgbotError` shows its user_message (what to do next, no internal addresses); anything else
    is an internal error with an id to quote (``error_id``: the turn's request id, so one grep finds every
    log line of that turn), and its traceback goes to the log (never to chat)."""
    if isinstance(exc, PgbotError):
        text = _for_people(exc)
        if text != exc.user_message:
            log.info("error_reworded_for_chat", error_type=type(exc).__name__, original=exc.user_message)
        return Reply(kind=ReplyKind.ERROR, text=text, database=database)
    error_id = error_id or new_id()
    log.error("internal_error", error_id=error_id, error_type=type(exc).__name__, exc_info=exc)
    return Reply(
        kind=ReplyKind.ERROR,
        text=f"Internal error, id={error_id}. The details are in pgbot's log.",
        error_id=error_id,
        database=database,
    )
