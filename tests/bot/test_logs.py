"""The log pipeline for real: JSON lines written by configure_logging, parsed back; secrets never in them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from bot.logs import configure_logging
from bot.wiring import build_agent
from core import ReplyKind, Settings, ToolContext, ToolKind, ToolOutput
from core.tools.registry import build_tool
from tests import llm_server as llm
from tests.helpers import final_reply, items_agent, message, settings_for

SECRETS = ("hunter2-pw", "plain-known-secret-42", "xoxb-1111-2222-abcdefABCDEF", "xapp-1-A0APP-123-abcdef",
           "sk-proj-abcdefghijklmnop", "eyJhbGciOi.bearer-token-value", "pw-from-stdlib", "pw-in-traceback",
           "MTA4NjQ5NzE0NTI2MjY0MzIwMA.GabcDe.abcdefghijklmnopqrstuvwxyz0123")


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Where configure_logging writes; the global logging setup is put back afterwards."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    yield stream
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def json_settings(**extra: object) -> Settings:
    return Settings(observability={"log_format": "json"}, **extra)  # type: ignore[arg-type]


def test_secrets_are_masked_in_structlog_and_stdlib_lines(log_stream: io.StringIO) -> None:
    configure_logging(json_settings(llm={"api_key": "plain-known-secret-42"}), stream=log_stream)
    log = structlog.get_logger("test")
    log.info("connecting", dsn="postgresql://app:hunter2-pw@db.internal:5432/shop")
    log.warning("slack_error", detail="invalid_auth for xoxb-1111-2222-abcdefABCDEF (app xapp-1-A0APP-123-abcdef)")
    log.info("request", headers={"Authorization": "Bearer eyJhbGciOi.bearer-token-value", "Accept": "*/*"})
    log.info("llm", api_key="sk-proj-abcdefghijklmnop", note="the key plain-known-secret-42 leaked into text")
    log.info("discord", detail="Bot MTA4NjQ5NzE0NTI2MjY0MzIwMA.GabcDe.abcdefghijklmnopqrstuvwxyz0123")
    logging.getLogger("asyncpg.pool").warning("cannot connect to %s", "redis://:pw-from-stdlib@cache:6379/0")
    try:
        raise ConnectionError("postgresql://svc:pw-in-traceback@10.0.0.5/db refused")
    except ConnectionError:
        logging.getLogger("aiohttp.client").exception("request failed")

    out = log_stream.getvalue()
    for secret in SECRETS:
        assert secret not in out, secret
    got = lines(log_stream)
    assert [e["event"] for e in got] == ["connecting", "slack_error", "request", "llm", "discord",
                                         "cannot connect to redis://:***@cache:6379/0", "request failed"]
    assert got[0]["dsn"] == "postgresql://app:***@db.internal:5432/shop"  # user and host stay: they help
    assert got[1]["detail"] == "invalid_auth for *** (app ***)"
    assert got[2]["headers"] == {"Authorization": "***", "Accept": "*/*"}
    assert got[3]["api_key"] == "***" and got[3]["note"] == "the key *** leaked into text"
    assert got[4]["detail"] == "Bot ***"
    assert got[5]["logger"] == "asyncpg.pool" and got[5]["level"] == "warning"
    assert "postgresql://svc:***@10.0.0.5/db refused" in str(got[6]["exception"])
    assert "ConnectionError" in str(got[6]["exception"])


async def test_every_line_of_a_turn_carries_its_request_id_and_the_error_reply_quotes_it(
        log_stream: io.StringIO, fresh_db: str, llm_server: llm.ScriptedLlmServer) -> None:
    async def explode(ctx: ToolContext) -> ToolOutput:
        """Fail the way a bug would."""
        ctx.log.info("about_to_fail")
        raise RuntimeError("bug while connecting to postgresql://svc:pw-in-traceback@10.0.0.5/db")

    settings = settings_for(fresh_db, llm_url=llm_server.base_url)
    settings.observability.log_format = "json"
    configure_logging(settings, stream=log_stream)
    agent = build_agent(settings)
    agent.tools.add(build_tool(explode, kind=ToolKind.READ))
    llm_server.script(llm.tool_call("explode"))
    try:
        reply = await final_reply(agent, message("do the thing"))
        ok = await final_reply(agent, message("/sql SELECT 1"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ERROR and reply.error_id is not None
    assert reply.text == f"Internal error, id={reply.error_id}. The details are in pgbot's log."
    assert ok.kind is ReplyKind.RESULT

    got = lines(log_stream)
    turn = [e for e in got if e.get("request_id") == reply.error_id]
    tokens = [e for e in turn if e["event"] in ("llm_call", "llm_turn")]  # the model call's token counts
    turn = [e for e in turn if e not in tokens]
    assert [e["event"] for e in tokens] == ["llm_call", "llm_turn"]
    assert [e["event"] for e in turn] == ["about_to_fail", "internal_error"]
    assert "pw-in-traceback" not in log_stream.getvalue() and "svc:***@10.0.0.5" in str(turn[1]["exception"])
    second = [e for e in got if e["event"] == "query_ran"]
    assert len(second) == 1 and second[0]["request_id"] not in (None, reply.error_id)


async def test_an_approval_click_gets_its_own_request_id(log_stream: io.StringIO, fresh_db: str) -> None:
    agent = await items_agent(fresh_db, approver="slack:UDBA")
    configure_logging(json_settings(), stream=log_stream)
    try:
        proposal = await final_reply(agent, message("/sql UPDATE items SET qty = 1 WHERE id = 1"))
        assert proposal.approval is not None
        mark = len(lines(log_stream))
        outcome = await agent.decide(action_id=proposal.approval.action_id, decided_by="slack:UDBA", approve=True)
    finally:
        await agent.aclose()
    assert outcome.kind is ReplyKind.OUTCOME
    during = lines(log_stream)[mark:]
    assert during, "the approval logged nothing"
    (click_id,) = {e.get("request_id") for e in during}
    assert isinstance(click_id, str) and click_id
    before = lines(log_stream)[:mark]
    assert before and all(e.get("request_id") != click_id for e in before)  # not the proposing turn's id
