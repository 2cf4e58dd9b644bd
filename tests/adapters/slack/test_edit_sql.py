"""Edit SQL over Slack: the button click and the modal submission go through bolt's real AsyncApp (signed
requests, as Slack posts them) to the real Agent on real Postgres and Redis, with the scripted model; the
modal is opened with views.open on the fake Slack, which records it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from slack_bolt.async_app import AsyncApp

from adapters.slack import edit
from adapters.slack.app import build_slack_app
from bot.wiring import build_agent
from core import Agent
from tests import llm_server as llm
from tests.adapters.slack.fake_slack import (
    FakeSlack,
    block_actions,
    dispatch,
    new_ts,
    slack_settings,
    view_submission,
)
from tests.adapters.slack.test_app import CHANNEL, FORM, ask, bot_message, buttons, table_rows, texts
from tests.helpers import settings_for
from tests.llm_server import ScriptedLlmServer
from tests.services import throwaway_role

ASKER, OTHER, STRANGER = "U0USER0001", "U0OTHER001", "U0STRANGER"
QUERY = "SELECT id, current_user AS who FROM t WHERE id <= 3 ORDER BY id"
EDITED = "SELECT id, current_user AS who FROM t WHERE id BETWEEN 4 AND 5 ORDER BY id"
GRANT = "GRANT SELECT, UPDATE ON t TO {role}"
TOKEN = "xoxb-1111-2222-test"  # slack_settings' bot token: the modal metadata's key derives from it


@pytest.fixture
async def roles(fresh_db: str, pg_admin_dsn: str) -> AsyncIterator[tuple[str, str]]:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 50) g")
    finally:
        await conn.close()
    async with throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_asker", grants=GRANT) as asker, \
            throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_other", grants=GRANT) as other:
        yield asker, other


@pytest.fixture
async def agent(fresh_db: str, roles: tuple[str, str], llm_server: ScriptedLlmServer, redis_url: str
                ) -> AsyncIterator[Agent]:
    asker, other = roles
    settings = settings_for(fresh_db, llm_url=llm_server.base_url, redis_url=redis_url,
                            roles={f"slack:{ASKER}": asker, f"slack:{OTHER}": other},
                            approvers={"users": [f"slack:{ASKER}"]})
    settings = settings.model_copy(update={"accuracy": settings.accuracy.model_copy(
        update={"grounded_answers": False})})
    built = build_agent(settings)
    yield built
    await built.aclose()


async def answered(fake: FakeSlack, app: AsyncApp, llm_server: ScriptedLlmServer, sql: str = QUERY
                   ) -> dict[str, Any]:
    llm_server.script(llm.tool_call("run_query", {"sql": sql}), llm.text("Here are the ids."))
    post, update = await ask(fake, app, "list the first ids")
    return bot_message(post, update)


async def open_modal(fake: FakeSlack, app: AsyncApp, message: dict[str, Any], user: str) -> dict[str, Any]:
    """Click Edit SQL as ``user``; return the view pgbot opened (as views.open answered it)."""
    value = dict(buttons(message["blocks"]))["pgbot_edit_sql"]
    opened = len(fake.of("views.open"))
    body = block_actions(action_id="pgbot_edit_sql", value=value, message=message, user=user)
    assert (await dispatch(app, body, content_type=FORM)).status == 200
    await fake.wait_for(lambda f: len(f.of("views.open")) > opened)
    call = fake.of("views.open")[-1]
    assert call.args["trigger_id"] == "13345224609.738474920.8088930838d88f008e0"  # the click's own
    view: dict[str, Any] = call.args["view"]
    return view


async def submit(app: AsyncApp, view: dict[str, Any], sql: str, *, user: str) -> dict[str, Any]:
    """Submit the modal; return bolt's acknowledgement ({} when it simply closes the modal)."""
    body = view_submission(view, values={edit.SQL_BLOCK: {edit.SQL_INPUT: sql}}, user=user)
    response = await dispatch(app, body, content_type=FORM)
    assert response.status == 200
    ack: dict[str, Any] = json.loads(response.body) if response.body else {}
    return ack


async def test_edit_opens_a_modal_and_the_submission_answers_in_the_thread_as_the_editor(
    fake_slack: FakeSlack, agent: Agent, llm_server: ScriptedLlmServer, roles: tuple[str, str]
) -> None:
    _, other_role = roles
    app = build_slack_app(agent, slack_settings(fake_slack))
    message = await answered(fake_slack, app, llm_server)
    original_id = dict(buttons(message["blocks"]))["pgbot_edit_sql"]

    view = await open_modal(fake_slack, app, message, OTHER)
    (block,) = view["blocks"]
    assert view["callback_id"] == edit.VIEW and block["block_id"] == edit.SQL_BLOCK
    laid_out = "SELECT id\n     , CURRENT_USER AS who\nFROM t\nWHERE id <= 3\nORDER BY id"
    assert block["element"]["initial_value"] == laid_out
    assert block["element"]["multiline"] is True and block["element"]["max_length"] == 3000
    assert original_id in view["private_metadata"]

    updates = len(fake_slack.of("chat.update"))
    assert await submit(app, view, EDITED, user=OTHER) == {}  # acknowledged: the modal closes
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) > updates)
    post, update = fake_slack.of("chat.postMessage")[-1], fake_slack.of("chat.update")[-1]
    assert (post.args["channel"], post.args["thread_ts"]) == (CHANNEL, message["thread_ts"])
    assert "Working on it" in post.args["text"]
    assert f"Edited SQL of answer {original_id} by someone, run again: 2 rows." in texts(update.args["blocks"])[0]
    assert table_rows(update.args["blocks"])[1:] == [["4", other_role], ["5", other_role]]  # the editor's role
    new_ids = {value for _, value in buttons(update.args["blocks"])}
    assert len(new_ids) == 1 and original_id not in new_ids  # a new answer, with its own buttons
    assert "pgbot_edit_sql" in dict(buttons(update.args["blocks"]))

    # The same modal submitted again: a second run, a second answer (reads are harmless to repeat).
    updates = len(fake_slack.of("chat.update"))
    assert await submit(app, view, EDITED, user=OTHER) == {}
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) > updates)
    again = {value for _, value in buttons(fake_slack.of("chat.update")[-1].args["blocks"])}
    assert again and again != new_ids

    # An edit into a change: a proposal of the editor, with the approval card in the thread.
    updates = len(fake_slack.of("chat.update"))
    assert await submit(app, view, "UPDATE t SET id = id + 100 WHERE id = 1", user=OTHER) == {}
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) > updates)
    card = fake_slack.of("chat.update")[-1].args
    assert [a for a, _ in buttons(card["blocks"])] == ["pgbot_approve", "pgbot_reject"]
    assert f"*Runs as:* {other_role}" in json.dumps(card["blocks"]) and f"<@{OTHER}>" in json.dumps(card["blocks"])


@pytest.mark.parametrize(("sql", "says"), [
    ("", "The SQL is empty"),
    ("SELECT 1; SELECT 2", "2 statements"),
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
    ("SELECT " + "1, " * 1500 + "1", "at most 3,000"),
    ("SELEC oops", "could not parse"),
])
async def test_bad_text_is_said_in_the_modal_and_runs_nothing(
    fake_slack: FakeSlack, agent: Agent, llm_server: ScriptedLlmServer, sql: str, says: str
) -> None:
    app = build_slack_app(agent, slack_settings(fake_slack))
    message = await answered(fake_slack, app, llm_server)
    view = await open_modal(fake_slack, app, message, ASKER)
    calls = len(fake_slack.calls)
    ack = await submit(app, view, sql, user=ASKER)
    assert ack["response_action"] == "errors" and says in ack["errors"][edit.SQL_BLOCK]
    await fake_slack.handled()
    assert len(fake_slack.calls) == calls  # nothing posted, nothing run


async def test_forged_or_foreign_modals_and_clicks_are_refused(
    fake_slack: FakeSlack, agent: Agent, llm_server: ScriptedLlmServer
) -> None:
    app = build_slack_app(agent, slack_settings(fake_slack))
    message = await answered(fake_slack, app, llm_server)
    view = await open_modal(fake_slack, app, message, ASKER)
    calls = len(fake_slack.calls)

    # Metadata pointing at another answer or thread, without pgbot's signature: refused in the modal.
    meta = json.loads(view["private_metadata"])
    for forged in ({**meta, "a": "0123456789ab"}, {**meta, "t": new_ts()}, {**meta, "s": "0" * 64}, "not json"):
        raw = forged if isinstance(forged, str) else json.dumps(forged)
        ack = await submit(app, {**view, "private_metadata": raw}, EDITED, user=ASKER)
        assert ack["errors"][edit.SQL_BLOCK] == edit.TAMPERED
    # Someone else submitting the asker's window (a replayed payload): refused too.
    assert (await submit(app, view, EDITED, user=OTHER))["errors"][edit.SQL_BLOCK] == edit.TAMPERED
    await fake_slack.handled()
    assert len(fake_slack.calls) == calls

    # Signed by pgbot (the key from the bot token) but for an answer of another thread: core refuses it.
    elsewhere = edit.Place(answer_id=meta["a"], team=meta["w"], channel=CHANNEL, thread_ts=new_ts(), user=ASKER)
    signed = edit.sign(elsewhere, key=edit.signing_key(TOKEN))
    updates = len(fake_slack.of("chat.update"))
    assert await submit(app, {**view, "private_metadata": signed}, EDITED, user=ASKER) == {}
    await fake_slack.wait_for(lambda f: len(f.of("chat.update")) > updates)
    assert "belongs to another conversation" in fake_slack.of("chat.update")[-1].args["text"]
    assert fake_slack.of("chat.postMessage")[-1].args["thread_ts"] == elsewhere.thread_ts

    # A channel pgbot no longer serves (config changed since the modal opened): refused in the modal.
    narrowed = build_slack_app(agent, slack_settings(fake_slack, allowed_channels=["C0ELSEWHERE"]))
    ack = await submit(narrowed, view, EDITED, user=ASKER)
    assert ack["errors"][edit.SQL_BLOCK] == edit.NOT_HERE

    # No mapped role: no modal, a private note; a button moved to another thread: the same.
    opened = len(fake_slack.of("views.open"))
    value = dict(buttons(message["blocks"]))["pgbot_edit_sql"]
    for user, msg in ((STRANGER, message), (ASKER, {**message, "thread_ts": new_ts()})):
        body = block_actions(action_id="pgbot_edit_sql", value=value, message=msg, user=user)
        assert (await dispatch(app, body, content_type=FORM)).status == 200
    await fake_slack.wait_for(lambda f: len(f.of("chat.postEphemeral")) == 2)
    told = [c.args for c in fake_slack.of("chat.postEphemeral")]
    assert told[0]["user"] == STRANGER and "not mapped" in told[0]["text"]
    assert "belongs to another conversation" in told[1]["text"]
    assert len(fake_slack.of("views.open")) == opened


async def test_sql_too_long_for_the_modal_gets_no_button_but_a_note(
    fake_slack: FakeSlack, agent: Agent, llm_server: ScriptedLlmServer
) -> None:
    app = build_slack_app(agent, slack_settings(fake_slack))
    long_sql = "SELECT id FROM t WHERE id IN (" + ", ".join(str(n) for n in range(1, 900)) + ") ORDER BY id"
    assert len(long_sql) > 3000
    message = await answered(fake_slack, app, llm_server, sql=long_sql)
    assert "pgbot_edit_sql" not in dict(buttons(message["blocks"]))
    assert any("too long to edit here; use /sql" in t for t in texts(message["blocks"]))
