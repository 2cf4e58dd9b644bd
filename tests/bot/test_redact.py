"""The redaction fast path (one search before the substitutions) masks exactly what the substitutions do."""

from __future__ import annotations

import pytest

from bot.redact import _PATTERNS, REDACTED, redact

SAMPLES = [
    "llm_call",
    "SELECT count(*) AS shipped FROM orders WHERE status = 'shipped'",
    "bench:w:c:conv-abc-1",
    "postgresql://app:hunter2@db.internal:5432/shop",
    "host=db user=app PASSWORD='s3 cret' dbname=shop",
    "sslpassword=abc;next",
    "token xoxb-1234567890-abcdef in the error",
    "xapp-1-A0123456789-abcdef",
    "key sk-proj-abcdefgh12345678 leaked",
    "Authorization: Bearer abcdefgh12345678",
    "Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
    "MTA5ODc2NTQzMjEwOTg3NjU0.GhIjKl.abcdefghijklmnopqrstuvwxyz12345",
    "the word password alone, and sk-short, and Bearer x",
]


def _reference(text: str, known: tuple[str, ...]) -> str:
    """Every known secret, then every pattern in order, with no shortcut."""
    for secret in known:
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@pytest.mark.parametrize("text", SAMPLES)
def test_fast_path_masks_what_every_substitution_masks(text: str) -> None:
    known = ("hunter2", "orders")
    assert redact(text, known) == _reference(text, known)


def test_clean_text_comes_back_unchanged_and_credentials_do_not() -> None:
    assert redact(SAMPLES[1]) is SAMPLES[1]  # nothing to mask: not even copied
    masked = [text for text in SAMPLES[3:12] if redact(text) != text]
    assert masked == SAMPLES[3:12]  # every credential shape above is caught
