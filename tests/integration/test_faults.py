"""Faults against real, private servers: each ends with one clear message in the thread, the conversation goes
on afterwards, and nothing is lost or run twice.

LLM failures at the first call (401/429/500/non-JSON/timeout) are in tests/scenarios/test_failures.py; here
they strike mid-turn, after a query ran. Duplicate events: tests/scenarios/test_replicas.py and the Slack
burst; SIGTERM and a killed replica: tests/integration/test_shutdown.py.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from bot.wiring import build_agent
from core import Reply, ReplyKind
from core.agent.loop import Agent
from core.messages import Message
from tests import llm_server as llm
from tests.helpers import final_reply, load_shop, message, settings_for
from tests.private_servers import private_postgres, private_redis


async def _drive(agent: Agent, msg: Message) -> list[Reply]:
    return [r async for r in agent.handle(msg)]


async def _count_active(dsn: str, marker: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()", f"%{marker}%")
    finally:
        await conn.close()
    return count


async def test_postgres_restarted_mid_query(tmp_path: object) -> None:
    with private_postgres() as server:
        agent = build_agent(settings_for(server.dsn, statement_timeout_ms=60_000))
        thread = uuid.uuid4().hex
        marker = f"marker_{uuid.uuid4().hex[:8]}"
        try:
            turn = asyncio.create_task(_drive(agent, message(f"/sql SELECT pg_sleep(60) AS {marker}", thread=thread)))
            deadline = asyncio.get_running_loop().time() + 10
            while await _count_active(server.dsn, marker) == 0:
                assert asyncio.get_running_loop().time() < deadline, "the query never started"
                await asyncio.sleep(0.05)
            await asyncio.to_thread(server.restart)
            replies = await asyncio.wait_for(turn, timeout=10)
            assert [r.kind for r in replies] == [ReplyKind.WORKING, ReplyKind.ERROR]
            text = replies[-1].text
            assert "'shop'" in text and "restart" in text.lower() and "ask again" in text.lower(), text
            assert "Internal error" not in text
            # The turn has ended (all its replies are in): a retry made within it would still be in its 60 s sleep.
            assert await _count_active(server.dsn, marker) == 0  # not retried behind the user's back
            after = await final_reply(agent, message("/sql SELECT 40 + 2 AS answer", thread=thread))
            assert after.kind is ReplyKind.RESULT and after.table is not None and after.table.rows == ((42,),)
        finally:
            await agent.aclose()


async def test_redis_restarted_mid_conversation(fresh_db: str) -> None:
    gate, thinking = asyncio.Event(), asyncio.Event()

    async def respond(request: llm.JsonObject) -> llm.Reply:
        question = llm.last_question(request)
        if question == "second":
            thinking.set()
            await gate.wait()  # Redis goes away while the model thinks
        return llm.text(f"Noted: {question}.")

    with private_redis() as redis_server:
        async with llm.ScriptedLlmServer(responder=respond) as server:
            settings = settings_for(fresh_db, llm_url=server.base_url, redis_url=redis_server.url)
            settings.redis.lease_s = 1.0
            agent = build_agent(settings)
            thread = uuid.uuid4().hex
            try:
                first = await final_reply(agent, message("first", thread=thread))
                assert first.kind is ReplyKind.ANSWER
                second = asyncio.create_task(_drive(agent, message("second", thread=thread)))
                await asyncio.wait_for(thinking.wait(), timeout=10)
                await asyncio.to_thread(redis_server.stop)
                gate.set()
                replies = await asyncio.wait_for(second, timeout=20)
                assert replies[-1].kind is ReplyKind.ERROR
                assert "Redis" in replies[-1].text and "try again" in replies[-1].text.lower(), replies[-1].text
                down = await final_reply(agent, message("while down", thread=thread))
                assert down.kind is ReplyKind.ERROR and "Redis" in down.text  # told, and nothing ran
                await asyncio.to_thread(redis_server.start)
                third = await asyncio.wait_for(final_reply(agent, message("third", thread=thread)), timeout=20)
                assert third.kind is ReplyKind.ANSWER and "Noted: third." in third.text
            finally:
                await agent.aclose()
            asked = [[llm.question_of(m["content"]) for m in r["messages"] if m["role"] == "user"]
                     for r in server.requests]
            # each question reached the model once; the history survived the restart; the failed turn left no
            # half-written trace and the message sent while Redis was down never ran
            assert asked == [["first"], ["first", "second"], ["first", "third"]]


async def test_llm_5xx_and_timeout_mid_turn_end_clearly_and_the_thread_goes_on(fresh_db: str, llm_server) -> None:
    await load_shop(fresh_db)
    settings = settings_for(fresh_db, llm_url=llm_server.base_url)
    settings.llm.max_retries = 1
    settings.llm.timeout_s = 0.5
    llm_server.script(
        llm.tool_call("run_query", {"sql": "SELECT count(*) AS n FROM orders"}),
        llm.error(502, "bad gateway"), llm.error(503, "unavailable"),  # the retry fails too
        llm.tool_call("run_query", {"sql": "SELECT count(*) AS n FROM customers"}),
        llm.delay(3.0), llm.delay(3.0),
        llm.text("All good now."),
    )
    agent = build_agent(settings)
    thread = uuid.uuid4().hex
    try:
        failed = await final_reply(agent, message("how many orders?", thread=thread))
        assert failed.kind is ReplyKind.ERROR and "503" in failed.text and "Traceback" not in failed.text
        slow = await final_reply(agent, message("how many customers?", thread=thread))
        assert slow.kind is ReplyKind.ERROR and "timed out" in slow.text
        fine = await final_reply(agent, message("still there?", thread=thread))
        assert fine.kind is ReplyKind.ANSWER and fine.text.startswith("All good now.")
    finally:
        await agent.aclose()
    assert len(llm_server.requests) == 7 and llm_server.pending == 0  # each call once, plus one retry each
    last = [m for m in llm_server.requests[-1]["messages"] if m["role"] == "user"]
    # failed turns left nothing half-done in the history
    assert [llm.question_of(m["content"]) for m in last] == ["still there?"]
