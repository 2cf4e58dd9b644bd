"""Error policy in one place: every failure becomes one Reply (chat) or one line (CLI)."""

from __future__ import annotations

import structlog

from core.errors import PgbotError
from core.messages import Reply, ReplyKind, new_id

log = structlog.get_logger(__name__)


def render_error(exc: BaseException, *, database: str | None = None, error_id: str | None = None) -> Reply:
    """A :class:`PgbotError` shows its user_message; anything else is an internal error with an id to
    quote (``error_id``: the turn's request id, so one grep finds every log line of that turn), and its
    traceback goes to the log (never to chat)."""
    if isinstance(exc, PgbotError):
        return Reply(kind=ReplyKind.ERROR, text=exc.user_message, database=database)
    error_id = error_id or new_id()
    log.error("internal_error", error_id=error_id, error_type=type(exc).__name__, exc_info=exc)
    return Reply(
        kind=ReplyKind.ERROR,
        text=f"Internal error, id={error_id}. The details are in pgbot's log.",
        error_id=error_id,
        database=database,
    )
