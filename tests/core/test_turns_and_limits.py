"""Per-thread lines and admission limits, on their own (the agent-level tests are in tests/scenarios)."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import BusyError
from core.threads.limits import TurnLimiter
from core.threads.turns import ThreadLocks
from tests.helpers import started, wait_until


async def test_a_thread_runs_in_arrival_order_and_threads_overlap() -> None:
    locks = ThreadLocks()
    log: list[str] = []
    running: dict[str, int] = {"a": 0, "b": 0}
    peak = {"a": 0, "b": 0, "total": 0}

    async def turn(thread: str, n: int) -> None:
        async with locks.enter(thread):  # the place in line is taken here, before any await
            running[thread] += 1
            peak[thread] = max(peak[thread], running[thread])
            peak["total"] = max(peak["total"], running["a"] + running["b"])
            for _ in range(n % 3):  # uneven work (0 to 2 yields to the loop) must not reorder a thread
                await asyncio.sleep(0)
            log.append(f"{thread}{n}")
            running[thread] -= 1

    await asyncio.gather(*(turn("a" if i % 2 else "b", i) for i in range(60)))
    assert [x for x in log if x[0] == "a"] == [f"a{i}" for i in range(1, 60, 2)]
    assert [x for x in log if x[0] == "b"] == [f"b{i}" for i in range(0, 60, 2)]
    assert peak["a"] == peak["b"] == 1 and peak["total"] == 2
    assert len(locks) == 0  # lines are dropped when empty


async def test_a_full_line_says_busy_and_a_cancelled_waiter_leaves_it() -> None:
    locks = ThreadLocks(max_waiting=2)
    first = locks.enter("t")
    second = locks.enter("t")
    third = locks.enter("t")
    with pytest.raises(BusyError, match="2 messages waiting"):
        locks.enter("t")
    waiting = await started(second.__aenter__)  # second now waits for its turn
    waiting.cancel()  # the client went away while waiting
    with pytest.raises(asyncio.CancelledError):
        await waiting
    first.release()
    async with third:  # second left the line, so third goes next
        assert locks.waiting("t") == 1
    assert len(locks) == 0


async def test_per_user_limit_queues_a_users_turns_while_others_run() -> None:
    limiter = TurnLimiter(global_limit=10, per_user=1, per_database=10, max_queued=100, timeout_s=5)
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    release = asyncio.Event()

    async def turn(user: str) -> None:
        async with limiter.slot(user=user, database="shop"):
            running[user] = running.get(user, 0) + 1
            peak[user] = max(peak.get(user, 0), running[user])
            peak["all"] = max(peak.get("all", 0), sum(v for k, v in running.items() if k != "all"))
            await release.wait()
            running[user] -= 1

    turns = [asyncio.create_task(turn(u)) for u in ["alice"] * 5 + ["bob", "carol", "dave"]]
    # One turn of alice's and each of the others' run at once, alice's other four queue behind hers.
    await wait_until(lambda: (limiter.stats.running, limiter.stats.waiting) == (4, 4), describe=lambda: limiter.stats)
    release.set()
    await asyncio.gather(*turns)
    assert peak["alice"] == 1 and peak["all"] >= 3
    assert limiter.stats.running == 0 and limiter.stats.waiting == 0


async def test_burst_beyond_the_queue_bound_is_rejected_with_busy_not_dropped() -> None:
    limiter = TurnLimiter(global_limit=2, per_user=10, per_database=10, max_queued=3, timeout_s=5)
    gate = asyncio.Event()

    async def turn(i: int) -> str:
        try:
            async with limiter.slot(user=f"u{i}", database="shop"):
                await gate.wait()
                return "ran"
        except BusyError as exc:
            return exc.user_message

    tasks = [asyncio.create_task(turn(i)) for i in range(8)]
    await wait_until(lambda: (limiter.stats.running, limiter.stats.waiting, limiter.stats.rejected) == (2, 3, 3),
                     describe=lambda: limiter.stats)  # every turn is running, queued or refused
    gate.set()
    results = await asyncio.gather(*tasks)
    assert results.count("ran") == 5  # 2 running + 3 queued
    busy = [r for r in results if r != "ran"]
    assert len(busy) == 3 and all("at capacity" in r for r in busy)
    assert limiter.stats.rejected == 3


async def test_waiting_too_long_is_busy_and_names_the_limit() -> None:
    limiter = TurnLimiter(global_limit=10, per_user=1, per_database=10, max_queued=10, timeout_s=0.05)
    async with limiter.slot(user="alice", database="shop"):
        with pytest.raises(BusyError, match="You already have 1 request running on 'shop'"):
            async with limiter.slot(user="alice", database="shop"):
                pass
    async with limiter.slot(user="alice", database="shop"):  # the slot came back
        pass
