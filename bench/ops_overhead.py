"""What running for a team adds per turn: request id, metrics and the quota check.

    python -m bench.ops_overhead [--turns 20000] [--checks 2000]

Per-turn bookkeeping is measured in-process (begin, two tool calls, two LLM calls with usage, finish,
close: what ``Agent.handle`` does around a typical turn), against an empty loop as the baseline. The rate-limit
check is measured against the Redis on 127.0.0.1:6379 (``PGBOT_REDIS_URL`` overrides) with both rate limits
and the token budget on, next to a plain Redis ``PING`` as the one-round-trip baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

from bench.common import machine, percentile, print_table
from core.config import Settings
from core.errors import QuotaError
from core.messages import Message, Reply, ReplyKind
from core.ops.hooks import Ops
from core.ops.quotas import QuotaPolicy, RedisQuotas


def bookkeeping(turns: int) -> tuple[float, float]:
    ops = Ops(settings=Settings())
    msg = Message(platform="slack", workspace="T1", channel="C1", thread="t", user="U1", text="q")
    reply = Reply(kind=ReplyKind.ANSWER, text="a")
    started = time.perf_counter()
    for _ in range(turns):
        pass
    empty = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(turns):
        turn = ops.begin(msg)
        ops.metrics.tool_call("run_query", "ok")
        ops.metrics.tool_call("describe_table", "ok")
        ops.metrics.llm_call(prompt_tokens=1500, completion_tokens=40)
        ops.metrics.llm_call(prompt_tokens=1800, completion_tokens=60)
        turn.finish(reply)
        turn.close()
    spent = time.perf_counter() - started
    return empty / turns * 1e6, spent / turns * 1e6


async def quota_checks(url: str, checks: int) -> tuple[list[float], list[float]]:
    policy = QuotaPolicy(user_per_minute=10**9, channel_per_minute=10**9, daily_tokens=10**12)
    quotas = RedisQuotas.from_url(url, policy)
    ws = f"bench-{uuid.uuid4().hex[:8]}"
    pings, admits = [], []
    try:
        for i in range(checks):
            msg = Message(platform="slack", workspace=ws, channel=f"C{i % 50}", thread="t", user=f"U{i % 500}",
                          text="how many orders?")
            t0 = time.perf_counter()
            await quotas._redis.ping()
            t1 = time.perf_counter()
            try:
                await quotas.admit(msg, uses_llm=True)
            except QuotaError as exc:  # cannot happen with these limits; say so if it does
                raise SystemExit(f"unexpected refusal: {exc.user_message}") from exc
            t2 = time.perf_counter()
            pings.append((t1 - t0) * 1000)
            admits.append((t2 - t1) * 1000)
        keys = [k async for k in quotas._redis.scan_iter(match=f"pgbot:quota:*{ws}*")]
        if keys:
            await quotas._redis.delete(*keys)
    finally:
        await quotas.aclose()
    return pings, admits


async def run(turns: int = 20_000, checks: int = 2_000) -> None:
    print(f"ops overhead — {machine()}")
    empty, spent = bookkeeping(turns)
    print_table("Per-turn bookkeeping (µs per turn)", ["what", "µs"],
                [["empty loop (baseline)", f"{empty:.2f}"], ["request id + metrics of one turn", f"{spent:.2f}"]])
    url = os.environ.get("PGBOT_REDIS_URL", "redis://127.0.0.1:6379/0")
    pings, admits = await quota_checks(url, checks)
    print_table(f"Quota check with Redis ({checks} messages, ms)", ["what", "p50", "p99"], [
        ["PING, one round trip (baseline)", f"{percentile(pings, 50):.3f}", f"{percentile(pings, 99):.3f}"],
        ["admit: 2 buckets + budget (Lua)", f"{percentile(admits, 50):.3f}", f"{percentile(admits, 99):.3f}"],
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20_000)
    parser.add_argument("--checks", type=int, default=2_000)
    args = parser.parse_args()
    asyncio.run(run(args.turns, args.checks))


if __name__ == "__main__":
    main()
