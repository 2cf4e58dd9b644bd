"""Red team (after issue 13): SQL that reaches a function the read path's allow-list never saw named.

Postgres looks operators up by name in places the statement never writes one: ``CASE x WHEN y`` compares with
``=``, ``x IN (SELECT …)`` too, and so does ``JOIN … USING``/``NATURAL JOIN``. A hostile ``=`` for a pair of
types that has no exact built-in match (text = integer; an enum's own ``=`` beats the polymorphic ``anyenum``
one) is then chosen by overload resolution, and its function runs SQL. Each statement must be refused, and
nothing may happen.
"""

from __future__ import annotations

import asyncpg
import pytest

from core import ReplyKind
from tests.helpers import final_reply, message
from tests.integration.change_env import ChangeEnv, change_env_fixture  # noqa: F401 - fixture
from tests.integration.test_role_escape import (
    CHANNEL,
    Witness,
    witness,  # noqa: F401 - fixture
)

HOSTILE_EQUALS = f"""
CREATE FUNCTION public.evil_text_eq(a text, b int) RETURNS bool LANGUAGE sql
  AS $$ SELECT public.exec_sql('SELECT pg_notify(''{CHANNEL}'', ''implicit equals'')') IS NOT NULL $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = int, FUNCTION = public.evil_text_eq);
CREATE TYPE public.mood AS ENUM ('ok', 'sad');
CREATE FUNCTION public.evil_mood_eq(a mood, b mood) RETURNS bool LANGUAGE sql
  AS $$ SELECT public.exec_sql('SELECT pg_notify(''{CHANNEL}'', ''join using'')') IS NOT NULL $$;
CREATE OPERATOR public.= (LEFTARG = mood, RIGHTARG = mood, FUNCTION = public.evil_mood_eq);
CREATE TABLE public.codes (code mood);
INSERT INTO public.codes VALUES ('ok');
CREATE TABLE public.moods (code mood);
INSERT INTO public.moods VALUES ('ok');
"""

IMPLICIT_EQUALS = [
    "SELECT CASE 'a'::text WHEN 1 THEN 'one' END AS c",
    "SELECT 'a'::text IN (SELECT 1) AS c",
    "SELECT 'a'::text NOT IN (SELECT 1) AS c",
    "SELECT * FROM codes JOIN moods USING (code)",
    "SELECT * FROM codes NATURAL JOIN moods",
]


@pytest.mark.parametrize("sql", IMPLICIT_EQUALS)
async def test_operators_postgres_adds_by_name_are_checked_too(
        change_env: ChangeEnv, witness: Witness, sql: str) -> None:  # noqa: F811 - the fixture
    env = change_env
    conn = await asyncpg.connect(env.dsn)
    try:
        await conn.execute(HOSTILE_EQUALS)
        await conn.execute(f"GRANT SELECT ON public.codes, public.moods TO {env.analyst}")
    finally:
        await conn.close()
    agent = env.agent()
    reply = await final_reply(agent, message(f"/sql {sql}", user="UANALYST"))
    assert reply.kind is ReplyKind.ERROR, (sql, reply.text)
    assert "Operator =" in reply.text and "public.evil_" in reply.text, reply.text
    await witness.assert_nothing_happened(env)
