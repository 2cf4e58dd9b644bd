"""Many conversations at once through the whole agent: ordering per thread, parallel threads, bounded queues
with clear "busy" replies (never a dropped message), over real HTTP (scripted LLM) and real Postgres."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from bot.wiring import build_agent
from core import Reply, ReplyKind
from core.agent.loop import Agent
from core.messages import Message
from tests import llm_server as llm
from tests.helpers import message, settings_for, wait_until


async def _drive(agent: Agent, msg: Message) -> list[Reply]:
    return [r async for r in agent.handle(msg)]


async def test_one_thread_in_order_while_other_threads_run_in_parallel(fresh_db: str, llm_server) -> None:
    in_flight: dict[str, int] = defaultdict(int)
    peak: dict[str, int] = defaultdict(int)
    order: list[str] = []
    side_by_side = asyncio.Event()

    async def respond(request: llm.JsonObject) -> llm.Reply:
        question = llm.last_question(request)
        thread = question.split("-")[0]
        group = "A" if thread == "A" else "others"
        for key in {thread, group}:
            in_flight[key] += 1
            peak[key] = max(peak[key], in_flight[key])
        if thread == "A":
            order.append(question)
        elif in_flight["others"] == 20:
            side_by_side.set()
        if thread != "A":  # each other thread's model call waits until all 20 are in one at once
            await asyncio.wait_for(side_by_side.wait(), timeout=20)
        for key in {thread, group}:
            in_flight[key] -= 1
        return llm.text(f"answer to {question}")

    llm_server.responder = respond
    settings = settings_for(fresh_db, llm_url=llm_server.base_url)
    settings.llm.timeout_s = 30  # the other threads' calls wait for each other, however loaded the machine
    agent = build_agent(settings)
    try:
        thread_a = [asyncio.create_task(_drive(agent, message(f"A-{i}", thread="A", user="alice")))
                    for i in range(50)]
        others = [asyncio.create_task(_drive(agent, message(f"T{i}-0", thread=f"T{i}", user=f"u{i}")))
                  for i in range(20)]
        other_replies = await asyncio.gather(*others)
        a_replies = await asyncio.gather(*thread_a)
    finally:
        await agent.aclose()
    assert order == [f"A-{i}" for i in range(50)]  # the model saw thread A's messages strictly in order
    assert [r[-1].text.split("\n")[0] for r in a_replies] == [f"answer to A-{i}" for i in range(50)]
    assert all(r[0].kind is ReplyKind.WORKING and len(r) == 2 for r in a_replies + other_replies)
    assert [r[-1].text.split("\n")[0] for r in other_replies] == [f"answer to T{i}-0" for i in range(20)]
    assert peak["A"] == 1  # never two turns of one thread at once
    assert peak["others"] == 20  # the 20 other threads ran side by side (in series they would never meet)


async def test_500_messages_in_one_thread_in_a_second_are_all_answered(fresh_db: str) -> None:
    """The line holds 100 waiting messages (queue_per_thread); the rest are told "busy" at once, none lost,
    and the ones that run, run in arrival order (Postgres's clock_timestamp() proves the execution order)."""
    settings = settings_for(fresh_db)
    agent = build_agent(settings)
    try:
        started = time.perf_counter()
        tasks = [asyncio.create_task(_drive(agent, message(f"/sql SELECT {i} AS n, clock_timestamp() AS at",
                                                           thread="flood")))
                 for i in range(500)]
        results = await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    finally:
        await agent.aclose()
    assert all(len(r) == 2 and r[0].kind is ReplyKind.WORKING for r in results)  # every message answered
    ran = [r[-1] for r in results if r[-1].kind is ReplyKind.RESULT]
    busy = [r[-1] for r in results if r[-1].kind is ReplyKind.ERROR]
    assert len(ran) == settings.limits.queue_per_thread + 1 and len(ran) + len(busy) == 500
    assert all("messages waiting" in b.text and "not run" in b.text for b in busy)
    rows = [r.table.rows[0] for r in ran if r.table is not None]
    assert [row[0] for row in rows] == list(range(len(ran)))  # the first 101 arrivals ran ...
    assert [row[1] for row in rows] == sorted(row[1] for row in rows)  # ... one after another, in order
    assert elapsed < 15, elapsed


async def test_a_larger_line_runs_all_500_in_order(fresh_db: str) -> None:
    settings = settings_for(fresh_db)
    settings.limits.queue_per_thread = 500
    agent = build_agent(settings)
    try:
        tasks = [asyncio.create_task(_drive(agent, message(f"/sql SELECT {i} AS n, clock_timestamp() AS at",
                                                           thread="flood")))
                 for i in range(500)]
        results = await asyncio.gather(*tasks)
    finally:
        await agent.aclose()
    rows = [r[-1].table.rows[0] for r in results if r[-1].table is not None]
    assert [row[0] for row in rows] == list(range(500))
    assert [row[1] for row in rows] == sorted(row[1] for row in rows)


async def test_a_burst_beyond_capacity_gets_busy_replies_never_silence(fresh_db: str, llm_server) -> None:
    settings = settings_for(fresh_db, llm_url=llm_server.base_url)
    settings.limits.max_concurrent_turns = 2
    settings.limits.max_queued_turns = 3
    settings.llm.timeout_s = 30  # the running turns' model calls wait for the whole burst, however loaded the machine
    agent = build_agent(settings)

    burst_in = asyncio.Event()

    def accounted() -> bool:
        stats = agent.limiter.stats
        return stats.running + stats.waiting + stats.rejected == 10

    async def respond(request: llm.JsonObject) -> llm.Reply:
        # The first turns hold their slots until every message of the burst is running, queued or refused.
        if not burst_in.is_set():
            await wait_until(accounted, describe=lambda: agent.limiter.stats, within_s=20)
            burst_in.set()
        return llm.text("done")

    llm_server.responder = respond
    try:
        results = await asyncio.gather(*(_drive(agent, message(f"q{i}", user=f"u{i}")) for i in range(10)))
    finally:
        await agent.aclose()
    finals = [r[-1] for r in results]
    assert all(len(r) == 2 for r in results)
    assert sum(f.kind is ReplyKind.ANSWER for f in finals) == 5  # 2 running + 3 queued
    busy = [f for f in finals if f.kind is ReplyKind.ERROR]
    assert len(busy) == 5 and all("at capacity" in f.text and "send it again" in f.text for f in busy)
    assert agent.limiter.stats.running == 0 and agent.limiter.stats.rejected == 5


async def test_per_user_limit_keeps_one_user_from_taking_every_slot(fresh_db: str, llm_server) -> None:
    in_flight: dict[str, int] = defaultdict(int)
    peak: dict[str, int] = defaultdict(int)

    pair = asyncio.Event()

    async def respond(request: llm.JsonObject) -> llm.Reply:
        user = llm.last_question(request).split(":")[0]
        in_flight[user] += 1
        peak[user] = max(peak[user], in_flight[user])
        if user == "greedy":  # greedy's calls wait until two of them are in at once (its limit)
            if in_flight[user] == 2:
                pair.set()
            await asyncio.wait_for(pair.wait(), timeout=20)
        in_flight[user] -= 1
        return llm.text("ok")

    llm_server.responder = respond
    settings = settings_for(fresh_db, llm_url=llm_server.base_url, max_concurrent_per_user=2)
    settings.llm.timeout_s = 30  # greedy's first call waits for its second, however loaded the machine
    agent = build_agent(settings)
    try:
        results = await asyncio.gather(
            *(_drive(agent, message(f"greedy:{i}", user="greedy")) for i in range(8)),  # 8 threads, one user
            *(_drive(agent, message(f"u{i}:0", user=f"u{i}")) for i in range(4)),
        )
    finally:
        await agent.aclose()
    assert all(r[-1].kind is ReplyKind.ANSWER for r in results)  # waited for a slot, none refused
    assert peak["greedy"] == 2
