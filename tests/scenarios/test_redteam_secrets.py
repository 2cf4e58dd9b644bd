"""Red team: passwords in SQL spelt so the free-text masker missed them.

Questions and slash commands are stored in thread history as free text, masked by pattern, not by the SQL
scanner. Those patterns missed ``PASSWORD $$…$$`` (the untagged dollar quote), ``E'…'`` and ``U&'…'``, and all
but the first piece of a continued literal: Postgres joins string constants separated by whitespace that holds
a newline (comments allowed), so ``PASSWORD 'Hunter'`` + newline + ``'-2-Secret'`` sets the whole password.
``/sql ALTER ROLE … PASSWORD $$…$$`` put the password in Redis and in every later prompt of the thread.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis.asyncio as aioredis

from core import ReplyKind
from core.sql_secrets import mask_sql, mask_text
from tests.helpers import final_reply, message
from tests.integration.change_env import ChangeEnv, change_env_fixture  # noqa: F401 - fixture
from tests.services import delete_keys

SPELLINGS = [
    "ALTER ROLE pgbot_nobody PASSWORD 'Hunter'\n'-2-Secret'",
    "ALTER ROLE pgbot_nobody WITH ENCRYPTED PASSWORD E'Hunter' -- the rest:\n  '-2-Secret'",
    "CREATE ROLE pgbot_nobody LOGIN PASSWORD 'Hunter'\n'-2-'\n'Secret' VALID UNTIL 'infinity'",
]


@pytest.mark.parametrize("sql", SPELLINGS)
def test_every_piece_of_a_continued_password_is_masked(sql: str) -> None:
    for masked in (mask_sql(sql), mask_text(sql)):
        assert "Secret" not in masked and "Hunter" not in masked, masked
    assert "'infinity'" in mask_sql(SPELLINGS[2])  # the literal after the password is not one


async def test_the_card_never_shows_a_piece_of_the_password(change_env: ChangeEnv) -> None:
    agent = change_env.agent()
    card = await final_reply(agent, message(f"/sql {SPELLINGS[0]}", user="UDBA"))
    assert card.kind is ReplyKind.APPROVAL and card.approval is not None, card.text
    shown = json.dumps(card.to_json())
    assert "Secret" not in shown and "Hunter" not in shown, card.approval.sql


@pytest.mark.parametrize("spelling", ["$$Hunter-2-Secret$$", "$pw$Hunter-2-Secret$pw$", "E'Hunter-2-\\'Secret'",
                                      "U&'Hunter-2-Secret'"])
def test_free_text_masks_every_spelling_of_a_password_literal(spelling: str) -> None:
    text = f"please run: ALTER ROLE bob PASSWORD {spelling}; thanks"  # a question: prose, not one statement
    masked = mask_text(text)
    assert "Secret" not in masked and "Hunter" not in masked and masked.endswith("; thanks"), masked


async def test_a_dollar_quoted_password_in_a_slash_command_never_reaches_history(change_env: ChangeEnv) -> None:
    """The command's text is stored as the user's turn (free text): its password must be masked there too."""
    env = change_env
    thread = f"redteam-secret-{uuid.uuid4().hex}"
    agent = env.agent()
    card = await final_reply(agent, message("/sql ALTER ROLE pgbot_nobody PASSWORD $$Hunter-2-Secret$$",
                                            user="UDBA", thread=thread))
    assert card.kind is ReplyKind.APPROVAL, card.text
    client = aioredis.Redis.from_url(env.redis_url, decode_responses=True)
    try:
        stored = "".join(await client.lrange(f"pgbot:ctx:slack:T1:C1:{thread}:history", 0, -1))
        assert "ALTER ROLE pgbot_nobody" in stored and "Secret" not in stored, stored
    finally:
        await client.aclose()
        await delete_keys(env.redis_url, f"pgbot:ctx:slack:T1:C1:{thread}:*")


def test_the_password_patterns_stay_linear_on_hostile_text() -> None:
    """The continuation pattern must not backtrack catastrophically on quotes and dashes (a ReDoS)."""
    for hostile in ("password " + "'--" * 5000 + "x", "password " + "'a' --" * 5000, "password $$ " * 2000,
                    "password " + "'a'\n--\n" * 5000 + "x"):
        started = time.perf_counter()
        mask_text(hostile)
        assert time.perf_counter() - started < 1.0, hostile[:40]
