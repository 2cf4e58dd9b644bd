"""Structured logging for every entry point, with secrets scrubbed from every event."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog
from pydantic import SecretStr

from core.config import Settings

REDACTED = "***"


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


class SecretScrubber:
    """A structlog processor replacing any known secret inside any string value."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = [s for s in secrets if s]

    def __call__(self, logger: object, name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if not self._secrets:
            return event
        for key, value in list(event.items()):
            if isinstance(value, str):
                for secret in self._secrets:
                    if secret in value:
                        value = value.replace(secret, REDACTED)
                event[key] = value
        return event


def configure_logging(
    settings: Settings | None, *, level: str | None = None, stream: TextIO | None = None, file: Path | None = None,
) -> None:
    """Console logs on stderr for servers; a JSON file for interactive commands so the chat stays clean."""
    level_name = (level or (settings.observability.log_level if settings else "info")).upper()
    secrets = secret_values(settings) if settings else []
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.processors.format_exc_info,
        SecretScrubber(secrets),
    ]
    as_json = file is not None or (settings is not None and settings.observability.log_format == "json")
    processors.append(structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False))
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        out: TextIO = file.open("a", encoding="utf-8")
    else:
        out = stream or sys.stderr
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level_name)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
