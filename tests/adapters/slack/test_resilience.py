"""What Slack throws at the adapter: rate limits and server errors from the Web API, errors that do not go
away, results too big for a message (rows, columns, long cells), channels and workspaces config keeps pgbot
out of, and the 3-second ack on button clicks. All through bolt's real AsyncApp and slack_sdk's real client
against the local fake Slack."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from adapters.live_line import elapsed_text
from adapters.slack.app import NOT_HERE, build_slack_app
from bot.wiring import build_agent
from core import Agent, Message, Reply, ReplyKind, Settings
from core.approvals.executors import ProgressSink
from tests.adapters.slack.agent_double import ACTION_ID, ApprovalAgentDouble
from tests.adapters.slack.fake_slack import (
    BOT_USER_ID,
    TEAM_ID,
    FakeSlack,
    app_mention,
    block_actions,
    dispatch,
    event_body,
    new_ts,
    slack_settings,
    thread_message,
)
from tests.adapters.slack.test_app import FORM, ask, bot_message, state_line, table_rows, texts
from tests.helpers import wait_until


async def test_rate_limits_and_server_errors_are_retried(fake_slack: FakeSlack, shop_agent: Agent) -> None:
    """429 waits for Retry-After (0 here, to keep the test fast), 503 backs off; the user sees one answer."""
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    fake_slack.fail_next("chat.postMessage", status=429, headers={"Retry-After": "0"})
    fake_slack.fail_next("chat.update", status=503)
    thread = new_ts()
    await dispatch(app, event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT 6 * 7 AS answer", ts=thread)))
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 2)
    posts, updates = fake_slack.of("chat.postMessage"), fake_slack.of("chat.update")
    assert len(posts) == 2 and posts[0].args == posts[1].args  # the same request, sent again
    assert updates[0].args == updates[1].args
    assert any("42" in t for t in texts(updates[1].args["blocks"]))
    await fake_slack.handled()
    assert len(fake_slack.of("chat.postMessage")) == 2  # retried, never duplicated


async def test_errors_that_persist_are_logged_and_the_bot_keeps_working(
    fake_slack: FakeSlack, shop_agent: Agent
) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    fake_slack.fail_next("chat.postMessage", error="not_in_channel")  # HTTP 200, ok: false: not retried
    with capture_logs() as logs:
        await dispatch(app, event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT 1 AS one", ts=new_ts())))
        await fake_slack.wait_for(lambda f: len(f.of("chat.postMessage")) == 1)
        await fake_slack.handled()
    assert {"event": "slack_post_failed", "channel": "C0CHAN0001", "error": "not_in_channel",
            "log_level": "error"} in logs
    assert fake_slack.of("chat.update") == []
    await ask(fake_slack, app, "/sql SELECT 2 AS two")  # the thread's turn was released: the next one runs


async def test_wide_and_long_results_fit_the_message_and_come_whole_as_csv(
    fake_slack: FakeSlack, shop_agent: Agent
) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    columns = ", ".join(f"repeat(chr(65 + {i % 26}), 30) AS col_{i:02d}" for i in range(40))
    sql = f"SELECT id, {columns}, repeat('long ', 20) AS notes FROM items ORDER BY id"
    post, update = await ask(fake_slack, app, f"/sql {sql}")
    blocks = update.args["blocks"]
    assert len(blocks) <= 50 and all(len(t) <= 3000 for t in texts(blocks))
    rows = table_rows(blocks)
    assert rows[0] == ["id", "col_00", "col_01", "col_02", "col_03", "col_04"] and len(rows) == 16
    assert "showing 15 of 300 · 36 more columns in the CSV" in texts(blocks)

    await fake_slack.wait_for(lambda f: len(f.of("files.completeUploadExternal")) == 1)
    asked = fake_slack.of("files.getUploadURLExternal")[0].args
    done = fake_slack.of("files.completeUploadExternal")[0].args
    assert asked["filename"] == "shop-300-rows.csv"
    assert (done["channel_id"], done["thread_ts"]) == ("C0CHAN0001", post.args["thread_ts"])
    content = fake_slack.uploads[done["files"][0]["id"]]
    assert int(asked["length"]) == len(content)
    rows = list(csv.reader(io.StringIO(content.decode())))
    assert len(rows) == 301 and len(rows[0]) == 42 and rows[0][-1] == "notes"
    assert rows[1][0] == "1" and rows[1][-1] == "long " * 20  # whole cells, not the chat's cut ones


async def test_a_result_that_fits_uploads_nothing(fake_slack: FakeSlack, shop_agent: Agent) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    await ask(fake_slack, app, "/sql SELECT id, qty FROM items WHERE id <= 5")
    await fake_slack.handled()
    assert fake_slack.of("files.getUploadURLExternal") == []


async def test_a_refused_upload_is_said_in_the_thread(fake_slack: FakeSlack, shop_agent: Agent) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    fake_slack.fail_next("files.getUploadURLExternal", error="missing_scope")
    thread = new_ts()
    await dispatch(app, event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT id, qty FROM items", ts=thread)))
    await fake_slack.wait_for(lambda f: len(f.of("chat.postMessage")) == 2)
    assert len(fake_slack.of("chat.update")) == 1  # the answer itself was shown
    note = fake_slack.of("chat.postMessage")[1].args
    assert note["thread_ts"] == thread
    assert note["text"] == ":warning: The result could not be attached as a CSV file (missing_scope)."


@pytest.fixture
async def export_agent(fresh_db: str, tmp_path: Path) -> AsyncIterator[Agent]:
    import asyncpg

    from tests.helpers import ITEMS_SQL

    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(ITEMS_SQL)
    finally:
        await conn.close()
    agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db}}, limits={"export_dir": str(tmp_path)}),
                        use_llm=False)
    yield agent
    await agent.aclose()


async def test_export_file_is_uploaded_into_the_thread(fake_slack: FakeSlack, export_agent: Agent,
                                                       tmp_path: Path) -> None:
    app = build_slack_app(export_agent, slack_settings(fake_slack))
    post, update = await ask(fake_slack, app, "/export SELECT id, qty FROM items ORDER BY id")
    assert "300 rows" in update.args["text"]
    await fake_slack.wait_for(lambda f: len(f.of("files.completeUploadExternal")) == 1)
    done = fake_slack.of("files.completeUploadExternal")[0].args
    assert done["thread_ts"] == post.args["thread_ts"]
    (written,) = tmp_path.glob("shop-*.csv")  # noqa: ASYNC240 - a test reading back a small file
    assert fake_slack.uploads[done["files"][0]["id"]] == written.read_bytes()
    assert fake_slack.of("files.getUploadURLExternal")[0].args["filename"] == written.name


async def test_mention_in_a_channel_not_allowed_gets_a_note_only_the_asker_sees(
    fake_slack: FakeSlack, shop_agent: Agent
) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack, allowed_channels=["C0OPS00001"]))
    ts = new_ts()
    await dispatch(app, event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT 1", ts=ts, channel="C0RANDOM01")))
    dm = {"type": "message", "channel": "D0DM000001", "user": "U0USER0001", "text": "/tables", "ts": new_ts(),
          "event_ts": new_ts(), "channel_type": "im"}
    await dispatch(app, event_body(dm))
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 2)
    await dispatch(app, event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT 1", ts=ts, channel="C0RANDOM01")))
    await fake_slack.handled()
    notes = [c.args for c in fake_slack.of("chat.postEphemeral")]
    assert [(n["channel"], n["user"], n["text"]) for n in notes] == [
        ("C0RANDOM01", "U0USER0001", NOT_HERE), ("D0DM000001", "U0USER0001", NOT_HERE),
    ]  # and a retried delivery of the same mention is not noted twice
    assert fake_slack.of("chat.postMessage") == []
    # In the allowed channel pgbot answers as usual.
    await dispatch(app, event_body(app_mention(f"<@{BOT_USER_ID}> /sql SELECT 1", ts=new_ts(), channel="C0OPS00001")))
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 1)


async def test_people_from_other_workspaces_are_ignored(fake_slack: FakeSlack, shop_agent: Agent) -> None:
    app = build_slack_app(shop_agent, slack_settings(fake_slack, allowed_teams=[TEAM_ID]))
    # A Slack Connect channel: the event arrives for our workspace, the author belongs to another one.
    outsider = {**app_mention(f"<@{BOT_USER_ID}> /sql SELECT 1", ts=new_ts()), "user_team": "T0OTHERORG",
                "team": "T0OTHERORG"}
    with capture_logs() as logs:
        await dispatch(app, event_body(outsider))
        await fake_slack.handled()
    assert [c.method for c in fake_slack.calls if c.method != "auth.test"] == []
    assert any(e["event"] == "slack_not_allowed" and e["reason"] == "team" for e in logs)
    await ask(fake_slack, app, "/sql SELECT 1 AS one")  # our own people are answered


class SlowDecisionDouble(ApprovalAgentDouble):
    """TEST DOUBLE: a decision that takes as long as the test wants (a slow UPDATE behind the click)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.entered = asyncio.Event()  # the adapter has called decide and waits for it

    async def decide(self, *, action_id: str, decided_by: str, approve: bool,
                     progress: ProgressSink | None = None, **more: Any) -> Reply:
        self.entered.set()
        await self.release.wait()
        return await super().decide(action_id=action_id, decided_by=decided_by, approve=approve, progress=progress,
                                    **more)


async def test_clicks_are_acked_at_once_and_the_work_runs_after(fake_slack: FakeSlack) -> None:
    double = SlowDecisionDouble()
    app = build_slack_app(double, slack_settings(fake_slack))  # type: ignore[arg-type]
    post, update = await ask(fake_slack, app, "cancel order 42")
    click = block_actions(action_id="pgbot_approve", value=ACTION_ID, message=bot_message(post, update))
    started = time.monotonic()
    response = await dispatch(app, click, content_type=FORM)
    assert response.status == 200 and time.monotonic() - started < 3.0  # Slack gives up after 3 s
    await asyncio.wait_for(double.entered.wait(), timeout=10)  # acked; the listener now waits for core
    assert len(fake_slack.of("chat.update")) == 1  # the decision is still running
    double.release.set()
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 3)
    assert double.decisions == [(ACTION_ID, "slack:U0APPROVER", True)]
    assert state_line(fake_slack.of("chat.update")[1].args["blocks"]) == "⏳ Approved by <@U0APPROVER> — running"
    assert state_line(fake_slack.of("chat.update")[2].args["blocks"]) == (
        "✅ Applied: UPDATE 1 in 12 ms — approved by <@U0APPROVER>"
    )


async def test_thread_reply_in_a_direct_message(fake_slack: FakeSlack, shop_agent: Agent) -> None:
    """DMs need no mention: the first message and a reply in its thread are both answered there."""
    app = build_slack_app(shop_agent, slack_settings(fake_slack))
    ts = new_ts()
    dm = {"client_msg_id": "c0ffee00-0000-4000-8000-000000000003", "type": "message", "text": "/sql SELECT 7 AS n",
          "user": "U0USER0001", "ts": ts, "team": TEAM_ID, "channel": "D0DM000001", "event_ts": ts,
          "channel_type": "im"}
    await dispatch(app, event_body(dm))
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 1)
    post = fake_slack.of("chat.postMessage")[0].args
    assert (post["channel"], post["thread_ts"]) == ("D0DM000001", ts)
    reply = {**thread_message("/sql SELECT 8 AS n", ts=new_ts(), thread_ts=ts, channel="D0DM000001"),
             "channel_type": "im"}
    await dispatch(app, event_body(reply))
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) == 2)
    assert fake_slack.of("chat.postMessage")[1].args["thread_ts"] == ts
    assert any("8" in t for t in texts(fake_slack.of("chat.update")[1].args["blocks"]))


async def test_an_answer_without_a_table_still_carries_feedback_buttons(fake_slack: FakeSlack) -> None:
    double = ApprovalAgentDouble(answers=[Reply(kind=ReplyKind.ANSWER, text="Nothing to count.", answer_id="a9")])
    app = build_slack_app(double, slack_settings(fake_slack))  # type: ignore[arg-type]
    _, update = await ask(fake_slack, app, "count nothing")
    assert update.args["blocks"][-1]["block_id"] == "pgbot_feedback"


class SlowAnswerDouble(ApprovalAgentDouble):
    """TEST DOUBLE: a turn that takes a while (a slow query): it answers once ``done_waiting()`` holds."""

    def __init__(self, done_waiting: Callable[[], bool]) -> None:
        super().__init__()
        self.done_waiting = done_waiting

    async def handle(self, message: Message) -> AsyncIterator[Reply]:
        yield Reply(kind=ReplyKind.WORKING, text="Working on it…")
        await wait_until(self.done_waiting, describe=lambda: "progress edits")
        yield Reply(kind=ReplyKind.ANSWER, text="Done at last.", answer_id="a1")


async def test_long_work_edits_the_working_message_with_its_progress(fake_slack: FakeSlack) -> None:
    double = SlowAnswerDouble(lambda: len(fake_slack.of("chat.update")) >= 2)  # two progress ticks, then done
    app = build_slack_app(double, slack_settings(fake_slack),  # type: ignore[arg-type]
                          progress_every_s=0.1)
    await dispatch(app, event_body(app_mention(f"<@{BOT_USER_ID}> slow one", ts=new_ts())))
    await fake_slack.wait_for(lambda f: any("Done at last." in c.args["text"] for c in f.of("chat.update")))
    await fake_slack.handled()
    updates = [c.args for c in fake_slack.of("chat.update")]
    assert len({u["ts"] for u in updates}) == 1  # all edits of the one working message
    *ticks, last = updates
    assert len(ticks) >= 2 and all(re.fullmatch(r":hourglass_flowing_sand: Working on it… \(\d+ s\)", t["text"])
                                   for t in ticks)
    assert last["text"] == "Done at last."  # the answer is the last edit: no tick lands after it
    assert (elapsed_text(42.4), elapsed_text(75)) == ("42 s", "1 min 15 s")
