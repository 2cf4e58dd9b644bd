"""Small builders shared by scenario and integration tests (no fixtures here)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from core import Message, Reply, ReplyKind, Settings
from core.agent import Agent

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
