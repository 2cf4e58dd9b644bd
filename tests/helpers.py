"""Small builders shared by scenario and integration tests (no fixtures here)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg

from bot.wiring import build_agent
from core import Message, Reply, ReplyKind, Settings
from core.agent.loop import Agent

SHOP_SQL = """
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, country text);
COMMENT ON TABLE customers IS 'People who buy from the shop';
CREATE TABLE orders (
    id int PRIMARY KEY, customer_id int REFERENCES customers(id), status text NOT NULL,
    total numeric(10,2) NOT NULL, created_at timestamptz NOT NULL
);
COMMENT ON TABLE orders IS 'One row per order';
INSERT INTO customers SELECT g, 'customer ' || g, CASE WHEN g % 5 = 0 THEN NULL ELSE 'FR' END
  FROM generate_series(1, 20) g;
INSERT INTO orders SELECT g, 1 + g % 20, CASE WHEN g % 3 = 0 THEN 'shipped' ELSE 'pending' END, g * 1.5,
  timestamptz '2026-01-01' + (g || ' days')::interval FROM generate_series(1, 90) g;
"""


async def load_shop(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SHOP_SQL)
    finally:
        await conn.close()


def settings_for(dsn: str, *, llm_url: str | None = None, redis_url: str | None = None, **db: Any) -> Settings:
    """Settings for one database named ``shop``; extra keyword arguments go into its section."""
    data: dict[str, Any] = {"databases": {"shop": {"dsn": dsn, **db}}}
    if llm_url:
        data["llm"] = {"base_url": llm_url, "api_key": "sk-test-SECRET-key-123", "model": "test-model",
                       "timeout_s": 5, "max_retries": 0, "tool_mode": "native"}
    if redis_url:
        data["redis"] = {"url": redis_url}
    return Settings(**data)


def message(text: str, *, thread: str | None = None, user: str = "U1", platform: str = "slack") -> Message:
    return Message(platform=platform, workspace="T1", channel="C1", thread=thread or uuid.uuid4().hex, user=user,
                   text=text)


async def final_reply(agent: Agent, msg: Message) -> Reply:
    """Drive one message through the agent; check the WORKING-first contract; return the last reply."""
    replies = [r async for r in agent.handle(msg)]
    assert replies[0].kind is ReplyKind.WORKING
    assert len(replies) == 2, replies
    return replies[-1]


ITEMS_SQL = ("CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL);"
             "INSERT INTO items SELECT g, g * 10 FROM generate_series(1, 300) g;")


async def items_agent(dsn: str, *, approver: str) -> Agent:
    """The real Agent (no model) on ``dsn`` with a 300-row ``items`` table; ``approver`` approves changes."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(ITEMS_SQL)
    finally:
        await conn.close()
    settings = Settings(databases={"shop": {"dsn": dsn, "approvers": {"users": [approver]}}})
    return build_agent(settings, use_llm=False)


async def wait_until(done: Callable[[], bool], *, describe: Callable[[], object], within_s: float = 10.0) -> None:
    """Poll until ``done()``; fail with ``describe()`` (what arrived so far) after ``within_s``."""
    deadline = time.monotonic() + within_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; calls so far: {describe()}")
        await asyncio.sleep(0.02)


async def eventually(check: Callable[[], Awaitable[bool]], *, what: str, within_s: float = 10.0) -> None:
    """Poll the async ``check`` until it holds; fail saying ``what`` did not happen after ``within_s``.

    For waits on something that takes real time (a TTL running out): the deadline bounds the wait, the
    condition ends it, so a loaded machine makes the test slower, never wrong."""
    deadline = time.monotonic() + within_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for: {what}")
        await asyncio.sleep(0.02)


async def handled(is_handler: Callable[[asyncio.Task[Any]], bool], *, what: str, within_s: float = 30.0) -> None:
    """Wait until no task that ``is_handler`` picks is still running: every event handed to an adapter so far
    has been handled to its end, so a call it has not made by now it will not make.

    For negative checks ("nothing more is sent"): it waits for the handlers themselves, not for a quiet
    period, so a slow machine makes the test slower, never wrong. Fails naming the tasks still running."""
    def running() -> list[str]:
        return [t.get_name() for t in asyncio.all_tasks() if not t.done() and is_handler(t)]

    deadline = time.monotonic() + within_s
    while running():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} still running after {within_s} s: {running()}")
        await asyncio.sleep(0.02)


async def started(wait: Callable[[], Awaitable[object]]) -> asyncio.Task[None]:
    """``wait()`` in a task of its own, returned once that task is suspended inside ``wait()``.

    ``Event.set()`` only schedules the waiter, so when this returns the task has run on into ``wait()`` up
    to its first real suspension: a cancel then lands while it waits, never before it started."""
    begun = asyncio.Event()

    async def run() -> None:
        begun.set()
        await wait()

    task = asyncio.create_task(run())
    await begun.wait()
    return task


async def active_queries(dsn: str, marker: str) -> int:
    """How many other sessions are running a statement containing ``marker`` (was a query cancelled?)."""
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 "
            "AND pid <> pg_backend_pid()", f"%{marker}%")
    finally:
        await conn.close()
    return count


REPO_ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def pgbot_process(command: str, config: Path, log: Path, *, env: Mapping[str, str] | None = None
                  ) -> Iterator[subprocess.Popen[bytes]]:
    """``pgbot <command> --config <config>`` as a real process, its output in ``log``; killed if still running."""
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", command, "--config", str(config)], cwd=REPO_ROOT,
                                env=dict(env) if env is not None else None, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
