"""The agent loop without PostgreSQL: MemoryDatabase answers the catalog, server facts and the query.

The model is still the scripted OpenAI-compatible server over real HTTP; only the database is in memory, because
what these tests check is the loop (and the registry's tool-kind rules), not Postgres. The read path is the
configured one (EXPLAIN first included); work that needs a PostgreSQL server is refused by the registry.
"""

from __future__ import annotations

import datetime as dt
import json
import time

from bot.wiring import make_llm
from core import ReplyKind, Settings
from core.agent.loop import Agent
from core.approvals.pending import PendingAction, sql_hash
from core.db.memory import MemoryDatabase, Ran, normalised
from core.db.registry import DatabaseRegistry
from core.db.server_facts import _QUERY as FACTS_SQL
from core.prompt.catalog_cache import CATALOG_SQL, FINGERPRINT_SQL
from core.threads.context import MemoryContextStore
from core.tools.registry import ToolContext, ToolKind, ToolOutput, build_tool, load_tools
from tests import llm_server as llm
from tests.helpers import final_reply, message

SHIPPED_SQL = "SELECT count(*) AS shipped FROM orders WHERE status = 'shipped'"


def shop() -> MemoryDatabase:
    """A database named ``shop`` whose catalog holds one table, ``public.orders``."""
    db = MemoryDatabase("shop")
    db.answer(FINGERPRINT_SQL, columns=["concat_ws"], rows=[["1.1:1.1"]])
    columns = [["id", "id", "integer", True, None], ["status", "status", "text", True, None],
               ["total", "total", "numeric(10,2)", True, None]]
    db.answer(CATALOG_SQL, columns=["oid", "schema", "name", "sql_schema", "sql_name", "kind", "row_estimate",
                                    "comment", "columns", "keys"],
              rows=[[16400, "public", "orders", "public", "orders", "r", 90, "One row per order",
                     json.dumps(columns), json.dumps([["p", 0, ["id"], []]])]])
    db.answer(FACTS_SQL, columns=["version", "tz", "now", "utc_offset_s"],
              rows=[["16.4", "UTC", dt.datetime.now(dt.UTC), 0]])
    return db


def agent_on(db: MemoryDatabase, llm_url: str) -> Agent:
    settings = Settings(
        databases={"shop": {"dsn": "postgresql://memory@memory.invalid/shop"}},
        llm={"base_url": llm_url, "api_key": "sk-test", "model": "test-model", "timeout_s": 5, "max_retries": 0,
             "tool_mode": "native"},
        # Parts of the prompt that read more of the database; the loop is what is tested here.
        accuracy={"relative_dates": False, "value_hints": False, "examples": False},
    )
    return Agent(settings=settings, databases=DatabaseRegistry(settings, {"shop": db}), store=MemoryContextStore(),
                 tools=load_tools(), llm=make_llm(settings))


async def test_a_question_is_answered_from_the_memory_database(llm_server) -> None:
    db = shop()
    db.answer(SHIPPED_SQL, columns=["shipped"], rows=[[30]], types=["int8"])
    llm_server.script(llm.tool_call("run_query", {"sql": SHIPPED_SQL}), llm.text("30 orders have shipped."))
    agent = agent_on(db, llm_server.base_url)
    try:
        reply = await final_reply(agent, message("How many orders shipped?"))
    finally:
        await agent.aclose()

    assert reply.kind is ReplyKind.ANSWER and reply.text == "30 orders have shipped."
    assert reply.sql == (SHIPPED_SQL,)
    assert reply.table is not None and reply.table.rows == ((30,),)
    system = llm_server.requests[0]["messages"][0]["content"]
    assert "public.orders(" in system and "One row per order" in system  # the catalog came from memory
    shipped = [r for r in db.ran if r.sql == SHIPPED_SQL]  # planned first (EXPLAIN), then run
    assert shipped == [Ran(sql=SHIPPED_SQL, role=None, read_only=True, planned=True),
                       Ran(sql=SHIPPED_SQL, role=None, read_only=True)]
    assert {normalised(r.sql) for r in db.ran} == {normalised(s) for s in
                                                   (FINGERPRINT_SQL, CATALOG_SQL, FACTS_SQL, SHIPPED_SQL)}


async def test_a_query_the_memory_database_does_not_know_goes_back_to_the_model(llm_server) -> None:
    """No canned answer fails like an unknown table in Postgres: the model is told and may retry."""
    db = shop()
    db.answer(SHIPPED_SQL, columns=["shipped"], rows=[[30]])
    llm_server.script(llm.tool_call("run_query", {"sql": "SELECT count(*) FROM shipments"}),
                      llm.tool_call("run_query", {"sql": SHIPPED_SQL}), llm.text("30 orders have shipped."))
    agent = agent_on(db, llm_server.base_url)
    try:
        reply = await final_reply(agent, message("How many orders shipped?"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER and reply.sql == (SHIPPED_SQL,)
    retry = llm_server.requests[1]["messages"]
    told = [m["content"] for m in retry if m["role"] == "tool"]
    assert len(told) == 1 and "while planning it" in told[0] and "no answer for" in told[0]
    assert not any(r.sql == "SELECT count(*) FROM shipments" and not r.planned for r in db.ran)  # never run


async def test_a_tool_that_needs_a_postgresql_server_is_refused_on_memory(llm_server) -> None:
    """The health check takes a PostgresDatabase: on a MemoryDatabase the registry says so, nothing half-runs."""
    db = shop()
    llm_server.script(llm.tool_call("health_check", {}))
    agent = agent_on(db, llm_server.base_url)
    try:
        reply = await final_reply(agent, message("Is the database healthy?"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ERROR and "'shop' is not a PostgreSQL server" in reply.text
    assert len(llm_server.requests) == 1


def _action(ctx: ToolContext) -> PendingAction:
    now = time.time()
    return PendingAction(database=ctx.database.name, thread_key=ctx.thread_key, requested_by=ctx.actor.identity,
                         role=ctx.actor.role, sql="DELETE FROM orders", sql_hash=sql_hash("DELETE FROM orders"),
                         kind="write", summary="delete every order", created_at=now, expires_at=now + 60)


async def read_that_proposes(ctx: ToolContext) -> ToolOutput:
    """A READ tool that returns a change to approve."""
    return ToolOutput(text="change waits for approval", pause=_action(ctx))


async def write_that_runs(ctx: ToolContext) -> ToolOutput:
    """A WRITE tool that says it ran its statement."""
    return ToolOutput(text="deleted", sql=("DELETE FROM orders",))


async def test_a_tool_that_breaks_its_kind_ends_the_turn_as_an_internal_error(llm_server) -> None:
    """The registry, not a comment, holds a tool to its kind: READ proposes nothing, WRITE runs nothing."""
    for func, kind in ((read_that_proposes, ToolKind.READ), (write_that_runs, ToolKind.WRITE)):
        llm_server.requests.clear()
        llm_server.script(llm.tool_call(func.__name__, {}))  # the turn ends at the broken output
        agent = agent_on(shop(), llm_server.base_url)
        agent.tools.add(build_tool(func, kind=kind))
        try:
            reply = await final_reply(agent, message("do it"))
        finally:
            await agent.aclose()
        assert reply.kind is ReplyKind.ERROR and reply.error_id, (func.__name__, reply)
        assert "Internal error" in reply.text and reply.approval is None
        assert len(llm_server.requests) == 1  # the broken output never reached the model
