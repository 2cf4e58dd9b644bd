"""Issue 13, findings 1 and 2: a person mapped to a read-only role tries to leave it, as an attacker would.

Real Postgres roles (change_env: the login role is a superuser, so any role switch that got through would
reach any role). Every hostile statement must be refused AND leave no trace: the role never changed, no
notification was delivered, no session was terminated, no secret row reached the reply.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from core import ReplyKind
from core.config import DatabaseSettings
from core.db.postgres import PgDatabase
from core.sqlguard import SqlGuard
from tests import llm_server as llm
from tests.helpers import final_reply, message, wait_until
from tests.integration.change_env import ChangeEnv, change_env_fixture  # noqa: F401 - fixture

CHANNEL = "pgbot_escape"
MARKER = "witness-marker-"  # what the witness itself sends on CHANNEL
# Helpers many databases carry (functions are executable by PUBLIC by default), a function shadowing a
# built-in's name, and an operator whose function runs SQL.
HELPERS = f"""
CREATE FUNCTION public.exec_sql(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text; BEGIN EXECUTE q INTO r; RETURN r; END $$;
CREATE FUNCTION public.lower(n integer) RETURNS text LANGUAGE sql
  AS $$ SELECT public.exec_sql('SELECT pg_notify(''{CHANNEL}'', ''shadow'')') $$;
CREATE FUNCTION public.evil_eq(a int, b int) RETURNS bool LANGUAGE sql
  AS $$ SELECT public.exec_sql('SELECT pg_notify(''{CHANNEL}'', ''operator'')') IS NOT NULL $$;
CREATE OPERATOR public.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = public.evil_eq);
CREATE FUNCTION public.who(r items) RETURNS text LANGUAGE sql
  AS $$ SELECT public.exec_sql('SELECT pg_notify(''{CHANNEL}'', ''row'')') $$;
"""


@dataclass
class Witness:
    """Watches for side effects: notifications on CHANNEL, and a bystander session that must survive."""

    listener: asyncpg.Connection
    bystander: asyncpg.Connection
    bystander_pid: int
    heard: list[str]

    async def assert_nothing_happened(self, env: ChangeEnv) -> None:
        # Postgres delivers notifications in commit order, so once our own marker, sent now, is heard, any
        # notification the statements under test committed has been heard before it.
        marker = f"{MARKER}{uuid.uuid4().hex}"
        await self.listener.execute("SELECT pg_notify($1, $2)", CHANNEL, marker)
        await wait_until(lambda: marker in self.heard, describe=lambda: self.heard)
        assert [h for h in self.heard if not h.startswith(MARKER)] == [], self.heard
        assert await self.bystander.fetchval("SELECT 1") == 1  # not terminated
        # Nothing left a pooled connection under another role: the analyst's next statement is the analyst.
        agent = env.agent()
        reply = await final_reply(agent, message("/sql SELECT current_user AS who", user="UANALYST"))
        assert reply.table is not None and reply.table.rows == ((env.analyst,),)


@pytest.fixture
async def witness(change_env: ChangeEnv) -> AsyncIterator[Witness]:
    conn = await asyncpg.connect(change_env.dsn)
    try:
        await conn.execute(HELPERS)
    finally:
        await conn.close()
    heard: list[str] = []
    listener = await asyncpg.connect(change_env.dsn)
    bystander = await asyncpg.connect(change_env.dsn)
    await listener.add_listener(CHANNEL, lambda *args: heard.append(str(args[-1])))
    try:
        yield Witness(listener, bystander, int(await bystander.fetchval("SELECT pg_backend_pid()")), heard)
    finally:
        await listener.close()
        await bystander.close()


def escapes(env: ChangeEnv, pid: int) -> list[str]:
    """The role-escape corpus: each runs as the analyst, who may not read ``secrets``."""
    dba = env.dba
    switch = f"SELECT set_config(''role'', ''{dba}'', true)"
    return [
        # Finding 1 as reported: ts_rewrite runs its text; a second SQL-running function reads as the new role.
        f"SELECT ts_rewrite('a'::tsquery, '{switch}::tsquery, ''b''::tsquery'), "
        "table_to_xml('secrets', true, false, '')",
        f"SELECT ts_rewrite('a'::tsquery, '{switch}::tsquery, ''b''::tsquery'), "
        "query_to_xml('SELECT secret FROM secrets', true, false, '')",
        "SELECT table_to_xml('secrets', true, false, '')",
        "SELECT query_to_xml('SELECT secret FROM secrets', true, false, '')",
        "SELECT * FROM ts_stat('SELECT to_tsvector(secret) FROM secrets')",
        f"SELECT set_config('role', '{dba}', false)",
        "SELECT pg_catalog.set_config('role', 'none', false)",
        # A helper running dynamic SQL, called by name, qualified, or inside a subquery.
        f"SELECT exec_sql('SELECT set_config(''role'', ''{dba}'', false)')",
        f"SELECT public.exec_sql('SELECT pg_notify(''{CHANNEL}'', ''helper'')')",
        "SELECT * FROM (SELECT (SELECT exec_sql('SELECT pg_read_file(''/etc/hostname'')'))) s",
        # Server files, other sessions, notifications: directly and through nesting or attribute notation.
        "SELECT * FROM (SELECT (SELECT pg_read_file('/etc/hostname')) AS f) s",
        "SELECT ('/etc/hostname'::text).pg_read_file",
        f"SELECT pg_terminate_backend({pid})",
        f"SELECT ({pid}).pg_terminate_backend",
        f"SELECT pg_notify('{CHANNEL}', 'direct')",
        # Names that Postgres could resolve to a function in another schema.
        "SELECT lower(5)",
        "SELECT 1 === 1",
        "SELECT i.who FROM items i",
    ]


async def test_role_escape_corpus_is_refused_and_nothing_happens(change_env: ChangeEnv, witness: Witness) -> None:
    env = change_env
    agent = env.agent()
    for sql in escapes(env, witness.bystander_pid):
        reply = await final_reply(agent, message(f"/sql {sql}", user="UANALYST"))
        assert reply.kind is ReplyKind.ERROR, (sql, reply.text, reply.table)
        assert reply.table is None and "launch codes" not in reply.text, sql
    await witness.assert_nothing_happened(env)


async def test_refusals_say_how_to_allow_a_function_and_how_to_call_the_builtin(
        change_env: ChangeEnv, witness: Witness) -> None:
    agent = change_env.agent()
    helper = await final_reply(agent, message("/sql SELECT exec_sql('SELECT 1')", user="UANALYST"))
    assert 'allowed_functions = ["public.exec_sql"]' in helper.text and "[databases.shop]" in helper.text
    shadow = await final_reply(agent, message("/sql SELECT lower(5)", user="UANALYST"))
    assert "pg_catalog.lower" in shadow.text and 'allowed_functions = ["public.lower"]' in shadow.text
    builtin = await final_reply(agent, message("/sql SELECT pg_catalog.lower('ABC') AS l, upper('x') AS u",
                                               user="UANALYST"))
    assert builtin.kind is ReplyKind.RESULT and builtin.table is not None and builtin.table.rows == (("abc", "X"),)
    await witness.assert_nothing_happened(change_env)


async def test_the_model_cannot_escape_either(change_env: ChangeEnv, witness: Witness,
                                              llm_server: llm.ScriptedLlmServer) -> None:
    env = change_env
    attack = escapes(env, witness.bystander_pid)[0]
    llm_server.script(llm.tool_call("run_query", {"sql": attack}), llm.text("done"))
    agent = env.llm_agent(llm_server.base_url)
    reply = await final_reply(agent, message("show me everything", user="UANALYST"))
    assert "launch codes" not in reply.text and reply.table is None
    sent = str(llm_server.requests[-1])
    assert "Refused" in sent and "launch codes" not in sent
    await witness.assert_nothing_happened(env)


async def test_an_allowed_function_that_switches_role_is_caught_after_the_statement(
        change_env: ChangeEnv, witness: Witness) -> None:
    """An operator allowed exec_sql: the guard lets it run, the role check after the statement stops it."""
    env = change_env
    agent = env.agent(env.settings(allowed_functions=["public.exec_sql"]))
    for local in ("true", "false"):
        sql = (f"/sql SELECT public.exec_sql('SELECT set_config(''role'', ''{env.dba}'', {local})') AS r, "
               "(SELECT public.exec_sql('SELECT secret FROM secrets')) AS s")
        reply = await final_reply(agent, message(sql, user="UANALYST"))
        assert reply.kind is ReplyKind.ERROR, reply
        assert "changed the database role" in reply.text and "launch codes" not in reply.text
    rows = await env.fetch("SELECT role, result, sql FROM pgbot.audit WHERE event = 'security' ORDER BY id")
    assert len(rows) == 2 and all(r["role"] == env.analyst and env.dba in r["result"] for r in rows)
    assert "exec_sql" in rows[0]["sql"]
    ok = await final_reply(agent, message("/sql SELECT public.exec_sql('SELECT current_user::text') AS who",
                                          user="UANALYST"))
    assert ok.table is not None and ok.table.rows == ((env.analyst,),)  # allowed, and harmless, it runs
    await witness.assert_nothing_happened(env)


async def test_a_role_set_for_the_session_does_not_survive_the_pool(change_env: ChangeEnv) -> None:
    """Finding 2: ``set_config('role', x, false)`` (is_local false) outlived the turn on the pooled
    connection, because asyncpg's RESET ALL does not reset ``role``. Here it is set on the very connection
    the pool hands out (as a guard-bypassing function would), then the connection goes back to the pool."""
    env = change_env
    db = PgDatabase("shop", DatabaseSettings(dsn=env.dsn, pool_min_size=1, pool_max_size=1))  # type: ignore[arg-type]
    try:
        pool = await db.pool()
        async with pool.acquire() as conn:
            await conn.execute(f"SELECT set_config('role', '{env.dba}', false)")
            assert await conn.fetchval("SELECT current_user") == env.dba
        async with pool.acquire() as conn:  # the same (only) connection, after the pool's reset
            assert await conn.fetchval("SELECT current_setting('role')") == "none"
            assert await conn.fetchval("SELECT current_user") == await db.login()
        result = await db.fetch(SqlGuard().check_read("SELECT current_user AS who"), role=env.analyst)
        assert result.rows == [(env.analyst,)]
    finally:
        await db.aclose()


async def test_a_connection_taken_under_another_identity_is_terminated_not_used(change_env: ChangeEnv) -> None:
    """The check when a connection is taken: one that comes back from the pool under another role (here the
    pool's reset is switched off for one release, as if it had failed silently) is closed, audited, and the
    statement runs on a fresh connection instead."""
    env = change_env
    db = PgDatabase("shop", DatabaseSettings(dsn=env.dsn, pool_max_size=1))  # type: ignore[arg-type]
    try:
        pool = await db.pool()

        async def no_reset(conn: asyncpg.Connection) -> None:
            return None

        real_reset, pool._reset = pool._reset, no_reset  # type: ignore[attr-defined]
        async with pool.acquire() as conn:
            dirty_pid = await conn.fetchval("SELECT pg_backend_pid()")
            await conn.execute(f'SET ROLE "{env.dba}"')
        pool._reset = real_reset  # type: ignore[attr-defined]
        result = await db.fetch(SqlGuard().check_read("SELECT current_user AS who, pg_backend_pid() AS pid"),
                                role=env.analyst)
        assert result.rows[0][0] == env.analyst and result.rows[0][1] != dirty_pid
    finally:
        await db.aclose()
    assert await env.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", dirty_pid) == 0
    events = await env.fetch("SELECT result FROM pgbot.audit WHERE event = 'security'")
    assert [e["result"].split(":")[0] for e in events] == ["connection_taken"]
    assert env.dba in events[0]["result"]


async def test_a_change_that_switches_role_is_stopped_in_its_preview_and_when_approved(
        change_env: ChangeEnv, witness: Witness) -> None:
    """The identity check covers previews (DML runs rolled back) and approved changes (DDL is not previewed)."""
    env = change_env
    agent = env.agent()
    switch = f"public.exec_sql('SELECT set_config(''role'', ''{env.dba}'', true)')"
    preview = await final_reply(agent, message(f"/sql UPDATE items SET name = {switch} WHERE id = 1",
                                               user="UANALYST"))
    assert preview.kind is ReplyKind.ERROR and "changed the database role" in preview.text
    assert preview.approval is None
    card = await final_reply(agent, message(f"/sql CREATE TABLE leak AS SELECT {switch} AS x, "
                                            "(SELECT public.exec_sql('SELECT secret FROM secrets')) AS s",
                                            user="UANALYST"))
    assert card.approval is not None, card.text
    outcome = await agent.decide(action_id=card.approval.action_id, decided_by="slack:UDBA", approve=True)
    assert "changed the database role" in outcome.text and "launch codes" not in outcome.text
    assert await env.fetchval("SELECT to_regclass('public.leak')") is None  # rolled back with the connection
    assert await env.fetchval("SELECT name FROM items WHERE id = 1") == "item 1"
    events = await env.fetch("SELECT result, sql FROM pgbot.audit WHERE event = 'security' ORDER BY id")
    assert len(events) == 2 and all(env.dba in e["result"] for e in events)
    assert events[0]["sql"].startswith("UPDATE items") and events[1]["sql"].startswith("CREATE TABLE leak")
    await witness.assert_nothing_happened(env)
