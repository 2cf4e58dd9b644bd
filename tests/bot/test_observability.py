"""/healthz, /readyz and /metrics over real HTTP, with a real database, the scripted LLM and a real agent."""

from __future__ import annotations

import json

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from bot.observability import ObservabilityServer
from bot.wiring import build_agent
from core import ReplyKind, Settings
from tests import llm_server as llm
from tests.helpers import ITEMS_SQL, final_reply, message, settings_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(base: str) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        body = await r.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_health_ready_and_metrics(fresh_db: str) -> None:
    agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db}}))
    server = ObservabilityServer(agent, host="127.0.0.1", port=0)
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        await final_reply(agent, message("/sql SELECT 1"))
        await final_reply(agent, message("/sql DROP DATABASE x"))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200 and await r.text() == "ok\n"
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 200 and await r.text() == "ready\n"
        samples = await scrape(base)
        assert value(samples, "pgbot_replies_total", kind="result") == 1
        assert value(samples, "pgbot_replies_total", kind="error") == 1
        assert value(samples, "pgbot_errors_total", kind="PgbotError") == 1  # /sql passes the guard's hint on
        assert value(samples, "pgbot_messages_received_total", platform="slack") == 2
        assert value(samples, "pgbot_turn_duration_seconds_count") == 2
        assert ("pgbot_turns_running", ()) in samples and value(samples, "pgbot_turns_running") == 0
        assert value(samples, "pgbot_db_pool_max_connections", database="shop") == 10
        assert value(samples, "pgbot_db_pool_connections", database="shop") >= 1
        assert value(samples, "process_start_time_seconds") > 0
    finally:
        await server.stop()
        await agent.aclose()


async def test_counters_move_with_a_turn_and_an_approval(fresh_db: str, llm_server: llm.ScriptedLlmServer) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(ITEMS_SQL)
    finally:
        await conn.close()
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url, approvers={"users": ["slack:UDBA"]}))
    server = ObservabilityServer(agent, host="127.0.0.1", port=0)
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        before = await scrape(base)
        llm_server.script(
            llm.tool_call("no_such_tool", {}),
            llm.tool_call("run_query", {"sql": "SELECT count(*) AS n FROM items"}),
            llm.text("There are 300 items."),
            llm.tool_call("propose_change", {"sql": "UPDATE items SET qty = 0 WHERE id = 1"}),
        )
        answer = await final_reply(agent, message("how many items?"))
        assert answer.kind is ReplyKind.ANSWER
        proposal = await final_reply(agent, message("zero the qty of item 1"))
        assert proposal.kind is ReplyKind.APPROVAL and proposal.approval is not None
        outcome = await agent.decide(action_id=proposal.approval.action_id, decided_by="slack:UDBA", approve=True)
        assert outcome.kind is ReplyKind.OUTCOME
        after = await scrape(base)
    finally:
        await server.stop()
        await agent.aclose()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("pgbot_messages_received_total", platform="slack") == 2
    assert moved("pgbot_turn_duration_seconds_count") == 2
    assert moved("pgbot_turn_duration_seconds_sum") > 0
    assert moved("pgbot_replies_total", kind="answer") == 1
    assert moved("pgbot_replies_total", kind="approval") == 1
    assert moved("pgbot_llm_calls_total", outcome="ok") == 4
    sent = llm_server.requests  # the scripted server reports usage as len(JSON)//4: the same numbers arrive
    assert moved("pgbot_llm_tokens_total", type="prompt") == sum(len(json.dumps(r["messages"])) // 4 for r in sent)
    assert moved("pgbot_llm_tokens_total", type="completion") > 0
    assert moved("pgbot_tool_calls_total", tool="unknown", outcome="hint") == 1
    assert moved("pgbot_tool_calls_total", tool="run_query", outcome="ok") == 1
    assert moved("pgbot_tool_calls_total", tool="propose_change", outcome="ok") == 1
    assert moved("pgbot_approvals_total", outcome="requested") == 1
    assert moved("pgbot_approvals_total", outcome="approved") == 1


async def test_readyz_waits_for_the_chat_connection_the_adapter_reports(fresh_db: str) -> None:
    agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db}}))
    server = ObservabilityServer(agent, host="127.0.0.1", port=0)
    await server.start()
    connected = False

    async def ready() -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{server.port}/readyz") as r:
            return r.status, await r.text()

    try:
        agent.health.expect_chat("slack")
        assert await ready() == (503, "slack: not connected yet\n")
        agent.health.report_chat("slack", lambda: connected)
        assert await ready() == (503, "slack: not connected\n")
        connected = True
        assert await ready() == (200, "ready\n")

        def broken() -> bool:
            raise RuntimeError("socket gone")

        agent.health.report_chat("slack", broken)
        assert await ready() == (503, "slack: connection check failed (RuntimeError)\n")
        agent.health.report_chat("slack", lambda: True)
        assert (await ready())[0] == 200
        agent.begin_shutdown()  # SIGTERM: the replica drains, so the load balancer must stop sending it work
        assert await ready() == (503, "shutting down: finishing work in flight, taking no new messages\n")
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{server.port}/healthz") as r:
            assert r.status == 200  # still alive: liveness must not kill it mid-drain
    finally:
        await server.stop()
        await agent.aclose()


async def test_readyz_names_what_is_down_without_secrets() -> None:
    agent = build_agent(Settings(databases={"down": {"dsn": "postgresql://u:pw-SECRET@127.0.0.1:1/x",
                                                     "connect_timeout_s": 1}}))
    server = ObservabilityServer(agent, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{server.port}/readyz") as r:
            body = await r.text()
        assert r.status == 503
        assert body.startswith("database down: Database 'down' cannot be reached")
        assert "pw-SECRET" not in body
    finally:
        await server.stop()
        await agent.aclose()
