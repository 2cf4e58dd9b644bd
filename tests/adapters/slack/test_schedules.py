"""Schedules over the Slack stand-in: created with /schedule in a mention, listed with "list schedules", paused
and deleted with the card's buttons (block_actions payloads), and a due run posted into its thread."""

from __future__ import annotations

import datetime as dt

import asyncpg

from adapters.slack.app import build_slack_app
from core import Agent
from core.schedules import ManualClock, MemoryRunClaims, Scheduler
from tests.adapters.slack.conftest import APPROVER
from tests.adapters.slack.fake_slack import FakeSlack, block_actions, dispatch, new_ts, slack_settings
from tests.adapters.slack.test_app import CHANNEL, FORM, ask, bot_message, buttons, texts

CREATOR = "U0USER0001"  # who ask() mentions the bot as


async def test_schedule_card_buttons_and_a_due_run_in_the_thread(
        fake_slack: FakeSlack, shop_agent: Agent, fresh_db: str) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    assert shop_agent.schedules is not None
    clock = ManualClock(dt.datetime(2026, 3, 30, 6, 0, tzinfo=dt.UTC))
    shop_agent.schedules.clock = clock
    thread = new_ts()
    post, update = await ask(fake_slack, app, '/schedule "every monday at 9:00" SELECT id, qty FROM items '
                                              "ORDER BY id LIMIT 2", ts=thread)
    blocks = update.args["blocks"]
    assert any("Scheduled: At 09:00 on Monday" in t for t in texts(blocks))
    (pause, schedule_id), (delete, same_id) = buttons(blocks)
    assert (pause, delete, same_id) == ("pgbot_schedule_pause", "pgbot_schedule_delete", schedule_id)
    card = bot_message(post, update)

    # Someone else: refused, and only they are told.
    await dispatch(app, block_actions(action_id=pause, value=schedule_id, message=card, user="U0STRANGER"),
                   content_type=FORM)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 1)
    refusal = fake_slack.of("chat.postEphemeral")[0].args
    assert refusal["user"] == "U0STRANGER" and "only its creator or an approver" in refusal["text"]

    # The approver pauses it: said in the thread, with the card now offering Resume.
    await dispatch(app, block_actions(action_id=pause, value=schedule_id, message=card, user=APPROVER),
                   content_type=FORM)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postMessage")) == 2)
    paused = fake_slack.of("chat.postMessage")[1].args
    assert paused["thread_ts"] == thread and f"Schedule {schedule_id} paused by slack:{APPROVER}" in paused["text"]
    assert buttons(paused["blocks"]) == [("pgbot_schedule_resume", schedule_id), (delete, schedule_id)]
    await dispatch(app, block_actions(action_id="pgbot_schedule_resume", value=schedule_id, message=card,
                                      user=CREATOR), content_type=FORM)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postMessage")) == 3)

    # "list schedules" needs no model; the due run posts into the thread the schedule was made in.
    _, listed = await ask(fake_slack, app, "list schedules")
    assert "1 schedule post in this channel:" in texts(listed.args["blocks"])[0]
    assert buttons(listed.args["blocks"]) == [(pause, schedule_id), (delete, schedule_id)]
    scheduler = Scheduler(schedules=shop_agent.schedules, claims=MemoryRunClaims(), clock=clock)
    clock.set(dt.datetime(2026, 3, 30, 9, 0, 5, tzinfo=dt.UTC))  # the database's zone is UTC here
    posts = len(fake_slack.of("chat.postMessage"))
    assert await scheduler.tick() == 1
    report = fake_slack.of("chat.postMessage")[posts].args
    assert (report["channel"], report["thread_ts"]) == (CHANNEL, thread)
    assert report["text"].startswith("Scheduled report: SELECT id, qty FROM items ORDER BY id LIMIT 2 (At 09:00 "
                                     "on Monday (")  # the database's own zone: no [schedules] timezone here
    assert report["text"].endswith(f", schedule {schedule_id})")
    (table,) = [b for b in report["blocks"] if b["type"] == "table"]  # Slack's native table block
    assert [[cell.get("text") for cell in row] for row in table["rows"][1:]] == [["1", "10"], ["2", "20"]]

    # The creator deletes it.
    await dispatch(app, block_actions(action_id=delete, value=schedule_id, message=card, user=CREATOR),
                   content_type=FORM)
    await fake_slack.wait_for(lambda f: any(f"Schedule {schedule_id} deleted" in c.args["text"]
                                            for c in f.of("chat.postMessage")))
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pgbot.schedules") == 0
        events = [r["event"] for r in await conn.fetch(
            "SELECT event FROM pgbot.audit WHERE action_id = $1 ORDER BY id", schedule_id)]
    finally:
        await conn.close()
    assert events == ["schedule_created", "schedule_paused", "schedule_resumed", "schedule_ran", "schedule_deleted"]


async def test_a_chart_schedule_uploads_its_png_into_the_thread_and_an_unchartable_one_says_why(
        fake_slack: FakeSlack, shop_agent: Agent) -> None:
    """``/schedule … chart bar SELECT``: each run posts the table, then the chart through files_upload_v2."""
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    assert shop_agent.schedules is not None
    clock = ManualClock(dt.datetime(2026, 3, 30, 6, 0, tzinfo=dt.UTC))
    shop_agent.schedules.clock = clock
    thread = new_ts()
    _, update = await ask(fake_slack, app, '/schedule "every monday at 9:00" chart bar SELECT id::text AS item, qty '
                                           "FROM items ORDER BY id LIMIT 3", ts=thread)
    assert "with a chart of each result" in texts(update.args["blocks"])[0]
    _, other = await ask(fake_slack, app, '/schedule "every monday at 9:00" chart SELECT 42 AS answer')
    assert "with a chart of each result" in texts(other.args["blocks"])[0]

    scheduler = Scheduler(schedules=shop_agent.schedules, claims=MemoryRunClaims(), clock=clock)
    clock.set(dt.datetime(2026, 3, 30, 9, 0, 5, tzinfo=dt.UTC))
    posts = len(fake_slack.of("chat.postMessage"))
    assert await scheduler.tick() == 2
    await fake_slack.wait_for(lambda f: len(f.of("files.completeUploadExternal")) == 1)
    reports = [c.args for c in fake_slack.of("chat.postMessage")[posts:]]
    (charted,) = [r for r in reports if "SELECT id::text" in r["text"]]
    assert len(reports) == 2 and charted["thread_ts"] == thread
    (plain,) = [r for r in reports if "SELECT 42" in r["text"]]
    assert any(b["type"] == "table" for b in charted["blocks"])  # the table as before, the chart beside it
    start = fake_slack.of("files.getUploadURLExternal")[0].args
    done = fake_slack.of("files.completeUploadExternal")[0].args
    assert start["filename"] == "chart-bar.png"
    assert (done["channel_id"], done["thread_ts"]) == (CHANNEL, thread)
    assert fake_slack.uploads[done["files"][0]["id"]].startswith(b"\x89PNG\r\n\x1a\n")
    assert "No chart: " in plain["text"]  # one row, one number: posted with the reason, nothing uploaded
