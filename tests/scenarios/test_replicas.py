"""Two Agents sharing one Redis (two replicas in one process): redelivered events, and draining on shutdown.

The burst over two Slack apps is in tests/adapters/slack/test_replicas.py; approvals across replicas in
tests/integration/test_replica_approvals.py; real processes (SIGTERM, SIGKILL) in
tests/integration/test_shutdown.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.wiring import build_agent
from core import Reply, ReplyKind
from core.agent.loop import Agent
from core.messages import Message
from core.threads.inflight import LEASE_LOST, NOT_TAKEN, RESTARTING
from tests import llm_server as llm
from tests.helpers import active_queries, message, settings_for
from tests.services import delete_keys


async def _drive(agent: Agent, msg: Message) -> list[Reply]:
    return [r async for r in agent.handle(msg)]


@pytest.fixture
async def two_agents(fresh_db: str, redis_url: str, llm_server: llm.ScriptedLlmServer) -> AsyncIterator[list[Agent]]:
    llm_server.responder = llm.always(llm.text("the answer"), delay_s=0.05)
    agents = [build_agent(settings_for(fresh_db, llm_url=llm_server.base_url, redis_url=redis_url))
              for _ in range(2)]
    yield agents
    for agent in agents:
        await agent.aclose()


async def _forget(redis_url: str, *fragments: str) -> None:
    await delete_keys(redis_url, *(f"pgbot:*{fragment}*" for fragment in fragments))


async def test_an_event_delivered_to_both_replicas_at_once_is_answered_once(
    two_agents: list[Agent], llm_server: llm.ScriptedLlmServer, redis_url: str
) -> None:
    thread = uuid.uuid4().hex
    event = f"C1:{thread}"
    first = Message(platform="slack", workspace="T1", channel="C1", thread=thread, user="U1", text="how many?",
                    event_id=event)
    try:
        results = await asyncio.gather(*(_drive(agent, first) for agent in two_agents for _ in range(5)))
        answered = [r for r in results if r]
        assert len(answered) == 1 and [r.kind for r in answered[0]] == [ReplyKind.WORKING, ReplyKind.ANSWER]
        assert results.count([]) == 9  # the redeliveries got no reply at all
        assert len(llm_server.requests) == 1
        later = await _drive(two_agents[1], first)  # Slack's retry minutes later: still a duplicate
        assert later == []
        follow_up = Message(platform="slack", workspace="T1", channel="C1", thread=thread, user="U1",
                            text="and yesterday?", event_id=f"C1:{thread}.2")
        replies = await _drive(two_agents[1], follow_up)
        assert replies[-1].kind is ReplyKind.ANSWER and len(llm_server.requests) == 2
        history = [llm.question_of(m["content"]) for m in llm_server.requests[1]["messages"] if m["role"] == "user"]
        assert history == ["how many?", "and yesterday?"]  # the other replica's turn is in the thread's history
    finally:
        await _forget(redis_url, thread)


async def _until(check: object, *, within_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


async def test_drain_finishes_quick_turns_cancels_slow_ones_and_tells_every_thread(
    fresh_db: str, redis_url: str
) -> None:
    agent = build_agent(settings_for(fresh_db, redis_url=redis_url, statement_timeout_ms=60_000))
    slow_thread, quick_thread = uuid.uuid4().hex, uuid.uuid4().hex
    marker = f"marker_{uuid.uuid4().hex[:8]}"
    try:
        slow = asyncio.create_task(_drive(agent, message(f"/sql SELECT pg_sleep(30) AS {marker}", thread=slow_thread)))
        queued = asyncio.create_task(_drive(agent, message("/sql SELECT 1 AS behind", thread=slow_thread)))
        quick = asyncio.create_task(_drive(agent, message("/sql SELECT pg_sleep(0.3) AS quick", thread=quick_thread)))
        await _until(lambda: _has(fresh_db, marker))
        loop = asyncio.get_running_loop()
        started = loop.time()
        agent.begin_shutdown()
        late = await _drive(agent, message("/sql SELECT 2", thread=quick_thread))  # arrives during the drain
        cancelled = await agent.drain(grace_s=1.2)
        took = loop.time() - started
        slow_replies, queued_replies, quick_replies = await asyncio.gather(slow, queued, quick)
        assert cancelled == 2 and took < 2.5
        assert slow_replies[-1].kind is ReplyKind.ERROR and slow_replies[-1].text == RESTARTING
        assert queued_replies[-1].text == RESTARTING  # waited behind it in the thread: told as well
        assert quick_replies[-1].kind is ReplyKind.RESULT  # finished within the grace period
        assert late[-1].text == NOT_TAKEN
        assert await active_queries(fresh_db, marker) == 0  # the server-side query was cancelled, not left running
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        state = await client.hgetall(f"pgbot:turn:{message('', thread=slow_thread).thread_key}")
        await client.aclose()
        assert "holder" not in state  # the lease was released, not left to expire
    finally:
        await agent.aclose()
        await _forget(redis_url, slow_thread, quick_thread)


async def _has(dsn: str, marker: str) -> bool:
    return await active_queries(dsn, marker) > 0


async def test_a_turn_whose_lease_is_lost_stops_and_says_so(fresh_db: str, redis_url: str) -> None:
    settings = settings_for(fresh_db, redis_url=redis_url, statement_timeout_ms=60_000)
    settings.redis.lease_s = 0.6
    agent = build_agent(settings)
    thread = uuid.uuid4().hex
    marker = f"marker_{uuid.uuid4().hex[:8]}"
    try:
        turn = asyncio.create_task(_drive(agent, message(f"/sql SELECT pg_sleep(30) AS {marker}", thread=thread)))
        await _until(lambda: _has(fresh_db, marker))
        client = aioredis.Redis.from_url(redis_url)
        await client.delete(f"pgbot:turn:{message('', thread=thread).thread_key}")  # Redis lost the thread's line
        await client.aclose()
        replies = await asyncio.wait_for(turn, timeout=5)
        assert replies[-1].kind is ReplyKind.ERROR and replies[-1].text == LEASE_LOST
        await _until(lambda: _gone(fresh_db, marker))  # its query was cancelled on the server
        after = await _drive(agent, message("/sql SELECT 1 AS ok", thread=thread))
        assert after[-1].kind is ReplyKind.RESULT  # the thread goes on in a new line
    finally:
        await agent.aclose()
        await _forget(redis_url, thread)


async def _gone(dsn: str, marker: str) -> bool:
    return await active_queries(dsn, marker) == 0
