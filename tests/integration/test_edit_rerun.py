"""Edit and re-run through the real Agent: real Postgres roles and grants (``change_env``), the real Redis
context and approval stores, the scripted model over HTTP for the question being edited and the follow-up.

The edit is a message of its own (``Message.edit_of``): it runs as the editor's role, never the asker's,
through the same guard as ``/sql``; a change becomes a proposal; the thread keeps both versions."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest

from bot.wiring import build_agent
from core import PgbotError, Reply, ReplyKind
from core.agent.loop import Agent
from core.llm.base import ReadScope
from tests import llm_server as llm
from tests.helpers import final_reply, message
from tests.integration.change_env import ANALYST, DBA, OTHER, ChangeEnv, change_env_fixture  # noqa: F401 - fixture
from tests.llm_server import ScriptedLlmServer

ASKED_SQL = "SELECT id, name FROM items WHERE id <= 3 ORDER BY id"
EDITED_SQL = "SELECT id, name, current_user AS who FROM items WHERE id <= 5 ORDER BY id"


def _user(identity: str) -> str:
    return identity.removeprefix("slack:")


async def asked(agent: Agent, llm_server: ScriptedLlmServer, thread: str) -> Reply:
    """The analyst's question, answered by the model with one query: the answer to edit."""
    llm_server.script(llm.tool_call("run_query", {"sql": ASKED_SQL}), llm.text("Items 1 to 3."))
    reply = await final_reply(agent, message("the first three items?", user=_user(ANALYST), thread=thread))
    assert reply.kind is ReplyKind.ANSWER and reply.answer_id and reply.sql == (ASKED_SQL,)
    return reply


async def edit(agent: Agent, text: str, *, answer_id: str, user: str, thread: str) -> Reply:
    return await final_reply(agent, dataclasses.replace(message(text, user=_user(user), thread=thread),
                                                        edit_of=answer_id))


@pytest.fixture
def agent(change_env: ChangeEnv, llm_server: ScriptedLlmServer) -> Agent:
    settings = change_env.settings(llm_url=llm_server.base_url)
    settings = settings.model_copy(update={"accuracy": settings.accuracy.model_copy(
        update={"grounded_answers": False})})  # the scripted one-line answers are not under test here
    built = build_agent(settings, approval_store=change_env.store())
    change_env.agents.append(built)
    return built


async def test_an_edit_runs_as_the_editor_and_the_thread_builds_on_it(
    agent: Agent, change_env: ChangeEnv, llm_server: ScriptedLlmServer
) -> None:
    thread = uuid.uuid4().hex
    original = await asked(agent, llm_server, thread)
    assert original.answer_id is not None
    key = message("", thread=thread).thread_key

    source = await agent.edit_source(thread_key=key, user=OTHER, answer_id=original.answer_id)
    assert (source.answer_id, source.sql) == (original.answer_id, ASKED_SQL)
    assert (await agent.edit_source(thread_key=key, user=OTHER)).answer_id == original.answer_id  # /edit: last

    # Someone else edits: their own role runs it (not the analyst's), as a new answer with its own id.
    reply = await edit(agent, EDITED_SQL, answer_id=original.answer_id, user=OTHER, thread=thread)
    assert reply.kind is ReplyKind.ANSWER and reply.table is not None
    assert reply.answer_id and reply.answer_id != original.answer_id
    assert reply.text == f"Edited SQL of answer {original.answer_id}, run again: 5 rows."
    assert {row[2] for row in reply.table.rows} == {change_env.roles["other"]}
    assert reply.role == change_env.roles["other"] and reply.edit_of == original.answer_id
    record = await agent.accuracy.answers.recall(reply.answer_id)
    assert record is not None and record.asked_by == OTHER and record.table_sql == EDITED_SQL
    assert record.question == "the first three items?"  # a 👍 teaches the question with the edited SQL
    # The edited answer can itself be edited (the window starts from the edited statement).
    again = await agent.edit_source(thread_key=key, user=OTHER)
    assert (again.answer_id, again.sql) == (reply.answer_id, EDITED_SQL)

    # A follow-up by the editor builds on the edited result: the model gets both versions.
    llm_server.script(llm.text("Five items."))
    start = len(llm_server.requests)
    await final_reply(agent, message("and how many is that?", user=_user(OTHER), thread=thread))
    sent = json.dumps(llm_server.requests[start]["messages"])
    assert f"edited SQL of answer {original.answer_id}: {EDITED_SQL}" in sent
    assert change_env.roles["other"] in sent  # the edit's own rows: same scope, shown whole

    # The asker's follow-up sees the edit's statement but not rows read under the editor's role.
    llm_server.script(llm.text("Three items."))
    start = len(llm_server.requests)
    await final_reply(agent, message("and the names?", user=_user(ANALYST), thread=thread))
    sent = json.dumps(llm_server.requests[start]["messages"])
    assert f"edited SQL of answer {original.answer_id}" in sent and "withheld" in sent
    assert f"'{change_env.roles['other']}'" not in sent and f"| {change_env.roles['other']}" not in sent


async def test_an_edited_change_is_a_proposal_of_the_editor_and_two_submissions_are_two(
    agent: Agent, change_env: ChangeEnv, llm_server: ScriptedLlmServer
) -> None:
    thread = uuid.uuid4().hex
    original = await asked(agent, llm_server, thread)
    assert original.answer_id is not None
    change = "UPDATE items SET qty = qty + 1 WHERE id <= 3"
    first = await edit(agent, change, answer_id=original.answer_id, user=ANALYST, thread=thread)
    assert first.kind is ReplyKind.APPROVAL and first.approval is not None
    assert (first.approval.requested_by, first.approval.role) == (ANALYST, change_env.analyst)
    second = await edit(agent, change, answer_id=original.answer_id, user=ANALYST, thread=thread)
    assert second.approval is not None and second.approval.action_id != first.approval.action_id
    assert await change_env.fetchval("SELECT sum(qty) FROM items WHERE id <= 3") == 6  # nothing ran

    outcome = await agent.decide(action_id=first.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.OUTCOME
    assert await change_env.fetchval("SELECT sum(qty) FROM items WHERE id <= 3") == 9
    assert "approved" in await change_env.audit_events(first.approval.action_id)


@pytest.mark.parametrize(("text", "says"), [
    ("SELECT 1; DROP TABLE items", "2 statements"),
    ("SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
    ("SELECT lo_import('/etc/passwd')", "lo_import"),
    ("   ", "The SQL is empty"),
    ("SELECT " + "1 + " * 30_000 + "1", "characters"),
    ("BEGIN", "refused"),
])
async def test_hostile_edits_are_refused_and_run_nothing(
    agent: Agent, change_env: ChangeEnv, llm_server: ScriptedLlmServer, text: str, says: str
) -> None:
    thread = uuid.uuid4().hex
    original = await asked(agent, llm_server, thread)
    assert original.answer_id is not None
    if text.strip() and len(text) < 1000:
        assert agent.check_edit(text, max_chars=3000) is not None  # said in the window already
    reply = await edit(agent, text, answer_id=original.answer_id, user=ANALYST, thread=thread)
    assert reply.kind is ReplyKind.ERROR and says in reply.text, reply.text
    assert reply.answer_id is None and reply.approval is None
    assert await change_env.fetchval("SELECT count(*) FROM items") == 10


async def test_an_edit_of_another_thread_a_forgotten_answer_or_without_a_role_is_refused(
    agent: Agent, change_env: ChangeEnv, llm_server: ScriptedLlmServer
) -> None:
    thread = uuid.uuid4().hex
    original = await asked(agent, llm_server, thread)
    assert original.answer_id is not None
    elsewhere = uuid.uuid4().hex
    reply = await edit(agent, EDITED_SQL, answer_id=original.answer_id, user=ANALYST, thread=elsewhere)
    assert reply.kind is ReplyKind.ERROR and "belongs to another conversation" in reply.text
    with pytest.raises(PgbotError, match="another conversation"):
        await agent.edit_source(thread_key=message("", thread=elsewhere).thread_key, user=ANALYST,
                                answer_id=original.answer_id)

    reply = await edit(agent, EDITED_SQL, answer_id="0123456789ab", user=ANALYST, thread=thread)
    assert reply.kind is ReplyKind.ERROR and "no longer remembers" in reply.text

    key = message("", thread=thread).thread_key
    with pytest.raises(PgbotError, match="not mapped"):
        await agent.edit_source(thread_key=key, user="slack:UNOBODY", answer_id=original.answer_id)
    reply = await edit(agent, EDITED_SQL, answer_id=original.answer_id, user="slack:UNOBODY", thread=thread)
    assert reply.kind is ReplyKind.ERROR and "not mapped" in reply.text

    # A role that may not read what the edit names: Postgres refuses, as the editor.
    reply = await edit(agent, "SELECT secret FROM secrets", answer_id=original.answer_id, user=ANALYST,
                       thread=thread)
    assert reply.kind is ReplyKind.ERROR and "permission" in reply.text.lower()
    # Nothing of the refused edits joined the thread's history.
    history = await agent.store.history(key, viewer=_scope(change_env))
    assert not any("secrets" in (t.content or "") for t in history)


def _scope(change_env: ChangeEnv) -> ReadScope:
    return ReadScope(database="shop", role=change_env.analyst)
