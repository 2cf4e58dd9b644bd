"""Issue 17 in Slack, as a person sees it: approval cards in each state, expiry, the working line with its phase
and Cancel, a long turn's notice, and a clarifying question's answers as buttons. Signed payloads into bolt's real
AsyncApp, the real Agent on the real Postgres (doubles only where the exact reply matters), the fake Slack."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from adapters.card_sweep import CardSweep
from adapters.slack import cards, progress
from adapters.slack.app import build_slack_app
from bot.wiring import build_agent
from core import Agent, Message, Reply, ReplyKind, Settings
from core.card_state import CardState, CardStatus
from tests import llm_server as llm
from tests.adapters.slack.agent_double import ApprovalAgentDouble, approval_reply
from tests.adapters.slack.conftest import APPROVER
from tests.adapters.slack.fake_slack import (
    BOT_USER_ID,
    FakeSlack,
    app_mention,
    block_actions,
    dispatch,
    event_body,
    new_ts,
    slack_settings,
)
from tests.adapters.slack.test_app import FORM, ask, bot_message, buttons, state_line, texts
from tests.helpers import active_queries, wait_until
from tests.integration.test_shutdown import wait_active
from tests.llm_server import ScriptedLlmServer

NOW = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC


def card_at(state: CardState) -> list[dict[str, Any]]:
    return cards.restated(render_card(), state)


def render_card() -> list[dict[str, Any]]:
    from adapters.slack.render import render

    return render(approval_reply()).blocks


def test_a_card_in_each_state_as_a_person_reads_it() -> None:
    pending = render_card()
    assert state_line(pending).startswith("🔒 Waiting for approval · expires <!date^")
    assert buttons(pending) == [("pgbot_approve", "a1b2c3d4e5f6"), ("pgbot_reject", "a1b2c3d4e5f6")]
    cases = {
        CardState(CardStatus.RUNNING, by=f"slack:{APPROVER}", at=NOW): f"⏳ Approved by <@{APPROVER}> — running",
        CardState(CardStatus.APPLIED, by=f"slack:{APPROVER}", at=NOW, detail="UPDATE 3", duration_ms=12.4):
            f"✅ Applied: UPDATE 3 in 12 ms — approved by <@{APPROVER}>",
        CardState(CardStatus.REJECTED, by="slack:U0REVIEWER", at=NOW): "🚫 Rejected by <@U0REVIEWER>",
        CardState(CardStatus.FAILED, by=f"slack:{APPROVER}", at=NOW,
                  detail="Postgres refused it: deadlock detected."):
            f"❌ Failed: Postgres refused it: deadlock detected (nothing changed) — approved by <@{APPROVER}>",
        CardState(CardStatus.EXPIRED, at=NOW): f"⌛ Expired <!date^{int(NOW)}^{{time}}|14:13 UTC>",
    }
    for state, line in cases.items():
        blocks = cards.restated(pending, state)
        assert state_line(blocks) == line
        assert buttons(blocks) == []  # no live buttons once it is decided (or running)
        assert blocks[:-1] == [b for b in pending if b.get("block_id") not in ("pgbot_card_state", "pgbot_decision")]
    # Progress of long work: one line, with the step and the time so far.
    running = cards.restated(pending, CardState(CardStatus.RUNNING, by=f"slack:{APPROVER}",
                                                detail="building index: 45% (phase: building index: scanning table)"),
                             elapsed_s=125)
    assert state_line(running) == (f"⏳ Approved by <@{APPROVER}> — running: building index: 45% (phase: building "
                                   "index: scanning table) · 2 min 5 s")


def test_identities_in_text_from_the_model_or_database_never_become_mentions() -> None:
    from adapters.slack.render import render

    reply = Reply(kind=ReplyKind.ANSWER, text="slack:U0EVIL0001 ordered <@U0EVIL0002> <!channel>", answer_id="a")
    shown = render(reply)
    assert "<@U0EVIL0001>" not in str(shown.blocks) and "&lt;@U0EVIL0002&gt; &lt;!channel&gt;" in texts(shown.blocks)[0]


async def test_a_click_after_expiry_turns_the_card_to_expired(
    fake_slack: FakeSlack, shop_agent: Agent, fresh_db: str
) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    post, update = await ask(fake_slack, app, "/sql DELETE FROM items WHERE id = 3")
    (_, action_id), _ = buttons(update.args["blocks"])
    assert shop_agent.approvals is not None
    expires = time.time() + shop_agent.settings.approvals.expiry_s
    shop_agent.approvals._clock = lambda: expires + 60  # an hour later: the card has expired
    click = block_actions(action_id="pgbot_approve", value=action_id, message=bot_message(post, update),
                          user=APPROVER)
    await dispatch(app, click, content_type=FORM)
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 2 and len(f.of("chat.postEphemeral")) == 1)
    expired = fake_slack.of("chat.update")[1].args
    assert expired["ts"] == update.args["ts"] and buttons(expired["blocks"]) == []
    assert re.fullmatch(r"⌛ Expired <!date\^\d+\^\{time\}\|\d\d:\d\d UTC>", state_line(expired["blocks"]))
    told = fake_slack.of("chat.postEphemeral")[0].args
    assert told["user"] == APPROVER and "expired" in told["text"] and "nothing was run" in told["text"]
    assert len(fake_slack.of("chat.postMessage")) == 1  # nothing posted to the thread
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM items WHERE id = 3") == 1
        assert [r["event"] for r in await conn.fetch("SELECT event FROM pgbot.audit ORDER BY id")] == [
            "requested", "expired"]
    finally:
        await conn.close()


async def test_core_expires_a_due_card_once_for_the_sweep(shop_agent: Agent, fresh_db: str) -> None:
    replies = [r async for r in shop_agent.handle(Message(platform="slack", workspace="T", channel="C", thread="t1",
                                                          user="U0USER0001", text="/sql DELETE FROM items"))]
    prompt = replies[-1].approval
    assert prompt is not None and shop_agent.approvals is not None
    assert await shop_agent.expire_card(prompt.action_id) is None  # not due yet
    shop_agent.approvals._clock = lambda: prompt.expires_at + 1
    state = await shop_agent.expire_card(prompt.action_id)
    assert state == CardState(CardStatus.EXPIRED, at=prompt.expires_at)
    assert await shop_agent.expire_card(prompt.action_id) is None  # once: another replica's sweep changes nothing
    assert await shop_agent.expire_card("not-an-id!") is None and await shop_agent.expire_card("x" * 22) is None


async def test_the_sweep_edits_cards_when_they_expire_and_skips_decided_ones() -> None:
    shown: list[tuple[str, CardState]] = []
    asked: list[str] = []

    async def expire(action_id: str) -> CardState | None:
        asked.append(action_id)
        return None if action_id == "decided" else CardState(CardStatus.EXPIRED, at=time.time())

    async def show(where: str, state: CardState) -> None:
        shown.append((where, state))

    sweep: CardSweep[str] = CardSweep(expire=expire, show=show, every_s=5)
    sweep.watch("soon", expires_at=time.time() + 0.2, where="card-1")
    sweep.watch("decided", expires_at=time.time() + 0.1, where="card-2")
    sweep.watch("later", expires_at=time.time() + 3600, where="card-3")
    sweep.watch("clicked", expires_at=time.time() + 0.1, where="card-4")
    sweep.forget("clicked")  # a click decided it first
    await wait_until(lambda: len(asked) >= 2, describe=lambda: asked, within_s=3)
    assert sorted(asked) == ["decided", "soon"] and [w for w, _ in shown] == ["card-1"]
    assert "later" in sweep and "soon" not in sweep


class PhasedAgent(ApprovalAgentDouble):
    """TEST DOUBLE: a slow answer (NOTIFY_AFTER_S is shortened by the test)."""

    async def handle(self, message: Message) -> AsyncIterator[Reply]:
        yield Reply(kind=ReplyKind.WORKING, text="Working on it…")
        # The turn's length is what is under test, so this sleep stays: the adapter's clock starts before
        # handle(), so it measures at least this long (a loaded machine only adds); the test then waits for
        # the answer itself.
        await asyncio.sleep(progress.NOTIFY_AFTER_S + 0.2)
        yield Reply(kind=ReplyKind.ANSWER, text="There are 300 items.", answer_id="a1")


async def test_a_long_turn_ends_with_a_new_message_that_notifies_the_asker(
    fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "NOTIFY_AFTER_S", 0.3)  # production: 10 s
    app = build_slack_app(PhasedAgent(), slack_settings(fake_slack))  # type: ignore[arg-type]
    ts = new_ts()
    await dispatch(app, event_body(app_mention(f"<@{BOT_USER_ID}> count the items", ts=ts, user="U0ASKER001")))
    await fake_slack.wait_for(lambda f: len(f.of("chat.postMessage")) == 2)
    _, answer = fake_slack.of("chat.postMessage")
    assert len(fake_slack.of("chat.delete")) == 1  # the "Working on it…" message goes
    assert answer.args["thread_ts"] == ts and answer.args["text"].startswith("<@U0ASKER001> There are 300 items.")
    assert re.fullmatch(r"<@U0ASKER001> here is your answer \(it took \d s\)\.", texts(answer.args["blocks"])[0])
    assert not [c for c in fake_slack.of("chat.update") if "There are 300" in c.args["text"]]  # not a silent edit


async def test_cancel_stops_the_query_on_the_server_and_only_the_asker_may(
    fake_slack: FakeSlack, shop_agent: Agent, fresh_db: str
) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack), progress_every_s=0.2)
    marker = f"pgbot_cancel_{new_ts().replace('.', '_')}"
    ts = new_ts()
    await dispatch(app, event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT pg_sleep(30) AS {marker}", ts=ts)))
    await fake_slack.wait_for(lambda f: any("running the query on shop" in c.args["text"]
                                            for c in f.of("chat.update")))
    working = fake_slack.of("chat.postMessage")[0].args
    ((cancel_id, turn),) = buttons(working["blocks"])
    assert cancel_id == "pgbot_cancel" and working["text"] == ":hourglass_flowing_sand: Working on it…"
    edit = next(c.args for c in fake_slack.of("chat.update") if "running the query" in c.args["text"])
    assert re.fullmatch(r":hourglass_flowing_sand: Working on it… running the query on shop \(\d+ s\)", edit["text"])
    assert buttons(edit["blocks"]) == [("pgbot_cancel", turn)]  # Cancel stays while it works
    await wait_active(fresh_db, marker, present=True)
    message = {"ts": fake_slack.of("chat.update")[-1].args["ts"], "thread_ts": ts, "text": working["text"],
               "blocks": working["blocks"]}

    # Someone else's Cancel: told privately, the query goes on.
    await dispatch(app, block_actions(action_id="pgbot_cancel", value=turn, message=message, user="U0STRANGER"),
                   content_type=FORM)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 1)
    refusal = fake_slack.of("chat.postEphemeral")[0].args
    assert refusal["user"] == "U0STRANGER" and "Only <@U0USER0001>, who asked, can cancel" in refusal["text"]
    assert await active_queries(fresh_db, marker) == 1

    # The asker's Cancel: the query is cancelled on the server and the turn says so.
    await dispatch(app, block_actions(action_id="pgbot_cancel", value=turn, message=message, user="U0USER0001"),
                   content_type=FORM)
    await fake_slack.wait_for(lambda f: any("you cancelled this request" in c.args["text"]
                                            for c in f.of("chat.update")))
    await wait_active(fresh_db, marker, present=False, within_s=5)  # cancelled on the server
    last = fake_slack.of("chat.update")[-1].args
    assert last["text"] == ":warning: Stopped: you cancelled this request. Nothing was changed."
    assert buttons(last["blocks"]) == []


async def test_a_clarifying_question_is_marked_and_its_answers_are_buttons(
    fake_slack: FakeSlack, fresh_db: str, llm_server: ScriptedLlmServer
) -> None:
    llm_server.script(
        llm.tool_call("ask_clarification", {"question": "Revenue before or after refunds?",
                                            "options": ["before refunds", "after refunds", "/sql DROP TABLE x",
                                                        "<@U0EVIL> <!channel>"]}),
        llm.text("After refunds: 42."),
    )
    agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db}},
                                 llm={"base_url": llm_server.base_url, "api_key": "k", "max_retries": 0,
                                      "tool_mode": "native"},
                                 accuracy={"grounded_answers": False}))
    try:
        app = build_slack_app(agent, slack_settings(fake_slack))
        post, update = await ask(fake_slack, app, "what was revenue?")
        blocks = update.args["blocks"]
        assert texts(blocks)[0] == "❓ *Question:* Revenue before or after refunds?"
        options = [b for b in blocks if b.get("block_id") == "pgbot_options"]
        assert [(e["text"]["text"], e["value"]) for e in options[0]["elements"]] == [
            ("before refunds", "before refunds"), ("after refunds", "after refunds"),
            ("<@U0EVIL> <!channel>", "<@U0EVIL> <!channel>")]  # plain_text: shown as typed, never a mention
        # A reader picks an answer: it goes to the model as their reply, and the question keeps who chose what.
        message = bot_message(post, update)
        click = block_actions(action_id="pgbot_option_1", value="after refunds", message=message, user="U0READER01")
        await dispatch(app, click, content_type=FORM)
        await fake_slack.wait_for(lambda f: any("After refunds: 42." in c.args["text"] for c in f.of("chat.update")))
        chosen = next(c.args for c in fake_slack.of("chat.update") if c.args["ts"] == update.args["ts"]
                      and c is not update)
        assert texts(chosen["blocks"])[-1] == "↳ <@U0READER01> chose: after refunds"
        assert not [b for b in chosen["blocks"] if b.get("block_id") == "pgbot_options"]
        assert llm.last_question(llm_server.requests[-1]) == "after refunds"  # the click, sent as the reply
        # A forged answer that reads as a command is not sent.
        requests = len(llm_server.requests)
        forged = block_actions(action_id="pgbot_option_2", value="/sql DROP TABLE items", message=message)
        await dispatch(app, forged, content_type=FORM)
        await fake_slack.handled()
        assert len(llm_server.requests) == requests
    finally:
        await agent.aclose()
