"""Rate limits and the token budget through the whole agent: real Redis, real Postgres, the scripted LLM."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

from redis import asyncio as aioredis

from bot.wiring import build_agent
from core import Message, ReplyKind
from tests import llm_server as llm
from tests.helpers import final_reply, settings_for


def msg(text: str, *, workspace: str, user: str = "U1") -> Message:
    return Message(platform="slack", workspace=workspace, channel="C1", thread=uuid.uuid4().hex, user=user, text=text)


async def test_user_rate_limit_answers_with_the_wait(fresh_db: str, redis_url: str) -> None:
    settings = settings_for(fresh_db, redis_url=redis_url)
    settings.limits.user_messages_per_minute = 2
    agent = build_agent(settings, use_llm=False)
    ws = f"T{uuid.uuid4().hex[:10]}"
    try:
        for _ in range(2):
            assert (await final_reply(agent, msg("/sql SELECT 1", workspace=ws))).kind is ReplyKind.RESULT
        refused = await final_reply(agent, msg("/sql SELECT 1", workspace=ws))
        other = await final_reply(agent, msg("/sql SELECT 1", workspace=ws, user="U2"))
        metrics = agent.ops.metrics.render().decode()
    finally:
        await agent.aclose()
    assert refused.kind is ReplyKind.ERROR
    assert re.fullmatch(r"You've sent 2 messages in the last minute; try again in (29|30) s\.", refused.text)
    assert other.kind is ReplyKind.RESULT
    assert 'pgbot_limited_total{limit="user"} 1.0' in metrics
    assert 'pgbot_errors_total{kind="QuotaError"} 1.0' in metrics


async def test_daily_token_budget_counts_the_usage_the_endpoint_reports(
        fresh_db: str, redis_url: str, llm_server: llm.ScriptedLlmServer) -> None:
    settings = settings_for(fresh_db, llm_url=llm_server.base_url, redis_url=redis_url)
    settings.limits.daily_tokens_per_workspace = 50  # one turn's system prompt is more than this
    agent = build_agent(settings)
    ws = f"T{uuid.uuid4().hex[:10]}"
    llm_server.script(llm.text("Hello."))
    try:
        first = await final_reply(agent, msg("hello?", workspace=ws))
        refused = await final_reply(agent, msg("and again?", workspace=ws))
        command = await final_reply(agent, msg("/sql SELECT 2", workspace=ws))
        elsewhere = await final_reply(agent, msg("/sql SELECT 3", workspace=f"{ws}x"))
    finally:
        await agent.aclose()
    assert first.kind is ReplyKind.ANSWER
    assert refused.kind is ReplyKind.ERROR and refused.text.startswith(
        "This workspace has used its daily budget of 50 tokens; it resets at 00:00 UTC (in ")
    assert len(llm_server.requests) == 1  # the refused turn never reached the model
    assert command.kind is ReplyKind.RESULT and elsewhere.kind is ReplyKind.RESULT

    sent = llm_server.requests[0]
    expected = len(json.dumps(sent["messages"])) // 4 + len(json.dumps({"role": "assistant", "content": "Hello."})) // 4
    day = dt.datetime.now(dt.UTC).date().isoformat()
    redis = aioredis.Redis.from_url(redis_url)
    try:
        key = f"pgbot:quota:tokens:slack:{ws}:{day}"
        assert int(await redis.get(key) or 0) == expected
        assert 24 * 3600 < await redis.ttl(key) <= 2 * 24 * 3600
    finally:
        await redis.aclose()
