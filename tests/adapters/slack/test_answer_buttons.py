"""Show SQL and Export all rows, clicked through bolt's real AsyncApp on the fake Slack, with the real agent,
the scripted model over HTTP and a real Postgres where the asker and the clicker map to different roles."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.app import build_slack_app
from bot.wiring import build_agent
from core import Agent, Settings
from tests import llm_server as llm
from tests.adapters.slack.fake_slack import FakeSlack, block_actions, dispatch, slack_settings
from tests.adapters.slack.test_app import CHANNEL, FORM, ask, bot_message, buttons, texts
from tests.llm_server import ScriptedLlmServer
from tests.services import throwaway_role

ASKER, OTHER, STRANGER = "U0USER0001", "U0OTHER001", "U0STRANGER"
QUERY = "SELECT id, current_user AS who FROM t ORDER BY id"
GRANT = "GRANT SELECT ON t TO {role}"


@pytest.fixture
async def roles(fresh_db: str, pg_admin_dsn: str) -> AsyncIterator[tuple[str, str]]:
    import asyncpg

    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 50) g")
    finally:
        await conn.close()
    async with throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_asker", grants=GRANT) as asker, \
            throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_other", grants=GRANT) as other:
        yield asker, other


@pytest.fixture
async def agent(fresh_db: str, roles: tuple[str, str], llm_server: ScriptedLlmServer, tmp_path: Path
                ) -> AsyncIterator[Agent]:
    asker, other = roles
    agent = build_agent(Settings(
        databases={"shop": {"dsn": fresh_db, "max_rows": 10,
                            "roles": {f"slack:{ASKER}": asker, f"slack:{OTHER}": other}}},
        llm={"base_url": llm_server.base_url, "api_key": "k", "max_retries": 0, "tool_mode": "native"},
        limits={"export_dir": str(tmp_path)},
    ))
    yield agent
    await agent.aclose()


async def answered(fake: FakeSlack, app: Any, llm_server: ScriptedLlmServer) -> dict[str, Any]:
    """Ask for every id; return the answer message as a block_actions payload carries it."""
    llm_server.script(llm.tool_call("run_query", {"sql": QUERY}), llm.text("Here are the ids."))
    post, update = await ask(fake, app, "list every id")
    return bot_message(post, update)


async def click(fake: FakeSlack, app: Any, action_id: str, value: str, message: dict[str, Any], user: str) -> None:
    body = block_actions(action_id=action_id, value=value, message=message, user=user)
    assert (await dispatch(app, body, content_type=FORM)).status == 200


def uploaded_csv(fake: FakeSlack, index: int) -> list[list[str]]:
    done = fake.of("files.completeUploadExternal")[index].args
    return list(csv.reader(io.StringIO(fake.uploads[done["files"][0]["id"]].decode())))


async def test_show_sql_answers_only_the_clicker_with_the_sql_laid_out(
    fake_slack: FakeSlack, agent: Agent, llm_server: ScriptedLlmServer
) -> None:
    app = build_slack_app(agent, slack_settings(fake_slack))
    message = await answered(fake_slack, app, llm_server)
    assert [a for a, _ in buttons(message["blocks"])] == [
        "pgbot_edit_sql", "pgbot_show_sql", "pgbot_export", "pgbot_feedback_up", "pgbot_feedback_down"]
    assert not any("SELECT" in t for t in texts(message["blocks"]))  # no SQL between the answer and its data
    answer_id = buttons(message["blocks"])[0][1]
    posts = len(fake_slack.of("chat.postMessage"))

    await click(fake_slack, app, "pgbot_show_sql", answer_id, message, OTHER)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 1)
    note = fake_slack.of("chat.postEphemeral")[0].args
    assert (note["user"], note["channel"], note["thread_ts"]) == (OTHER, CHANNEL, message["thread_ts"])
    assert "```\nSELECT id\n     , CURRENT_USER AS who\nFROM t\nORDER BY id\n```" in texts(note["blocks"])
    await fake_slack.handled()
    assert len(fake_slack.of("chat.postMessage")) == posts  # nothing posted for everyone


async def test_export_runs_as_the_clicker_and_goes_privately_to_anyone_but_the_asker(
    fake_slack: FakeSlack, agent: Agent, llm_server: ScriptedLlmServer, roles: tuple[str, str], tmp_path: Path
) -> None:
    asker_role, other_role = roles
    app = build_slack_app(agent, slack_settings(fake_slack))
    message = await answered(fake_slack, app, llm_server)
    assert "showing 10 of 10+" in texts(message["blocks"])
    export_id = dict(buttons(message["blocks"]))["pgbot_export"]

    # Someone else: the SQL runs as *their* role, and the file goes to them alone, in a direct message.
    await click(fake_slack, app, "pgbot_export", export_id, message, OTHER)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 1)
    assert fake_slack.of("conversations.open")[0].args["users"] == OTHER
    done = fake_slack.of("files.completeUploadExternal")[0].args
    assert done["channel_id"].startswith("D0") and "thread_ts" not in done
    rows = uploaded_csv(fake_slack, 0)
    assert rows[0] == ["id", "who"] and len(rows) == 51  # every row, not the 10 of the chat
    assert {r[1] for r in rows[1:]} == {other_role}  # never the asker's role
    assert f"as role {other_role}" in done["initial_comment"] and str(tmp_path) not in json.dumps(done)
    told = fake_slack.of("chat.postEphemeral")[0].args
    assert told["user"] == OTHER and "direct message" in told["text"]

    # The asker: their own role, and the file in the thread where they asked.
    await click(fake_slack, app, "pgbot_export", export_id, message, ASKER)
    await fake_slack.wait_for(lambda f: len(f.of("files.completeUploadExternal")) == 2)
    done = fake_slack.of("files.completeUploadExternal")[1].args
    assert (done["channel_id"], done["thread_ts"]) == (CHANNEL, message["thread_ts"])
    assert {r[1] for r in uploaded_csv(fake_slack, 1)[1:]} == {asker_role}
    assert len(fake_slack.of("conversations.open")) == 1

    # Someone with no role on the database: refused, privately; nothing runs, nothing is uploaded.
    await click(fake_slack, app, "pgbot_export", export_id, message, STRANGER)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 2)
    refused = fake_slack.of("chat.postEphemeral")[1].args
    assert refused["user"] == STRANGER and "not mapped" in refused["text"]
    await fake_slack.handled()
    assert len(fake_slack.of("files.completeUploadExternal")) == 2
    assert len(list(tmp_path.iterdir())) == 2  # noqa: ASYNC240 - a test reading its own tmp folder


async def test_buttons_of_another_conversation_or_forgotten_answers_are_refused(
    fake_slack: FakeSlack, agent: Agent, llm_server: ScriptedLlmServer
) -> None:
    app = build_slack_app(agent, slack_settings(fake_slack))
    message = await answered(fake_slack, app, llm_server)
    answer_id = buttons(message["blocks"])[0][1]
    elsewhere = {**message, "thread_ts": "1700000000.000001"}  # the same id, clicked from another thread
    await click(fake_slack, app, "pgbot_export", answer_id, elsewhere, ASKER)
    await click(fake_slack, app, "pgbot_show_sql", "0123456789ab", message, ASKER)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 2)
    said = " | ".join(c.args["text"] for c in fake_slack.of("chat.postEphemeral"))
    assert "belongs to another conversation" in said and "no longer remembers" in said
    assert fake_slack.of("files.completeUploadExternal") == []


async def test_a_plain_english_export_ends_as_an_uploaded_file_not_a_path(
    fake_slack: FakeSlack, agent: Agent, llm_server: ScriptedLlmServer, tmp_path: Path
) -> None:
    app = build_slack_app(agent, slack_settings(fake_slack))
    llm_server.script(llm.tool_call("export_csv", {"sql": "SELECT id FROM t"}), llm.text("Your file is attached."))
    post, update = await ask(fake_slack, app, "export all ids")
    await fake_slack.wait_for(lambda f: len(f.of("files.completeUploadExternal")) == 1)
    done = fake_slack.of("files.completeUploadExternal")[0].args
    assert (done["channel_id"], done["thread_ts"]) == (CHANNEL, post.args["thread_ts"])
    assert len(uploaded_csv(fake_slack, 0)) == 51
    everything = json.dumps([c.args for c in fake_slack.calls])
    assert str(tmp_path) not in everything and ".csv" not in json.dumps(update.args)


async def test_an_export_too_big_for_slack_says_so_without_a_path(
    fake_slack: FakeSlack, agent: Agent, llm_server: ScriptedLlmServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from adapters.slack import app as slack_app

    monkeypatch.setattr(slack_app, "MAX_UPLOAD_BYTES", 64)  # the platform limit, scaled down to the test
    app = build_slack_app(agent, slack_settings(fake_slack))
    message = await answered(fake_slack, app, llm_server)
    await click(fake_slack, app, "pgbot_export", buttons(message["blocks"])[0][1], message, ASKER)
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 1)
    text = fake_slack.of("chat.postEphemeral")[0].args["text"]
    assert "over the 64 bytes pgbot uploads to Slack" in text and "narrow the query" in text
    assert str(tmp_path) not in text and fake_slack.of("files.completeUploadExternal") == []
