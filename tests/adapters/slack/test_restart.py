"""A bot restart between two Slack events: a new Agent and a new bolt app over the same Redis and Postgres,
with the scripted model over HTTP. The thread goes on without a mention (its context comes from Redis), and
an Approve click on buttons posted before the restart still runs the change, exactly once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from adapters.slack.app import build_slack_app
from bot.wiring import build_agent
from core import Agent, Settings
from tests import llm_server as llm
from tests.adapters.slack.conftest import APPROVER
from tests.adapters.slack.fake_slack import (
    FakeSlack,
    block_actions,
    dispatch,
    event_body,
    new_ts,
    slack_settings,
    thread_message,
)
from tests.adapters.slack.test_app import FORM, ask, bot_message, buttons, state_line, texts
from tests.helpers import ITEMS_SQL
from tests.llm_server import ScriptedLlmServer


@pytest.fixture
async def start_bot(
    fresh_db: str, redis_url: str, llm_server: ScriptedLlmServer
) -> AsyncIterator[Callable[[], Agent]]:
    """Each call is one bot process: a fresh Agent wired like production on the shared Redis and database."""
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(ITEMS_SQL)
    finally:
        await conn.close()
    settings = Settings(
        databases={"shop": {"dsn": fresh_db, "approvers": {"users": [f"slack:{APPROVER}"]}}},
        redis={"url": redis_url},
        llm={"base_url": llm_server.base_url, "api_key": "k", "max_retries": 0, "tool_mode": "native"},
    )
    agents: list[Agent] = []

    def start() -> Agent:
        agents.append(build_agent(settings))
        return agents[-1]

    yield start
    for agent in agents:
        await agent.aclose()


def sent_texts(request: dict[str, Any]) -> list[str]:
    return [str(m.get("content") or "") for m in request["messages"]]


async def test_thread_goes_on_without_a_mention_after_a_restart(
    fake_slack: FakeSlack, llm_server: ScriptedLlmServer, start_bot: Callable[[], Agent]
) -> None:
    llm_server.script(
        llm.tool_call("run_query", {"sql": "SELECT count(*) AS n FROM items"}),
        llm.text("There are 300 items."),
        llm.text("Yes: the count covered every row of items."),
    )
    before = start_bot()
    thread = new_ts()
    _, first = await ask(fake_slack, build_slack_app(before, slack_settings(fake_slack)), "how many items?", ts=thread)
    assert "There are 300 items." in first.args["text"]
    await before.aclose()

    after = build_slack_app(start_bot(), slack_settings(fake_slack))  # nothing in memory from before
    reply = thread_message("is that all of them?", ts=new_ts(), thread_ts=thread)
    assert (await dispatch(after, event_body(reply))).status == 200
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 2)
    assert fake_slack.of("chat.postMessage")[1].args["thread_ts"] == thread
    assert "covered every row" in fake_slack.of("chat.update")[1].args["text"]
    history = sent_texts(llm_server.requests[-1])
    assert "how many items?" in history and "There are 300 items." in history  # context read back from Redis
    assert llm.question_of(history[-1]) == "is that all of them?"


async def test_approval_click_after_a_restart_runs_once(
    fake_slack: FakeSlack, fresh_db: str, llm_server: ScriptedLlmServer, start_bot: Callable[[], Agent]
) -> None:
    sql = "UPDATE items SET qty = 0 WHERE id = 7"
    llm_server.script(llm.tool_call("propose_change", {"sql": sql}))
    before = start_bot()
    app = build_slack_app(before, slack_settings(fake_slack))
    post, update = await ask(fake_slack, app, "set item 7's qty to zero")
    blocks = update.args["blocks"]
    assert blocks[0]["type"] == "header" and f"```\n{sql}\n```" in texts(blocks)
    fields = [f["text"] for b in blocks for f in b.get("fields", [])]
    assert "*Database:* shop" in fields and "*Requested by:* <@U0USER0001>" in fields
    assert any(f.startswith("*Runs as:*") for f in fields)
    assert "```\nid 7: qty 70 → 0\n```" in texts(blocks)  # the change: only the changed column, by row key
    (_, action_id), (_, same) = buttons(blocks)
    assert same == action_id
    message = bot_message(post, update)

    # A click from someone who may not approve, on the old process: refused to them alone, buttons stay.
    await dispatch(app, block_actions(action_id="pgbot_approve", value=action_id, message=message,
                                      user="U0STRANGER"), content_type=FORM)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 1)
    assert "cannot approve" in fake_slack.of("chat.postEphemeral")[0].args["text"]
    await before.aclose()

    # The restarted bot receives the approver's click on the buttons posted before the restart.
    restarted = build_slack_app(start_bot(), slack_settings(fake_slack))
    click = block_actions(action_id="pgbot_approve", value=action_id, message=message, user=APPROVER)
    assert (await dispatch(restarted, click, content_type=FORM)).status == 200
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 3 and len(f.of("chat.postMessage")) == 2)
    outcome = fake_slack.of("chat.postMessage")[1].args
    assert outcome["thread_ts"] == post.args["thread_ts"] and "UPDATE 1" in json.dumps(outcome["blocks"])
    retired = fake_slack.of("chat.update")[2].args
    assert retired["ts"] == update.args["ts"] and buttons(retired["blocks"]) == []
    assert state_line(retired["blocks"]).startswith("✅ Applied: UPDATE 1 in ")

    # The same click delivered again (a double click, or a replica): core refuses it, nothing runs twice.
    await dispatch(restarted, click, content_type=FORM)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 2)
    assert "already approved" in fake_slack.of("chat.postEphemeral")[1].args["text"]
    await fake_slack.handled()
    assert len(fake_slack.of("chat.update")) == 3
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT qty FROM items WHERE id = 7") == 0
        assert await conn.fetchval("SELECT count(*) FROM items WHERE qty = 0") == 1
    finally:
        await conn.close()
