"""Errors name the limit that stopped the request and the next step, and never an internal address."""

from __future__ import annotations

import re

import asyncpg

from bot.wiring import build_agent
from core import ReplyKind, Settings
from tests.helpers import final_reply, message, settings_for
from tests.services import free_port, throwaway_role


async def test_a_slow_read_names_its_limit_and_what_to_do(fresh_db: str) -> None:
    agent = build_agent(settings_for(fresh_db, statement_timeout_ms=300, export_timeout_ms=60_000))
    try:
        reply = await final_reply(agent, message("/sql SELECT pg_sleep(3)"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ERROR
    assert reply.text.startswith("Timed out after 0.3 s, the read limit on 'shop'")
    assert reply.text.endswith("narrow the dates or filters or export the rows (exports may run longer).")


async def test_a_refused_table_names_the_role_and_where_to_look(fresh_db: str, pg_admin_dsn: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("CREATE TABLE salaries (who text, amount numeric)")
    finally:
        await conn.close()
    async with throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_analyst") as role:
        agent = build_agent(settings_for(fresh_db, roles={"slack:U1": role}))
        try:
            reply = await final_reply(agent, message("/sql SELECT * FROM salaries"))
        finally:
            await agent.aclose()
    assert reply.kind is ReplyKind.ERROR
    assert reply.text == (f"Role {role} can't read table salaries on 'shop' (Postgres: permission denied for table "
                          "salaries). /tables lists what you can read.")


async def test_the_model_being_down_says_what_still_works_without_its_address(fresh_db: str) -> None:
    port = free_port()  # nothing listens there
    settings = settings_for(fresh_db, llm_url=f"http://127.0.0.1:{port}/v1")
    settings.llm.timeout_s = 0.5
    settings.llm.max_retries = 0
    agent = build_agent(settings)
    try:
        reply = await final_reply(agent, message("how many orders?"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ERROR
    assert reply.text.startswith("The model service is down (")
    assert reply.text.endswith("/sql and /tables still work.")
    assert "127.0.0.1" not in reply.text and "http" not in reply.text and str(port) not in reply.text


async def test_an_unreachable_database_hides_its_host() -> None:
    agent = build_agent(Settings(databases={"down": {"dsn": "postgresql://pgbot:pw@127.0.0.1:1/x",
                                                     "connect_timeout_s": 2}}))
    try:
        reply = await final_reply(agent, message("/sql SELECT 1"))
    finally:
        await agent.aclose()
    assert reply.text.startswith("Database 'down' cannot be reached")
    assert reply.text.endswith("Try again in a moment; if it lasts, tell whoever runs pgbot.")
    assert not re.search(r"127\.0\.0\.1|:1\b|pw", reply.text)


def test_addresses_are_taken_out_of_any_error_text() -> None:
    from core.agent.render import render_error
    from core.errors import DatabaseUnavailableError, LlmAuthError, LlmError

    cases = {
        LlmError("Model 'm' not found at the endpoint llm.corp.internal/v1/chat/completions (HTTP 404)."):
            "llm.corp.internal",
        LlmAuthError("The language model endpoint at llm.corp.internal rejected the API key (HTTP 401)."):
            "llm.corp.internal",
        LlmError("The language model endpoint at localhost:11434 refused the request (HTTP 400)."): "11434",
        LlmError("The language model call failed at https://user@gw.example/v1?key=1."): "gw.example",
        DatabaseUnavailableError("Database 'x' cannot be reached: Multiple exceptions: [Errno 111] Connect call "
                                 "failed ('10.0.3.4', 5432), [Errno 99] Cannot assign requested address"): "10.0.3.4",
        DatabaseUnavailableError('Database \'x\' cannot be reached: could not translate host name "db.internal" '
                                 "to address"): "db.internal",
        DatabaseUnavailableError("Database 'x' connection failed: [fd00::1]:5432 unreachable"): "fd00",
    }
    for error, address in cases.items():
        text = render_error(error).text
        assert address not in text and "http" not in text, text
    assert render_error(LlmAuthError("The language model endpoint at h rejected the API key (HTTP 401).")).text == (
        "The language model endpoint rejected the API key (HTTP 401). Whoever runs pgbot must fix that; /sql and "
        "/tables still work meanwhile.")
