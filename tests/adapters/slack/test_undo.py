"""Undo over Slack end to end: signed block_actions into bolt, the real Agent on the real Postgres, every Web
API call checked on the local fake Slack. The outcome of an approved change carries an Undo button; the undo's
card goes in the thread; it is approved by an approver like any change, once."""

from __future__ import annotations

from typing import Any

import asyncpg

from adapters.slack.app import build_slack_app
from bot.wiring import build_agent
from core import Agent, Settings
from tests.adapters.slack.conftest import APPROVER
from tests.adapters.slack.fake_slack import FakeSlack, block_actions, dispatch, new_ts, slack_settings
from tests.adapters.slack.test_app import FORM, ask, bot_message, buttons, texts
from tests.helpers import ITEMS_SQL

ASKER = "U0USER0001"


async def qty(dsn: str, item: int) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT qty FROM items WHERE id = $1", item))
    finally:
        await conn.close()


async def press(fake: FakeSlack, app: Any, message: dict[str, Any], *, action: str, user: str) -> None:
    """Click the button ``action`` on ``message`` (a message as Slack puts it in block_actions)."""
    (value,) = [v for a, v in buttons(message["blocks"]) if a == action]
    body = block_actions(action_id=action, value=value, message=message, user=user)
    assert (await dispatch(app, body, content_type=FORM)).status == 200


async def next_post(fake: FakeSlack, count: int, *, thread_ts: str) -> dict[str, Any]:
    """The bot's next message in the thread, as a later block_actions payload would carry it."""
    await fake.wait_for(lambda f: len(f.of("chat.postMessage")) > count)
    args = fake.of("chat.postMessage")[count].args
    return {"type": "message", "ts": new_ts(), "thread_ts": thread_ts, "text": args["text"],
            "blocks": args.get("blocks") or []}


async def test_undo_button_card_and_approval_in_a_thread(
    fake_slack: FakeSlack, shop_agent: Agent, fresh_db: str
) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    post, update = await ask(fake_slack, app, "/sql UPDATE items SET qty = 0 WHERE id IN (1, 2)")
    thread = post.args["thread_ts"]
    assert texts(update.args["blocks"])  # the card (its "Undo: once it runs…" line is told to the model)
    posts = len(fake_slack.of("chat.postMessage"))
    await press(fake_slack, app, bot_message(post, update), action="pgbot_approve", user=APPROVER)
    outcome = await next_post(fake_slack, posts, thread_ts=thread)
    assert "UPDATE 2" in outcome["text"] and "kept the 2 rows" in outcome["text"]
    assert [a for a, _ in buttons(outcome["blocks"])] == ["pgbot_undo"]
    assert await qty(fresh_db, 1) == 0

    posts = len(fake_slack.of("chat.postMessage"))
    await press(fake_slack, app, outcome, action="pgbot_undo", user=ASKER)
    card = await next_post(fake_slack, posts, thread_ts=thread)
    assert "Approve: UNDO of change" in str(card["blocks"])  # the card asks the question (issue 17)
    assert [a for a, _ in buttons(card["blocks"])] == ["pgbot_approve", "pgbot_reject"]

    # A second click: only the clicker is told, no second card.
    await press(fake_slack, app, outcome, action="pgbot_undo", user=APPROVER)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 1)
    assert "already waits for approval" in fake_slack.of("chat.postEphemeral")[0].args["text"]
    # The undo's requester cannot approve it; the approver can, once.
    # Refusals go to the clicker alone (chat.postEphemeral), as every refused click does.
    posts = len(fake_slack.of("chat.postMessage"))
    await press(fake_slack, app, card, action="pgbot_approve", user=ASKER)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 2)
    assert "self-approval is off" in fake_slack.of("chat.postEphemeral")[1].args["text"]
    assert await qty(fresh_db, 1) == 0
    for _ in range(2):
        await press(fake_slack, app, card, action="pgbot_approve", user=APPROVER)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 3
                              and any("put back 2 of 2 rows of public.items" in c.args["text"]
                                      for c in f.of("chat.postMessage")[posts:]))
    done = [c.args["text"] for c in fake_slack.of("chat.postMessage")[posts:]]
    assert sum("put back 2 of 2 rows of public.items" in t for t in done) == 1, done
    assert "already approved" in fake_slack.of("chat.postEphemeral")[2].args["text"]
    assert await qty(fresh_db, 1) == 10 and await qty(fresh_db, 2) == 20
    assert all("pgbot_undo" not in str(c.args.get("blocks")) for c in fake_slack.of("chat.postMessage")[posts:])


async def test_over_the_bound_the_card_says_so_and_the_outcome_has_no_undo(
    fake_slack: FakeSlack, fresh_db: str
) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(ITEMS_SQL)
    finally:
        await conn.close()
    agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db, "approvers": {"users": [f"slack:{APPROVER}"]}}},
                                 undo={"max_rows": 100}), use_llm=False)
    try:
        app = build_slack_app(agent, slack_settings(fake_slack))
        post, update = await ask(fake_slack, app, "/sql UPDATE items SET qty = 1")
        shown = "\n".join(texts(update.args["blocks"]))
        assert ":warning: This change cannot be undone: it would change 300 rows, over the 100" in shown
        posts = len(fake_slack.of("chat.postMessage"))
        await press(fake_slack, app, bot_message(post, update), action="pgbot_approve", user=APPROVER)
        outcome = await next_post(fake_slack, posts, thread_ts=post.args["thread_ts"])
        assert "UPDATE 300" in outcome["text"] and buttons(outcome["blocks"]) == []
    finally:
        await agent.aclose()
