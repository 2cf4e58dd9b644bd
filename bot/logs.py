"""Structured logging for every entry point, with secrets scrubbed from every event.

structlog events and the standard-library records of asyncpg, aiohttp, slack_bolt and discord.py go through
the same processors (timestamp, level, the turn's ``request_id``, secret redaction) and the same renderer, so
a JSON log is one JSON object per line whatever wrote it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, TextIO

import structlog
from pydantic import SecretStr

from bot.redact import REDACTED, RedactSecrets
from core.config import Settings

__all__ = ["LOG_FILE", "REDACTED", "RedactSecrets", "configure_logging", "secret_values"]

LOG_FILE = Path.home() / ".pgbot" / "pgbot.log"  # the command line's log; chat servers log to stderr


def secret_values(settings: Settings) -> list[str]:
    """Every secret in the settings (keys, tokens, DSN passwords), to be scrubbed from logs."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            if secret:
                found.append(secret)
                found.extend(_dsn_password(secret))
        elif hasattr(value, "__pydantic_fields__"):
            for name in type(value).__pydantic_fields__:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(settings)
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def _dsn_password(dsn: str) -> list[str]:
    from urllib.parse import urlsplit

    try:
        password = urlsplit(dsn).password
    except ValueError:
        return []
    return [password] if password else []


def configure_logging(
    settings: Settings | None, *, level: str | None = None, stream: TextIO | None = None, file: Path | None = None,
) -> None:
    """Console logs on stderr for servers; a JSON file for interactive commands so the chat stays clean (stderr
    when that file cannot be written)."""
    level_name = (level or (settings.observability.log_level if settings else "info")).upper()
    secrets = secret_values(settings) if settings else []
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.processors.format_exc_info,
        RedactSecrets(secrets),  # last before rendering: it also sees the formatted traceback
    ]
    out: TextIO = stream or sys.stderr
    unwritable: str | None = None
    if file is not None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            out = file.open("a", encoding="utf-8")
        except OSError as exc:
            # e.g. a read-only root filesystem (deploy/k8s) under `kubectl exec … pgbot ask`: the command must
            # still run, so its log goes to stderr, with a warning that says why.
            unwritable = f"{file}: {exc.strerror or exc}"
            file = None
    as_json = file is not None or (settings is not None and settings.observability.log_format == "json")
    renderer: Any = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    level_no = logging.getLevelName(level_name)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    _route_stdlib(out, level_no, shared, renderer, owns_stream=file is not None)
    if unwritable is not None:
        structlog.get_logger(__name__).warning("log_file_unwritable", detail=unwritable)


class _PgbotHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the root handler pgbot installed, so configuring again replaces it instead of adding one."""

    owns_stream = False


def _route_stdlib(out: TextIO, level: int, shared: list[Any], renderer: Any, *, owns_stream: bool) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _PgbotHandler)]:
        root.removeHandler(old)
        if old.owns_stream and old.stream is not out:
            old.stream.close()  # the log file an earlier configure_logging opened
    handler = _PgbotHandler(out)
    handler.owns_stream = owns_stream
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    root.addHandler(handler)
    # Libraries' INFO lines (one per HTTP request to the model, Bolt's banners) are noise at info level and
    # cost time per turn; their warnings and errors always come through, everything with log_level = debug.
    root.setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))
