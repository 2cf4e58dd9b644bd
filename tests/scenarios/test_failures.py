"""What a person sees in the thread when a part fails: one clear reply, nothing changed, no secret."""

from __future__ import annotations

from bot.wiring import build_agent
from core import ReplyKind, Settings
from tests import llm_server as llm
from tests.helpers import final_reply, load_shop, message, settings_for


async def test_llm_failures_become_clear_replies(fresh_db: str, llm_server) -> None:
    llm_server.script(
        llm.error(401, "Incorrect API key provided: sk-test-SECRET-key-123"),
        llm.error(429, "slow down", headers={"Retry-After": "0"}),
        llm.error(500, "boom"),
        llm.raw(200, "<html>not json</html>", content_type="text/html"),
        llm.delay(3.0),
    )
    settings = settings_for(fresh_db, llm_url=llm_server.base_url)
    settings.llm.timeout_s = 0.5
    agent = build_agent(settings)
    texts = []
    try:
        for _ in range(5):
            reply = await final_reply(agent, message("how many orders?"))
            assert reply.kind is ReplyKind.ERROR
            assert "sk-test-SECRET-key-123" not in reply.text and "Traceback" not in reply.text
            texts.append(reply.text)
    finally:
        await agent.aclose()
    assert "rejected the API key" in texts[0]
    assert "rate limit" in texts[1].lower()
    assert "500" in texts[2]
    assert "could not use" in texts[3] or "not JSON" in texts[3]
    assert "timed out" in texts[4]


async def test_database_down_and_unknown_database(llm_server) -> None:
    settings = Settings(databases={"down": {"dsn": "postgresql://pgbot:pw-SECRET@127.0.0.1:1/x",
                                            "connect_timeout_s": 2}})
    agent = build_agent(settings)
    try:
        reply = await final_reply(agent, message("/sql SELECT 1"))
        assert reply.kind is ReplyKind.ERROR
        assert reply.text.startswith("Database 'down' cannot be reached")
        assert "pw-SECRET" not in reply.text
        unknown = await final_reply(agent, message("/db elsewhere"))
        assert unknown.kind is ReplyKind.ERROR
        assert unknown.text == "There is no database named 'elsewhere'. Configured: down."
    finally:
        await agent.aclose()


async def test_thread_switches_database_through_the_tool(fresh_db: str, pg_admin_dsn: str, llm_server) -> None:
    await load_shop(fresh_db)
    settings = Settings(
        databases={"main": {"dsn": pg_admin_dsn, "default": True}, "shop": {"dsn": fresh_db}},
        llm={"base_url": llm_server.base_url, "api_key": "k", "max_retries": 0, "tool_mode": "native"},
    )
    llm_server.script(
        llm.tool_call("switch_database", {"name": "shop"}),
        llm.tool_call("run_query", {"sql": "SELECT count(*) FROM orders"}),
        llm.text("90 orders in shop."),
        llm.tool_call("run_query", {"sql": "SELECT current_database()"}),
        llm.text("Still on shop."),
    )
    agent = build_agent(settings)
    thread = "switching"
    try:
        first = await final_reply(agent, message("use the shop db; how many orders?", thread=thread))
        second = await final_reply(agent, message("which database is this?", thread=thread))
        other_thread = await final_reply(agent, message("/db", thread="another"))
    finally:
        await agent.aclose()
    assert first.table is not None and first.table.rows == ((90,),) and first.database == "shop"
    assert second.table is not None and second.table.rows[0][0] == fresh_db.rsplit("/", 1)[1]
    assert "Current database: shop" in llm_server.requests[3]["messages"][0]["content"]
    assert other_thread.text == "This thread uses database 'main'."


async def test_unmapped_user_gets_no_access(fresh_db: str) -> None:
    settings = settings_for(fresh_db, roles={"slack:UALLOWED": "postgres"})
    agent = build_agent(settings)
    try:
        denied = await final_reply(agent, message("/sql SELECT 1", user="USTRANGER"))
        allowed = await final_reply(agent, message("/sql SELECT 1 AS ok", user="UALLOWED"))
    finally:
        await agent.aclose()
    assert denied.kind is ReplyKind.ERROR and "not mapped to a database role" in denied.text
    assert allowed.kind is ReplyKind.RESULT and allowed.table is not None and allowed.table.rows == ((1,),)


async def test_oversized_question_is_refused_before_any_model_call(fresh_db: str, llm_server) -> None:
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url))
    try:
        reply = await final_reply(agent, message("x" * 100_000))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ERROR and "100,000 characters" in reply.text
    assert llm_server.requests == []
