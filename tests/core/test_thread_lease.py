"""Per-thread turns across replicas, against the real Redis (the lease logic is Lua run by Redis itself).

Each "replica" is its own RedisThreadTurns with its own connection pool; a replica that dies is one whose
heartbeat stops and which never releases (a real SIGKILL is in tests/integration/test_shutdown.py).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from core.errors import BusyError
from core.threads.lease import POLL_MAX_S, LocalThreadTurns, RedisThreadTurns, ThreadTurns, TurnTicket
from tests.helpers import eventually, started, wait_until
from tests.services import delete_keys


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = f"pgbot:test:{uuid.uuid4().hex}:turn"
    yield prefix
    await delete_keys(redis_url, f"{prefix}:*")


def replica(redis_url: str, prefix: str, *, lease_s: float = 5.0, max_waiting: int | None = None) -> RedisThreadTurns:
    return RedisThreadTurns(aioredis.Redis.from_url(redis_url), lease_s=lease_s, prefix=prefix,
                            max_waiting=max_waiting)


def die(turns: RedisThreadTurns) -> None:
    """Simulate a killed process: no more heartbeats, nothing released."""
    assert turns._heart is not None
    turns._heart.cancel()
    turns._tickets.clear()


async def run_in_order(entries: list[tuple[ThreadTurns, str]], *, work_s: float = 0.005) -> list[int]:
    """Messages arrive in list order (each on its replica; arrival = its ticket is taken), then all wait at
    once; return the order the turns ran in, checking that no two turns of one thread ever overlap."""
    running: dict[str, int] = {}
    ran: list[int] = []

    async def turn(index: int, ticket: TurnTicket, thread: str) -> None:
        try:
            await ticket.wait()
            assert thread not in running, f"turn {index} overlaps turn {running[thread]} in {thread}"
            running[thread] = index
            await asyncio.sleep(work_s * random.random())  # the turn's work: no assertion depends on its length
            ran.append(index)
            del running[thread]
        finally:
            await ticket.release()

    tickets = []
    for index, (turns, thread) in enumerate(entries):
        ticket = turns.enter(thread)
        await ticket.arrive()
        tickets.append((index, ticket, thread))
    await asyncio.gather(*(turn(i, ticket, thread) for i, ticket, thread in tickets))
    return ran


def per_thread(ran: list[int], entries: list[tuple[ThreadTurns, str]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for index in ran:
        out.setdefault(entries[index][1], []).append(index)
    return out


async def test_two_replicas_run_a_threads_messages_one_at_a_time_in_arrival_order(redis_url: str, prefix: str) -> None:
    a, b = replica(redis_url, prefix), replica(redis_url, prefix)
    try:
        entries: list[tuple[ThreadTurns, str]] = [(random.choice((a, b)), f"t{i % 3}") for i in range(60)]
        ran = await run_in_order(entries)
    finally:
        await a.aclose()
        await b.aclose()
    assert sorted(ran) == list(range(60))
    for thread, order in per_thread(ran, entries).items():
        assert order == sorted(order), (thread, order)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    state = await client.hgetall(f"{prefix}:t0")
    await client.aclose()
    assert state["seq"] == state["served"] == "20" and "holder" not in state  # every lease released


async def test_concurrent_arrivals_run_in_ticket_order_and_one_process_keeps_its_own_order(
    redis_url: str, prefix: str
) -> None:
    a, b = replica(redis_url, prefix), replica(redis_url, prefix)
    ran: list[tuple[str, int]] = []

    async def turn(name: str, index: int, ticket: TurnTicket) -> None:
        await ticket.wait()
        ran.append((name, index))
        await asyncio.sleep(0.002)  # the turn's work: no assertion depends on its length
        await ticket.release()

    try:
        # 40 messages of one thread arrive at once, 20 on each replica, with no await between them
        tickets = [(name, i, turns.enter("t")) for i in range(20) for name, turns in (("a", a), ("b", b))]
        await asyncio.gather(*(turn(name, i, ticket) for name, i, ticket in tickets))
    finally:
        await a.aclose()
        await b.aclose()
    numbers = {(name, i): ticket.n for name, i, ticket in tickets}  # type: ignore[attr-defined]
    assert [numbers[key] for key in ran] == sorted(numbers.values())  # served in ticket (= arrival) order
    for name in "ab":
        mine = [i for who, i in ran if who == name]
        assert mine == sorted(mine)  # within one process, the order the messages reached it


@pytest.fixture(params=["local", "redis"])
async def one_process(request: pytest.FixtureRequest, redis_url: str, prefix: str) -> AsyncIterator[ThreadTurns]:
    """Either implementation, as one process sees it (what LocalThreadTurns and RedisThreadTurns share)."""
    turns = LocalThreadTurns(max_waiting=1) if request.param == "local" else replica(redis_url, prefix, max_waiting=1)
    yield turns
    await turns.aclose()


async def test_one_process_runs_a_threads_messages_in_arrival_order(one_process: ThreadTurns) -> None:
    entries: list[tuple[ThreadTurns, str]] = [(one_process, f"t{i % 3}") for i in range(3)]
    for _ in range(3):  # max_waiting=1: one running and one waiting per thread at a time
        ran = await run_in_order(entries)
        for order in per_thread(ran, entries).values():
            assert order == sorted(order)


async def test_a_full_line_says_busy_and_frees_up(one_process: ThreadTurns) -> None:
    first, second = one_process.enter("t"), one_process.enter("t")
    with pytest.raises(BusyError):
        one_process.enter("t")
    for ticket in (first, second):
        await ticket.arrive()
    await first.wait()
    await first.release()
    await second.wait()
    third = one_process.enter("t")  # a place is free again
    await third.arrive()
    await second.release()
    await asyncio.wait_for(third.wait(), timeout=10)
    await third.release()


async def test_a_cancelled_waiter_leaves_the_line(one_process: ThreadTurns) -> None:
    first, cancelled = one_process.enter("t"), one_process.enter("t")
    await first.arrive()
    await first.wait()
    await cancelled.arrive()
    waiter = await started(cancelled.wait)  # it waits behind first
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    await cancelled.release()
    await first.release()
    last = one_process.enter("t")
    await last.arrive()
    await asyncio.wait_for(last.wait(), timeout=10)  # not held up by the cancelled ticket
    assert last.abandoned == 0
    await last.release()


async def test_a_dead_holders_lease_expires_and_the_next_message_goes_on(redis_url: str, prefix: str) -> None:
    dead, alive = replica(redis_url, prefix, lease_s=1.5), replica(redis_url, prefix, lease_s=1.5)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        held = dead.enter("t")
        await held.wait()
        first_lease_ends = int(await client.hget(dead.key("t"), "until") or 0)
        waiting = alive.enter("t")
        await waiting.arrive()
        task = asyncio.create_task(waiting.wait())

        async def first_lease_long_over() -> bool:
            seconds, micros = await client.time()  # Redis's clock, the one the lease scripts read
            return seconds * 1000 + micros // 1000 > first_lease_ends + 3 * POLL_MAX_S * 1000

        # Waiting out the first lease is the thing under test: by Redis's clock it ended three of the waiter's
        # longest polls ago, so without the heartbeat the waiter would hold the thread by now.
        await eventually(first_lease_long_over, what="the holder's first lease to run out", within_s=10)
        assert not task.done()  # the heartbeat renewed the live holder's lease: it still waits
        assert int(await client.hget(dead.key("t"), "until") or 0) > first_lease_ends
        die(dead)
        await asyncio.wait_for(task, timeout=10)  # the 1 s lease ran out (not the key's 24 h TTL): it goes on
        assert waiting.abandoned == 1  # the thread is told an earlier message was lost
        await waiting.release()
    finally:
        await client.aclose()
        await alive.aclose()
        await dead._redis.aclose()


async def test_a_dead_replicas_waiting_ticket_is_skipped_and_a_clean_leaver_is_not_counted(
    redis_url: str, prefix: str
) -> None:
    a, b, dead = (replica(redis_url, prefix, lease_s=0.6) for _ in range(3))
    try:
        first = a.enter("t")
        await first.wait()
        lost = dead.enter("t")
        await lost.arrive()
        leaver = b.enter("t")
        await leaver.arrive()
        last = b.enter("t")
        await last.arrive()
        die(dead)
        await leaver.release()  # e.g. a duplicate or a cancelled message: leaves without a trace
        await first.release()
        await asyncio.wait_for(last.wait(), timeout=5)
        assert last.abandoned == 1  # only the dead replica's message
        await last.release()
    finally:
        await a.aclose()
        await b.aclose()
        await dead._redis.aclose()


async def test_a_holder_that_loses_its_lease_is_told_and_waiters_requeue(redis_url: str, prefix: str) -> None:
    a = replica(redis_url, prefix, lease_s=0.6)
    lost: list[str] = []
    try:
        held = a.enter("t", on_lost=lambda: lost.append("t"))
        await held.wait()
        behind = a.enter("t")
        await behind.arrive()
        client = aioredis.Redis.from_url(redis_url)
        await client.delete(f"{prefix}:t")  # Redis lost the thread's line (restart without persistence)
        await client.aclose()
        await wait_until(lambda: lost == ["t"], describe=lambda: lost, within_s=3)
        await held.release()
        await asyncio.wait_for(behind.wait(), timeout=3)  # it queued again and got its turn
        await behind.release()
    finally:
        await a.aclose()


async def test_cancelled_waiter_frees_its_place(redis_url: str, prefix: str) -> None:
    a, b = replica(redis_url, prefix), replica(redis_url, prefix)
    try:
        first = a.enter("t")
        await first.wait()
        cancelled = b.enter("t")
        waiter = asyncio.create_task(cancelled.wait())
        third = b.enter("t")
        # third's arrival reaches Redis after cancelled's (arrivals of a thread are chained), so by now the
        # waiter is past its arrival and waits for its turn, polling Redis; cancelled there, it must leave the line.
        await third.arrive()
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        await cancelled.release()
        await first.release()
        await asyncio.wait_for(third.wait(), timeout=2)  # not held up by the cancelled ticket
        assert third.abandoned == 0
        await third.release()
    finally:
        await a.aclose()
        await b.aclose()




async def test_a_waiter_cancelled_while_its_arrival_is_in_flight_is_still_released(
    redis_url: str, prefix: str,
) -> None:
    """Cancelling a turn whose arrival script is on its way to Redis must not cancel the script: the ticket
    is numbered either way, and only a release that follows the arrival keeps the next message from waiting a
    whole lease and being told an earlier message was lost."""
    turns = replica(redis_url, prefix, lease_s=30.0)
    try:
        for yields in (1, 2):
            cancelled = turns.enter(f"t{yields}")
            waiter = asyncio.create_task(cancelled.wait())
            for _ in range(yields):
                await asyncio.sleep(0)
            assert not cancelled._arrival.done()  # the case under test: the script is on its way, unanswered
            waiter.cancel()
            outcome = await asyncio.gather(waiter, return_exceptions=True)
            assert isinstance(outcome[0], asyncio.CancelledError)
            await cancelled.release()
            nxt = turns.enter(f"t{yields}")
            await asyncio.wait_for(nxt.wait(), timeout=5)  # not a 30 s lease
            assert nxt.abandoned == 0
            await nxt.release()
    finally:
        await turns.aclose()
