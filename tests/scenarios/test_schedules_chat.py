"""Asking for a schedule in plain words: the model answers, then calls create_schedule (real HTTP, Postgres,
Redis); a schedule whose SQL changes data comes back to the model as a refusal and nothing is stored."""

from __future__ import annotations

import asyncpg

from bot.wiring import build_agent
from core import ReplyKind
from tests import llm_server as llm
from tests.helpers import final_reply, load_shop, message, settings_for

REVENUE = "SELECT country, sum(o.total) AS revenue FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY 1"


async def test_the_model_schedules_the_query_that_answered_and_the_answer_shows_the_card(
        fresh_db: str, llm_server: llm.ScriptedLlmServer, redis_url: str) -> None:
    await load_shop(fresh_db)
    llm_server.script(
        llm.tool_call("run_query", {"sql": REVENUE}),
        llm.tool_call("create_schedule", {"when": "every Monday at 9:00", "kind": "report", "sql": REVENUE,
                                          "question": "revenue by country"}),
        llm.text("Here is revenue by country; I will post it here every Monday at 9:00."),
        llm.tool_call("create_schedule", {"when": "every hour", "sql": "DELETE FROM orders"}),
        llm.text("I cannot schedule that: it changes data."),
    )
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url, redis_url=redis_url))
    msg = message("every monday at 9 post revenue by country here", thread="sched-thread")
    try:
        answer = await final_reply(agent, msg)
        refused = await final_reply(agent, message("and delete the orders every hour", thread="sched-thread"))
    finally:
        await agent.aclose()
    assert answer.kind is ReplyKind.ANSWER and answer.table is not None and answer.sql == (REVENUE,)
    (card,) = answer.schedules
    assert "At 09:00 on Monday" in card.summary and "revenue by country" in card.summary and not card.paused
    assert "create_schedule" in {t["function"]["name"] for t in llm_server.requests[0]["tools"]}
    conn = await asyncpg.connect(fresh_db)
    try:
        rows = await conn.fetch("SELECT * FROM pgbot.schedules")
    finally:
        await conn.close()
    assert [(r["id"], r["sql"], r["question"], r["platform"], r["channel"], r["thread"], r["created_by"])
            for r in rows] == [(card.schedule_id, REVENUE, "revenue by country", "slack", "C1", "sched-thread",
                                "slack:U1")]
    assert refused.kind is ReplyKind.ANSWER and not refused.schedules
    tool_results = [m.get("content") or "" for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert any(t.startswith("ERROR: Refused:") and "DELETE" in t for t in tool_results), tool_results
