"""Mask secrets in log events: the configured ones by value, and anything shaped like a credential.

Known values (``bot.logs.secret_values``) catch the secrets pgbot was given; the patterns catch the ones it
was not, such as a DSN typed into chat, a token in a library's error message, or an Authorization header in
a traceback. Fields named like a secret (``token=``, ``password=``) are masked whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping
from typing import Any

REDACTED = "***"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host (postgresql, redis, amqp, http proxies ...): keep the user, mask the password
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)[^@\s/]+(@)"), rf"\g<1>{REDACTED}\g<2>"),
    # libpq key/value DSNs and query strings: password=..., sslpassword=...
    (re.compile(r"(\b(?:ssl)?password\s*=\s*)('[^']*'|[^\s&;]+)", re.I), rf"\g<1>{REDACTED}"),
    # Slack tokens: bot, user, app-level, refresh, config
    (re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9\-]{6,}"), REDACTED),
    # OpenAI-style API keys (sk-..., sk-proj-...)
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), REDACTED),
    # Authorization headers: Bearer / Bot / Basic credentials
    (re.compile(r"\b([Bb]earer)(\s+)[A-Za-z0-9._~+/=\-]{8,}"), rf"\g<1>\g<2>{REDACTED}"),
    (re.compile(r"\b(Bot|Basic)(\s+)[A-Za-z0-9._~+/=\-]{16,}"), rf"\g<1>\g<2>{REDACTED}"),
    # Discord bot tokens: three base64url parts
    (re.compile(r"\b[A-Za-z0-9_\-]{23,28}\.[A-Za-z0-9_\-]{6,7}\.[A-Za-z0-9_\-]{27,}"), REDACTED),
)
# One pass that finds whether any pattern above could match: almost every logged string has no credential,
# and one search is far cheaper than seven substitutions (bench/overhead.py logs several events a turn).
_ANY_PATTERN = re.compile("|".join(f"(?{'i' if pattern.flags & re.I else ''}:{pattern.pattern})"
                                   for pattern, _ in _PATTERNS))
_SECRET_KEY = re.compile(
    r"^(?:password|passwd|secret|token|api_?key|authorization|signing_secret|.*_(?:token|secret|password))$", re.I
)


def redact(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with every known secret and every credential-shaped substring replaced by ``***``."""
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if _ANY_PATTERN.search(text) is None:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets:
    """A structlog processor (also used for stdlib records): masks secrets in every string, nested too."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._known = sorted({s for s in known if s}, key=len, reverse=True)

    def __call__(self, logger: object, name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if isinstance(value, str) and _SECRET_KEY.match(key) and value:
                event[key] = REDACTED
            else:
                event[key] = self._clean(value, depth=0)
        return event

    def _clean(self, value: Any, *, depth: int) -> Any:
        if isinstance(value, str):
            return redact(value, self._known)
        if depth >= 4:
            return value
        if isinstance(value, dict):
            return {k: REDACTED if isinstance(k, str) and _SECRET_KEY.match(k) and isinstance(v, str) and v
                    else self._clean(v, depth=depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self._clean(v, depth=depth + 1) for v in value]
        if isinstance(value, tuple):
            return tuple(self._clean(v, depth=depth + 1) for v in value)
        return value
