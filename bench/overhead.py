"""pgbot's own time per turn on top of the LLM and the database, at 1, 50 and 200 concurrent conversations.

    python -m bench.overhead [--delay 1.0] [--levels 1,50,200]

Each turn is a real one: the scripted OpenAI-compatible server (``tests/llm_server.py``, in its own process
so it does not share pgbot's CPU) answers the first call with a ``run_query`` tool call and the second with
prose, each after a fixed delay; the query runs on a throwaway Postgres database; context goes to Redis
when one answers on 127.0.0.1:6379, else to memory. The baseline, in the same run and at the same
concurrency, does the same work with no pgbot: two calls through the same OpenAI client with a minimal
prompt, and the same SQL on an asyncpg pool. Overhead = pgbot's turn latency − the baseline's, at p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import openai

from bench.common import execute_batches, machine, percentile, print_table, throwaway_database
from bench.llm_stub import QUESTION_SQL
from core.llm.base import ChatTurn, Completion, LlmClient, ToolSpec

TURNS = {1: 15, 50: 6, 200: 6}  # measured turns per conversation (after one warm-up turn)


@asynccontextmanager
async def llm_stub(delay_s: float) -> AsyncIterator[str]:
    """Start ``bench.llm_stub`` in its own process; yield its base URL; stop it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.llm_stub", "--delay", str(delay_s),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the LLM stub did not start: {url!r}")
        yield url
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


_llm_spent: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("llm_spent", default=None)


class TimedLlm:
    """Wraps pgbot's real LLM client and adds each call's wall time to the current turn's tally."""

    def __init__(self, inner: LlmClient) -> None:
        self.inner = inner

    async def complete(self, messages: Sequence[ChatTurn], tools: Sequence[ToolSpec]) -> Completion:
        started = time.perf_counter()
        try:
            return await self.inner.complete(messages, tools)
        finally:
            spent = _llm_spent.get()
            if spent is not None:
                spent.append(time.perf_counter() - started)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Samples:
    turns: list[float]
    outside_llm: list[float]
    cpu_ms_per_turn: float = 0.0  # this process's CPU time over every turn (warm-up included): load-insensitive


async def _redis_url() -> str | None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url("redis://127.0.0.1:6379/15", socket_connect_timeout=1)
    try:
        await client.ping()
        return "redis://127.0.0.1:6379/15"
    except (OSError, aioredis.RedisError):
        return None
    finally:
        await client.aclose()


async def run_pgbot(*, dsn: str, llm_url: str, redis_url: str | None, conversations: int, turns: int,
                    delay_s: float, pool_size: int = 20) -> Samples:
    from bot.wiring import build_agent
    from core.llm.openai_client import OpenAIClient
    from core.messages import Message, ReplyKind

    data: dict[str, object] = {
        "databases": {"shop": {"dsn": dsn, "pool_max_size": pool_size, "max_concurrent_turns": 1000,
                               "max_concurrent_per_user": 4}},
        "llm": {"base_url": llm_url, "api_key": "sk-bench", "model": "bench", "timeout_s": 60, "max_retries": 0,
                "tool_mode": "native"},
        "limits": {"max_concurrent_turns": 1000},
    }
    if redis_url:
        data["redis"] = {"url": redis_url, "context_ttl_s": 60}  # bench threads expire a minute later
    from core.config import Settings

    settings = Settings(**data)  # type: ignore[arg-type]
    from bot.logs import configure_logging

    log_file = Path(tempfile.gettempdir()) / f"pgbot-bench-{os.getpid()}.log"
    configure_logging(settings, file=log_file)  # as servers run: info level, JSON lines to a file
    agent = build_agent(settings, llm=TimedLlm(OpenAIClient(settings.llm)))
    samples = Samples([], [])
    run_id = uuid.uuid4().hex[:8]

    async def conversation(c: int) -> None:
        await asyncio.sleep(random.random() * delay_s * 2)  # spread the starts like real traffic
        for t in range(turns + 1):
            spent: list[float] = []
            token = _llm_spent.set(spent)
            msg = Message(platform="bench", workspace="w", channel="c", thread=f"conv-{run_id}-{c}", user=f"u{c}",
                          text=f"How many orders shipped? ({t})")
            started = time.perf_counter()
            final = None
            async for reply in agent.handle(msg):
                final = reply
            elapsed = time.perf_counter() - started
            _llm_spent.reset(token)
            if final is None or final.kind is not ReplyKind.ANSWER:
                raise RuntimeError(f"turn failed: {final}")
            if t > 0:  # the first turn of each conversation warms caches and pools
                samples.turns.append(elapsed)
                samples.outside_llm.append(elapsed - sum(spent))

    cpu = time.process_time()
    try:
        await asyncio.gather(*(conversation(c) for c in range(conversations)))
    finally:
        samples.cpu_ms_per_turn = (time.process_time() - cpu) * 1000 / (conversations * (turns + 1))
        await agent.aclose()
        log_file.unlink(missing_ok=True)
    return samples


async def run_baseline(*, dsn: str, llm_url: str, conversations: int, turns: int, delay_s: float,
                       pool_size: int = 20) -> Samples:
    """The same LLM calls and SQL with nothing in between: what any client would spend."""
    # The same HTTP transport as pgbot's OpenAIClient, so the difference is pgbot's own work.
    client = openai.AsyncOpenAI(base_url=llm_url, api_key="sk-bench", timeout=60, max_retries=0,
                                http_client=openai.DefaultAioHttpClient())
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_size)
    samples = Samples([], [])
    tools = [{"type": "function", "function": {"name": "run_query", "parameters": {"type": "object"}}}]

    async def conversation(c: int) -> None:
        await asyncio.sleep(random.random() * delay_s * 2)
        for t in range(turns + 1):
            started = time.perf_counter()
            messages: list[dict[str, object]] = [{"role": "user", "content": "How many orders shipped?"}]
            await client.post("/chat/completions", body={"model": "b", "messages": messages, "tools": tools},
                              cast_to=object)
            async with pool.acquire() as conn:
                await conn.fetch(QUESTION_SQL)
            messages.append({"role": "tool", "tool_call_id": "x", "content": "shipped\n30"})
            await client.post("/chat/completions", body={"model": "b", "messages": messages}, cast_to=object)
            if t > 0:
                samples.turns.append(time.perf_counter() - started)
                samples.outside_llm.append(0.0)

    try:
        await asyncio.gather(*(conversation(c) for c in range(conversations)))
    finally:
        await pool.close()
        await client.close()
    return samples


async def run(*, delay_s: float = 1.0, levels: Sequence[int] = (1, 50, 200), pool_size: int = 20,
              ) -> list[dict[str, float]]:
    from tests.helpers import SHOP_SQL

    results: list[dict[str, float]] = []
    async with llm_stub(delay_s) as llm_url:
        redis_url = await _redis_url()
        async with throwaway_database("pgbot_bench_overhead") as dsn:
            await execute_batches(dsn, [SHOP_SQL])
            rows = []
            for level in levels:
                turns = TURNS.get(level, 3)
                base = await run_baseline(dsn=dsn, llm_url=llm_url, conversations=level, turns=turns,
                                          delay_s=delay_s, pool_size=pool_size)
                mine = await run_pgbot(dsn=dsn, llm_url=llm_url, redis_url=redis_url, conversations=level,
                                       turns=turns, delay_s=delay_s, pool_size=pool_size)
                p50, p99 = percentile(mine.turns, 50), percentile(mine.turns, 99)
                b50, b99 = percentile(base.turns, 50), percentile(base.turns, 99)
                row = {
                    "conversations": level, "turns": len(mine.turns), "pgbot_p50_ms": p50 * 1000,
                    "pgbot_p99_ms": p99 * 1000, "base_p50_ms": b50 * 1000, "base_p99_ms": b99 * 1000,
                    "overhead_p50_ms": (p50 - b50) * 1000, "overhead_p99_ms": (p99 - b99) * 1000,
                    "outside_llm_p50_ms": percentile(mine.outside_llm, 50) * 1000,
                    "outside_llm_p99_ms": percentile(mine.outside_llm, 99) * 1000,
                    "cpu_ms_per_turn": mine.cpu_ms_per_turn,
                }
                results.append(row)
                rows.append([
                    level, len(mine.turns), f"{b50 * 1000:,.0f} / {b99 * 1000:,.0f}",
                    f"{p50 * 1000:,.0f} / {p99 * 1000:,.0f}",
                    f"{row['overhead_p50_ms']:,.1f} / {row['overhead_p99_ms']:,.1f}",
                    f"{row['outside_llm_p50_ms']:,.1f} / {row['outside_llm_p99_ms']:,.1f}",
                    f"{p99 / b99:.3f}x", f"{mine.cpu_ms_per_turn:.1f}",
                ])
    print_table(
        f"Per-turn overhead: 2 LLM calls × {delay_s:g} s fixed delay + 1 query; context store: "
        f"{'Redis' if redis_url else 'memory'}; target: overhead p99 ≤ 20 ms at 200 — {machine()}",
        ["conversations", "turns", "baseline p50/p99 ms", "pgbot p50/p99 ms", "overhead p50/p99 ms",
         "pgbot outside LLM p50/p99 ms", "p99 ratio", "pgbot CPU ms/turn"],
        rows,
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=1.0, help="seconds each LLM call takes (default 1.0)")
    parser.add_argument("--levels", default="1,50,200", help="concurrent conversations, comma-separated")
    parser.add_argument("--pool", type=int, default=20, help="Postgres pool size, pgbot and baseline alike")
    args = parser.parse_args()
    asyncio.run(run(delay_s=args.delay, levels=[int(x) for x in args.levels.split(",")], pool_size=args.pool))


if __name__ == "__main__":
    main()
