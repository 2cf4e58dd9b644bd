"""The Slack app end to end: signed Slack payloads into bolt's real AsyncApp, real core Agent and Postgres
behind it, and the Web API calls it makes checked on a local fake Slack."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from adapters.slack.app import build_slack_app
from core import Agent, Message, Reply, ReplyKind
from tests.adapters.slack.agent_double import ACTION_ID, ANSWER_ID, ApprovalAgentDouble, HeldDouble
from tests.adapters.slack.conftest import APPROVER
from tests.adapters.slack.fake_slack import (
    BOT_ID,
    BOT_USER_ID,
    SIGNING_SECRET,
    TEAM_ID,
    ApiCall,
    FakeSlack,
    app_mention,
    block_actions,
    dispatch,
    event_body,
    new_ts,
    signed_headers,
    slack_settings,
    thread_message,
)

CHANNEL = "C0CHAN0001"
FORM = "application/x-www-form-urlencoded"


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    out = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            out.append(block["text"]["text"])
        out.extend(f["text"] for f in block.get("fields", []))
        out.extend(e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn")
    return out


def table_rows(blocks: list[dict[str, Any]]) -> list[list[str]]:
    """The cells of the message's native table block as people see them (header row first)."""
    (table,) = [b for b in blocks if b["type"] == "table"]

    def cell(c: dict[str, Any]) -> str:
        if c["type"] == "raw_text":
            return str(c["text"])
        return "".join(e["text"] for section in c["elements"] for e in section["elements"])

    return [[cell(c) for c in row] for row in table["rows"]]


def state_line(blocks: list[dict[str, Any]]) -> str:
    """The approval card's one state line, as a person reads it."""
    (block,) = [b for b in blocks if b.get("block_id") == "pgbot_card_state"]
    return str(block["elements"][0]["text"])


def buttons(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["action_id"], e["value"]) for b in blocks if b["type"] == "actions" for e in b["elements"]]


def bot_message(post: ApiCall, update: ApiCall) -> dict[str, Any]:
    """The bot's message as Slack includes it in a block_actions payload (after the working reply was edited)."""
    message = {"bot_id": BOT_ID, "type": "message", "text": update.args["text"], "user": BOT_USER_ID,
               "ts": update.args["ts"], "app_id": "A0APP00001", "blocks": update.args["blocks"], "team": TEAM_ID,
               "thread_ts": post.args["thread_ts"], "parent_user_id": "U0USER0001"}
    return message


async def ask(fake: FakeSlack, app: Any, text: str, *, ts: str | None = None) -> tuple[ApiCall, ApiCall]:
    """Mention the bot with ``text`` in a new thread; return the working post and the update that answered."""
    ts = ts or new_ts()
    posts, updates = len(fake.of("chat.postMessage")), len(fake.of("chat.update"))
    response = await dispatch(app, event_body(app_mention(f"<@{BOT_USER_ID}> {text}", ts=ts)))
    assert response.status == 200
    await fake.wait_for(lambda f: len(f.of("chat.update")) > updates)
    assert len(fake.of("chat.postMessage")) == posts + 1
    return fake.of("chat.postMessage")[-1], fake.of("chat.update")[-1]


async def test_mention_posts_working_in_thread_then_edits_it_into_the_result(
    fake_slack: FakeSlack, shop_agent: Agent
) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    ts = new_ts()
    # Slack sends "<" escaped as &lt; — core must get real SQL, and Slack must get it escaped back.
    post, update = await ask(fake_slack, app, "/sql SELECT id, qty FROM items WHERE id &lt; 3 ORDER BY id", ts=ts)

    assert fake_slack.of("auth.test")[0].authorization == "Bearer xoxb-1111-2222-test"
    assert post.args["channel"] == CHANNEL and post.args["thread_ts"] == ts
    assert "Working on it" in post.args["text"]
    assert update.args["channel"] == CHANNEL
    assert update.args["ts"] != ts  # the bot's own message, not the question
    shown = texts(update.args["blocks"])
    assert table_rows(update.args["blocks"]) == [["id", "qty"], ["1", "10"], ["2", "20"]]
    # /sql: the SQL the person wrote, laid out by pglast (no button: it is their own statement)
    assert "```\nSELECT id\n     , qty\nFROM items\nWHERE id &lt; 3\nORDER BY id\n```" in shown
    assert re.fullmatch(r"shop · 2 rows · \d+ ms", shown[-1])
    await fake_slack.handled()
    assert len(fake_slack.of("chat.postMessage")) == 1  # edited in place, never a second message


async def test_thread_reply_without_mention_is_answered_in_the_same_thread(
    fake_slack: FakeSlack, shop_agent: Agent
) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    thread = new_ts()
    await ask(fake_slack, app, "/sql SELECT 1 AS one", ts=thread)

    reply = thread_message("/sql SELECT count(*) AS n FROM items", ts=new_ts(), thread_ts=thread)
    assert (await dispatch(app, event_body(reply))).status == 200
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 2)
    post, update = fake_slack.of("chat.postMessage")[1], fake_slack.of("chat.update")[1]
    assert post.args["thread_ts"] == thread
    assert update.args["ts"] != fake_slack.of("chat.update")[0].args["ts"]
    assert [b["fields"] for b in update.args["blocks"] if b.get("fields")] == [
        [{"type": "mrkdwn", "text": "*n*\n300"}]]


async def test_another_replica_answers_thread_replies_it_never_saw(
    fake_slack: FakeSlack, shop_agent: Agent
) -> None:
    """Thread membership comes from core's shared context store, not only this process's memory."""
    first = build_slack_app(shop_agent, slack_settings(fake_slack))
    thread = new_ts()
    await ask(fake_slack, first, "/sql SELECT 1 AS one", ts=thread)

    replica = build_slack_app(shop_agent, slack_settings(fake_slack))  # fresh adapter state: a restart
    reply = thread_message("/sql SELECT 2 AS two", ts=new_ts(), thread_ts=thread)
    assert (await dispatch(replica, event_body(reply))).status == 200
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 2)
    assert fake_slack.of("chat.postMessage")[1].args["thread_ts"] == thread

    stranger = thread_message("/sql SELECT 3", ts=new_ts(), thread_ts=new_ts())
    assert (await dispatch(replica, event_body(stranger))).status == 200
    assert len(fake_slack.of("chat.postMessage")) == 2  # a thread pgbot never joined stays ignored


async def test_messages_pgbot_must_not_answer(fake_slack: FakeSlack, shop_agent: Agent) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    thread = new_ts()
    await ask(fake_slack, app, "/sql SELECT 1 AS one", ts=thread)
    ignored = [
        thread_message("/sql SELECT 2", ts=new_ts(), thread_ts=new_ts()),  # a thread pgbot never joined
        thread_message("/sql SELECT 2", ts=new_ts(), thread_ts=thread, bot_id="B0OTHERBOT", subtype="bot_message"),
        thread_message("/sql SELECT 2", ts=new_ts(), thread_ts=thread, user=BOT_USER_ID, bot_id=BOT_ID),  # itself
        {"type": "message", "subtype": "message_changed", "hidden": True, "channel": CHANNEL, "ts": new_ts(),
         "event_ts": new_ts(), "channel_type": "channel",
         "message": {"type": "message", "user": "U0USER0001", "text": "/sql SELECT 3", "ts": thread,
                     "edited": {"user": "U0USER0001", "ts": new_ts()}},
         "previous_message": {"type": "message", "user": "U0USER0001", "text": "/sql SELECT 1", "ts": thread}},
    ]
    for event in ignored:
        assert (await dispatch(app, event_body(event))).status == 200
    # A thread reply that mentions pgbot arrives twice (message + app_mention) and is answered once.
    ts = new_ts()
    text = f"<@{BOT_USER_ID}> /sql SELECT 4 AS four"
    await dispatch(app, event_body(thread_message(text, ts=ts, thread_ts=thread)))
    await dispatch(app, event_body(app_mention(text, ts=ts, thread_ts=thread)))
    await fake_slack.handled()
    assert len(fake_slack.of("chat.postMessage")) == 2 and len(fake_slack.of("chat.update")) == 2
    assert any("four" in t for t in texts(fake_slack.of("chat.update")[1].args["blocks"]))


async def test_requests_with_a_bad_signature_are_refused(fake_slack: FakeSlack, shop_agent: Agent) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    body = event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT 1", ts=new_ts()))
    from slack_bolt.request.async_request import AsyncBoltRequest

    forged = signed_headers(body, content_type="application/json", secret="not-" + SIGNING_SECRET)
    response = await app.async_dispatch(AsyncBoltRequest(body=body, headers=forged))
    assert response.status == 401
    await fake_slack.handled()
    assert fake_slack.calls == []


async def test_big_results_are_cut_to_slack_limits_with_a_note(fake_slack: FakeSlack, shop_agent: Agent) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    _, update = await ask(fake_slack, app, "/sql SELECT id, qty, repeat('x', 40) AS pad FROM items ORDER BY id")
    blocks = update.args["blocks"]
    assert len(blocks) <= 50
    assert all(len(t) <= 3000 for t in texts(blocks))
    rows = table_rows(blocks)
    assert rows[0] == ["id", "qty", "pad"] and len(rows) == 16  # the header and 15 rows: a phone's worth
    assert "showing 15 of 300 in the CSV" in texts(blocks)


async def test_approval_flow_through_buttons(fake_slack: FakeSlack, shop_agent: Agent, fresh_db: str) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    thread = new_ts()
    post, update = await ask(fake_slack, app, "/sql UPDATE items SET qty = 0 WHERE id = 7", ts=thread)
    blocks = update.args["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                                    "text": "Approve: UPDATE 1 row in items?"}}
    assert texts(blocks)[1] == "```\nid 7: qty 70 → 0\n```"  # only the changed column, by row key
    assert f"*May approve:* <@{APPROVER}>" in texts(blocks)  # mentioned: Slack notifies them
    assert "```\nUPDATE items SET qty = 0 WHERE id = 7\n```" in texts(blocks)
    assert state_line(blocks).startswith("🔒 Waiting for approval · expires <!date^")
    (approve_id, action_id), (reject_id, reject_value) = buttons(blocks)
    assert (approve_id, reject_id) == ("pgbot_approve", "pgbot_reject") and reject_value == action_id
    approval_message = bot_message(post, update)

    # Someone who is not an approver: core refuses, only they see why (ephemeral), the card stays as it is.
    click = block_actions(action_id="pgbot_approve", value=action_id, message=approval_message, user="U0STRANGER")
    assert (await dispatch(app, click, content_type=FORM)).status == 200
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 1)
    refusal = fake_slack.of("chat.postEphemeral")[0].args
    assert (refusal["user"], refusal["thread_ts"]) == ("U0STRANGER", thread)
    assert refusal["text"].startswith(":warning: You (<@U0STRANGER>) cannot approve")  # named by mention
    await fake_slack.handled()
    assert len(fake_slack.of("chat.update")) == 1 and len(fake_slack.of("chat.postMessage")) == 1

    # The approver: the card says "running" at once (no buttons), then ends in one state line; the outcome is
    # posted in the thread.
    click = block_actions(action_id="pgbot_approve", value=action_id, message=approval_message, user=APPROVER)
    assert (await dispatch(app, click, content_type=FORM)).status == 200
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 3 and len(f.of("chat.postMessage")) == 2)
    running, retired = fake_slack.of("chat.update")[1:]
    assert state_line(running.args["blocks"]) == f"⏳ Approved by <@{APPROVER}> — running"
    assert buttons(running.args["blocks"]) == []
    outcome = fake_slack.of("chat.postMessage")[1]
    assert outcome.args["channel"] == CHANNEL and outcome.args["thread_ts"] == thread
    assert retired.args["ts"] == running.args["ts"] == update.args["ts"]
    assert buttons(retired.args["blocks"]) == []
    assert re.fullmatch(rf"✅ Applied: UPDATE 1 in \d+ ms — approved by <@{APPROVER}>",
                        state_line(retired.args["blocks"]))
    assert retired.args["blocks"][:3] == blocks[:3]
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT qty FROM items WHERE id = 7") == 0
    finally:
        await conn.close()

    # A late click on a stale copy of the buttons: core says it is already decided, to the clicker alone.
    click = block_actions(action_id="pgbot_reject", value=action_id, message=approval_message, user=APPROVER)
    await dispatch(app, click, content_type=FORM)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 2)
    assert "already approved" in fake_slack.of("chat.postEphemeral")[1].args["text"]
    await fake_slack.handled()
    assert len(fake_slack.of("chat.update")) == 3 and len(fake_slack.of("chat.postMessage")) == 2


async def test_requester_can_withdraw_with_reject(fake_slack: FakeSlack, shop_agent: Agent) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    post, update = await ask(fake_slack, app, "/sql DELETE FROM items WHERE id = 9")
    (_, action_id), _ = buttons(update.args["blocks"])
    click = block_actions(action_id="pgbot_reject", value=action_id, message=bot_message(post, update),
                          user="U0USER0001")
    await dispatch(app, click, content_type=FORM)
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 2)
    retired = fake_slack.of("chat.update")[1]
    assert state_line(retired.args["blocks"]) == "🚫 Rejected by <@U0USER0001>"
    assert buttons(retired.args["blocks"]) == []


async def test_feedback_buttons_reach_core_and_answer_only_the_clicker(fake_slack: FakeSlack) -> None:
    double = ApprovalAgentDouble(answers=[Reply(kind=ReplyKind.ANSWER, text="42 orders", answer_id=ANSWER_ID)])
    app = build_slack_app(double, slack_settings(fake_slack))  # type: ignore[arg-type]
    post, update = await ask(fake_slack, app, "how many orders?")
    assert buttons(update.args["blocks"]) == [("pgbot_feedback_up", ANSWER_ID), ("pgbot_feedback_down", ANSWER_ID)]
    assert double.messages[0] == Message(platform="slack", workspace=TEAM_ID, channel=CHANNEL,
                                         thread=post.args["thread_ts"], user="U0USER0001", text="how many orders?",
                                         event_id=f"{CHANNEL}:{post.args['thread_ts']}")
    click = block_actions(action_id="pgbot_feedback_down", value=ANSWER_ID, message=bot_message(post, update),
                          user="U0READER01")
    assert (await dispatch(app, click, content_type=FORM)).status == 200
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 1)
    assert double.feedbacks == [(ANSWER_ID, "slack:U0READER01", False)]
    note = fake_slack.of("chat.postEphemeral")[0].args
    assert (note["channel"], note["user"], note["thread_ts"]) == (CHANNEL, "U0READER01", post.args["thread_ts"])
    assert "Thanks, noted." in note["text"]


async def test_feedback_on_a_real_answer_is_stored_by_core(fake_slack: FakeSlack, fresh_db: str) -> None:
    """Real agent, scripted model over HTTP: the 👎 on its answer lands in pgbot.feedback."""
    from bot.wiring import build_agent
    from core import Settings
    from tests import llm_server as llm
    from tests.llm_server import ScriptedLlmServer

    async with ScriptedLlmServer() as server:
        server.script(llm.tool_call("run_query", {"sql": "SELECT 42 AS orders"}), llm.text("42 orders."))
        agent = build_agent(Settings(
            databases={"shop": {"dsn": fresh_db}},
            llm={"base_url": server.base_url, "api_key": "k", "max_retries": 0, "tool_mode": "native"},
        ))
        try:
            app = build_slack_app(agent, slack_settings(fake_slack))
            post, update = await ask(fake_slack, app, "how many orders?")
            (edit, _), (sql, answer_id), (up, _), (down, _) = buttons(update.args["blocks"])
            assert (edit, sql, up, down) == ("pgbot_edit_sql", "pgbot_show_sql", "pgbot_feedback_up",
                                             "pgbot_feedback_down")
            click = block_actions(action_id=down, value=answer_id, message=bot_message(post, update),
                                  user="U0READER01")
            await dispatch(app, click, content_type=FORM)
            await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 1)
        finally:
            await agent.aclose()
    conn = await asyncpg.connect(fresh_db)
    try:
        row = await conn.fetchrow("SELECT question, sql, helpful, voted_by FROM pgbot.feedback")
    finally:
        await conn.close()
    assert row is not None and row["question"] == "how many orders?" and row["helpful"] is False
    assert "SELECT 42 AS orders" in row["sql"] and row["voted_by"] == "slack:U0READER01"


class ExplodingAgentDouble:
    """TEST DOUBLE: core failing after the working reply (core normally turns errors into replies itself)."""

    schedules = None

    async def handle(self, message: Message) -> AsyncIterator[Reply]:
        yield Reply(kind=ReplyKind.WORKING, text="Working on it…")
        raise RuntimeError("secret-dsn-password-should-not-leak")

    async def decide(self, *, action_id: str, decided_by: str, approve: bool) -> Reply:
        raise AssertionError("not used")


@pytest.mark.filterwarnings("ignore")
async def test_unexpected_failure_becomes_one_error_reply(fake_slack: FakeSlack) -> None:
    app = build_slack_app(ExplodingAgentDouble(), slack_settings(fake_slack))  # type: ignore[arg-type]
    _, update = await ask(fake_slack, app, "boom")
    body = json.dumps(update.args)
    assert "Internal error, id=" in body and "secret-dsn-password" not in body


async def test_blocks_slack_refuses_fall_back_to_text(fake_slack: FakeSlack, shop_agent: Agent) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    fake_slack.refuse_blocks_with = "```"
    await dispatch(app, event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT 1 AS one", ts=new_ts())))
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 2)
    refused, plain = fake_slack.of("chat.update")
    assert refused.args["ts"] == plain.args["ts"]
    assert plain.args["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": "1 row"}}]


async def test_progress_of_long_approved_work_edits_one_line_of_the_card(fake_slack: FakeSlack) -> None:
    lines = [f"building index: {p}% (phase: building index: scanning table)" for p in range(0, 100, 10)]
    double = ApprovalAgentDouble(progress_lines=[*lines, "Dumped 3 of 12 tables; now public.<orders>."],
                                 progress_pause_s=0.05)
    app = build_slack_app(double, slack_settings(fake_slack), progress_every_s=0.2)  # type: ignore[arg-type]
    post, update = await ask(fake_slack, app, "back up shop")
    (_, action_id), _ = buttons(update.args["blocks"])
    click = block_actions(action_id="pgbot_approve", value=action_id, message=bot_message(post, update),
                          user=APPROVER)
    await dispatch(app, click, content_type=FORM)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postMessage")) == 2)
    await fake_slack.handled()
    assert len(fake_slack.of("chat.postMessage")) == 2  # the card and the outcome: never a message per step
    card_edits = [c.args for c in fake_slack.of("chat.update")[1:]]
    assert {e["ts"] for e in card_edits} == {update.args["ts"]}
    states = [state_line(e["blocks"]) for e in card_edits]
    assert states[0] == f"⏳ Approved by <@{APPROVER}> — running"
    progress = states[1:-1]
    assert 1 <= len(progress) < len(lines)  # rate-limited: at most one edit per 0.2 s here (3 s in production)
    assert all(p.startswith(f"⏳ Approved by <@{APPROVER}> — running: ") for p in progress)
    percents = [int(p.split("index: ")[1].split("%")[0]) for p in progress if "%" in p]
    assert percents and percents == sorted(set(percents))  # the latest step each time, never an old one again
    assert states[-1] == f"✅ Applied: UPDATE 1 in 12 ms — approved by <@{APPROVER}>"  # the final state, last


async def test_handled_waits_for_listeners_still_running(fake_slack: FakeSlack) -> None:
    """The negative checks of these tests ("nothing more is sent") wait for bolt's listeners with handled():
    it must see a listener that is still running, for an event and for a click."""
    double = HeldDouble()
    app = build_slack_app(double, slack_settings(fake_slack))  # type: ignore[arg-type]
    await dispatch(app, event_body(app_mention(f"<@{BOT_USER_ID}> held", ts=new_ts())))
    await fake_slack.wait_for(lambda f: len(f.of("chat.postMessage")) == 1)  # working; the answer is held
    with pytest.raises(AssertionError, match="bolt listeners still running"):
        await fake_slack.handled(within_s=0.2)
    double.release.set()
    await fake_slack.handled()
    post, update = fake_slack.of("chat.postMessage")[0], fake_slack.of("chat.update")[0]
    double.release.clear()
    click = block_actions(action_id="pgbot_approve", value=ACTION_ID, message=bot_message(post, update))
    await dispatch(app, click, content_type=FORM)
    with pytest.raises(AssertionError, match="bolt listeners still running"):
        await fake_slack.handled(within_s=0.2)
    double.release.set()
    await fake_slack.handled()
    assert double.decisions == [(ACTION_ID, "slack:U0APPROVER", True)] and len(fake_slack.of("chat.update")) == 3
