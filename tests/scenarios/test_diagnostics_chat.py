"""Index advice to a built index through the agent: scripted model, real Postgres, approval, progress lines."""

from __future__ import annotations

import asyncio

import asyncpg

from bot.wiring import build_agent
from core import ReplyKind
from tests import llm_server as llm
from tests.helpers import final_reply, message, settings_for, wait_until
from tests.integration.diagnostics_env import SLOW_QUERY, seed

DBA = "slack:UDBA"


async def test_advice_then_an_approved_concurrent_build_with_progress_and_a_failed_build_cleaned_up(
        fresh_db: str, llm_server: llm.ScriptedLlmServer) -> None:
    await seed(fresh_db)
    llm_server.script(
        llm.tool_call("advise_indexes", {"sql": SLOW_QUERY}),
        llm.tool_call("propose_index", {"table": "orders_big", "columns": ["customer_id"]}),
    )
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url, approvers={"users": [DBA]}))
    blocker = await asyncpg.connect(fresh_db)
    try:
        proposal = await final_reply(agent, message("why is this slow, what index would help? " + SLOW_QUERY))
        assert proposal.kind is ReplyKind.APPROVAL and proposal.approval is not None
        sql = 'CREATE INDEX CONCURRENTLY "orders_big_customer_id_idx" ON "public"."orders_big" ("customer_id")'
        assert proposal.approval.sql == sql
        assert "SHARE UPDATE EXCLUSIVE" in proposal.text and "Nothing has run yet" in proposal.text
        offered = {t["function"]["name"] for t in llm_server.requests[0]["tools"]}
        assert {"advise_indexes", "propose_index", "explain_query", "health_check"} <= offered
        advice_seen = str(llm_server.requests[1]["messages"][-1]["content"])
        assert "Recommended" in advice_seen and '("customer_id")' in advice_seen and "→" in advice_seen

        # A transaction already writing to the table makes CONCURRENTLY wait: the build is observable.
        await blocker.execute("BEGIN; INSERT INTO orders_big VALUES (0, 1, 'held', now())")
        lines: list[str] = []

        async def progress(text: str) -> None:
            lines.append(text)

        approving = asyncio.ensure_future(agent.decide(action_id=proposal.approval.action_id, decided_by=DBA,
                                                       approve=True, progress=progress))
        await wait_until(lambda: bool(lines), describe=lambda: lines)
        assert lines[0].startswith("building index") and "waiting for writers" in lines[0], lines
        await blocker.execute("ROLLBACK")
        outcome = await asyncio.wait_for(approving, timeout=30)
        assert outcome.kind is ReplyKind.OUTCOME, outcome.text
        assert "CREATE INDEX: index public.orders_big_customer_id_idx built" in outcome.text
        valid = await blocker.fetchval("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                                       "'public.orders_big_customer_id_idx'::regclass")
        assert valid is True

        # A UNIQUE build over duplicates fails: the INVALID index it leaves is dropped and the reply says so.
        llm_server.script(llm.tool_call("propose_index", {"table": "public.orders_big", "columns": ["status"],
                                                          "unique": True}))
        second = await final_reply(agent, message("add a unique index on orders_big.status"))
        assert second.kind is ReplyKind.APPROVAL and second.approval is not None
        failed = await agent.decide(action_id=second.approval.action_id, decided_by=DBA, approve=True)
        assert failed.kind is ReplyKind.ERROR
        assert "could not create unique index" in failed.text and "was dropped" in failed.text, failed.text
        left = await blocker.fetchval("SELECT to_regclass('public.orders_big_status_idx')")
        assert left is None
    finally:
        await blocker.close()
        await agent.aclose()
