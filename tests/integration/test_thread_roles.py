"""Two people, two real Postgres roles, one thread: rows a DBA read never reach the model in a colleague's turn.

Real Postgres roles and grants (``change_env``), the real Redis context store and the in-memory one (same
contract), the real OpenAI client against the scripted model server, which records every request body.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.wiring import build_agent
from core import Reply, ReplyKind, Settings
from core.agent.loop import Agent
from core.threads.context import MemoryContextStore
from tests import llm_server as llm
from tests.helpers import final_reply, message
from tests.integration.change_env import ANALYST, DBA, ChangeEnv, change_env_fixture  # noqa: F401 - fixture
from tests.llm_server import ScriptedLlmServer

SALARIES = ("123456", "98765")
READ_SALARIES = "SELECT name, salary FROM salaries ORDER BY name"
MakeAgent = Callable[..., Agent]


@pytest.fixture
async def env(change_env: ChangeEnv) -> ChangeEnv:
    """``change_env`` plus a table only the DBA role may read (the analyst reads ``items`` only)."""
    conn = await asyncpg.connect(change_env.dsn)
    try:
        await conn.execute(
            "CREATE TABLE salaries (name text PRIMARY KEY, salary int NOT NULL);"
            f"INSERT INTO salaries VALUES ('Alice', {SALARIES[0]}), ('Bob', {SALARIES[1]});"
            f'GRANT SELECT ON salaries TO "{change_env.dba}"'
        )
    finally:
        await conn.close()
    return change_env


@pytest.fixture(params=["redis", "memory"])
async def make_agent(request: pytest.FixtureRequest, env: ChangeEnv,
                     llm_server: ScriptedLlmServer) -> AsyncIterator[MakeAgent]:
    """The production wiring with the model server; thread history in Redis or in memory."""

    def make(settings: Settings | None = None) -> Agent:
        settings = settings or env.settings(llm_url=llm_server.base_url)
        # What is under test is what reaches the model, not whether an answer's numbers are grounded
        # (core.agent.grounding would send these scripted one-line answers back for another try).
        settings = settings.model_copy(update={"accuracy": settings.accuracy.model_copy(
            update={"grounded_answers": False})})
        store = MemoryContextStore() if request.param == "memory" else None
        agent = build_agent(settings, approval_store=env.store(), store=store)
        env.agents.append(agent)  # closed by change_env
        return agent

    yield make


async def turn(agent: Agent, llm_server: ScriptedLlmServer, text: str, *, user: str, thread: str,
               script: tuple[llm.Scripted, ...] = ()) -> tuple[Reply, list[str]]:
    """One message; the reply and every request body the model server got during it, as sent (JSON text)."""
    llm_server.script(*script)
    start = len(llm_server.requests)
    reply = await final_reply(agent, message(text, user=user.removeprefix("slack:"), thread=thread))
    assert llm_server.pending == 0, "the turn asked the model fewer times than scripted"
    return reply, [json.dumps(body, ensure_ascii=False) for body in llm_server.requests[start:]]


def leaks(bodies: list[str]) -> bool:
    return any(value in body for body in bodies for value in SALARIES)


def messages(body: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(body)["messages"]
    return found


async def dba_reads_salaries(agent: Agent, llm_server: ScriptedLlmServer, thread: str) -> None:
    reply, bodies = await turn(agent, llm_server, "what are the salaries?", user=DBA, thread=thread, script=(
        llm.tool_call("run_query", {"sql": READ_SALARIES}),
        llm.text(f"Alice earns {SALARIES[0]} and Bob {SALARIES[1]}."),
    ))
    assert reply.kind is ReplyKind.ANSWER and reply.table is not None
    assert leaks(bodies[1:])  # the DBA's own turn does see the rows: the test would prove nothing otherwise


async def test_a_colleagues_follow_up_never_sends_the_dbas_rows(
        make_agent: MakeAgent, llm_server: ScriptedLlmServer) -> None:
    agent, thread = make_agent(), uuid.uuid4().hex
    await dba_reads_salaries(agent, llm_server, thread)
    dba_sql = await final_reply(agent, message(f"/sql {READ_SALARIES}", user="UDBA", thread=thread))
    assert dba_sql.table is not None and dba_sql.table.rows[0] == ("Alice", int(SALARIES[0]))

    reply, bodies = await turn(agent, llm_server, "and how many items are there?", user=ANALYST, thread=thread,
                               script=(llm.text("10 items."),))
    assert reply.kind is ReplyKind.ANSWER and not leaks(bodies)
    sent = messages(bodies[0])
    users = [llm.question_of(m["content"]) for m in sent if m["role"] == "user"]
    assert users == ["what are the salaries?", f"/sql {READ_SALARIES}", "and how many items are there?"]
    calls = [c["function"]["arguments"] for m in sent for c in m.get("tool_calls", [])]
    assert calls == [json.dumps({"sql": READ_SALARIES})]  # the SQL stays for follow-ups (no literals in it)
    assert any("withheld: run it again to see what your role can read" in m["content"] for m in sent)

    # The DBA's own follow-up still has its rows; the analyst's answer is withheld from the DBA in turn.
    _, own = await turn(agent, llm_server, "and the total?", user=DBA, thread=thread, script=(llm.text("222221"),))
    assert leaks(own) and "10 items." not in own[0]


async def test_the_model_cannot_carry_rows_out_through_sql_a_clarification_or_an_answer(
        make_agent: MakeAgent, llm_server: ScriptedLlmServer) -> None:
    agent, thread = make_agent(), uuid.uuid4().hex
    smuggle = f"SELECT 'Alice {SALARIES[0]}' AS note /* Bob {SALARIES[1]} */"
    reply, bodies = await turn(agent, llm_server, "who earns what?", user=DBA, thread=thread, script=(
        llm.tool_call("run_query", {"sql": READ_SALARIES}),
        llm.tool_call("run_query", {"sql": smuggle}),
        llm.tool_call("ask_clarification", {"question": f"Alice has {SALARIES[0]}, Bob {SALARIES[1]}: which?"}),
    ))
    assert reply.kind is ReplyKind.INFO and SALARIES[0] in reply.text and leaks(bodies[1:])

    reply, bodies = await turn(agent, llm_server, "both please", user=ANALYST, thread=thread,
                               script=(llm.text("Sorry, I cannot see that."),))
    assert not leaks(bodies)
    calls = [c["function"] for m in messages(bodies[0]) for c in m.get("tool_calls", [])]
    assert [c["name"] for c in calls] == ["run_query", "run_query", "ask_clarification"]
    assert json.loads(calls[1]["arguments"]) == {"sql": "SELECT $1 AS note"}
    assert json.loads(calls[2]["arguments"]) == {}


async def test_the_same_person_after_their_mapping_changed_counts_as_another_role(
        env: ChangeEnv, make_agent: MakeAgent, llm_server: ScriptedLlmServer) -> None:
    agent, thread = make_agent(), uuid.uuid4().hex
    await dba_reads_salaries(agent, llm_server, thread)
    roles = agent.databases.get("shop").settings.roles
    assert roles is not None
    roles[DBA] = env.analyst  # an admin moved them to the read-only role between two messages
    _, bodies = await turn(agent, llm_server, "and again?", user=DBA, thread=thread, script=(llm.text("ok"),))
    assert not leaks(bodies)


async def test_the_same_role_name_on_another_database_is_another_scope(
        env: ChangeEnv, make_agent: MakeAgent, llm_server: ScriptedLlmServer) -> None:
    settings = env.settings(llm_url=llm_server.base_url)
    settings.databases["mirror"] = settings.databases["shop"].model_copy(deep=True)  # same roles, same names
    agent, thread = make_agent(settings), uuid.uuid4().hex
    await dba_reads_salaries(agent, llm_server, thread)
    switched = await final_reply(agent, message("/db mirror", user="UDBA", thread=thread))
    assert switched.kind is not ReplyKind.ERROR, switched.text
    export = await final_reply(agent, message("/export", user="UDBA", thread=thread))
    assert export.kind is ReplyKind.ERROR and "was on database 'shop'" in export.text  # not run on 'mirror'
    _, bodies = await turn(agent, llm_server, "and here?", user=DBA, thread=thread, script=(llm.text("ok"),))
    assert not leaks(bodies)


async def test_export_alone_reruns_the_last_answer_as_the_senders_role(
        env: ChangeEnv, make_agent: MakeAgent, llm_server: ScriptedLlmServer, tmp_path: Path) -> None:
    settings = env.settings(llm_url=llm_server.base_url)
    settings.limits.export_dir = tmp_path
    agent, thread = make_agent(settings), uuid.uuid4().hex
    await dba_reads_salaries(agent, llm_server, thread)

    refused = await final_reply(agent, message("/export", user="UANALYST", thread=thread))
    assert refused.kind is ReplyKind.ERROR and "permission denied for table salaries" in refused.text
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []  # no file, not even an empty one
    exported = await final_reply(agent, message("/export", user="UDBA", thread=thread))
    assert exported.kind is ReplyKind.RESULT, exported.text
    assert SALARIES[0] in await asyncio.to_thread(exported.export.path.read_text)

    # The DBA's export reply joined the history: the analyst's next turn gets none of it either.
    _, bodies = await turn(agent, llm_server, "what did that say?", user=ANALYST, thread=thread,
                           script=(llm.text("nothing"),))
    assert not leaks(bodies)


async def test_a_turn_that_switched_database_mid_way_is_withheld_on_both(
        env: ChangeEnv, make_agent: MakeAgent, llm_server: ScriptedLlmServer) -> None:
    settings = env.settings(llm_url=llm_server.base_url)
    settings.databases["mirror"] = settings.databases["shop"].model_copy(deep=True)
    agent, thread = make_agent(settings), uuid.uuid4().hex
    reply, _ = await turn(agent, llm_server, "salaries, then move to mirror", user=DBA, thread=thread, script=(
        llm.tool_call("run_query", {"sql": READ_SALARIES}),
        llm.tool_call("switch_database", {"name": "mirror"}),
        llm.text(f"Alice earns {SALARIES[0]}; this thread now uses mirror."),
    ))
    assert reply.kind is ReplyKind.ANSWER and reply.database == "mirror"
    _, on_mirror = await turn(agent, llm_server, "and here?", user=DBA, thread=thread, script=(llm.text("ok"),))
    assert not leaks(on_mirror)  # the answer mixed shop's rows into mirror's turn: nobody's own scope
    await final_reply(agent, message("/db shop", user="UDBA", thread=thread))
    _, on_shop = await turn(agent, llm_server, "back on shop?", user=DBA, thread=thread, script=(llm.text("ok"),))
    sent = messages(on_shop[0])
    assert any(SALARIES[0] in m["content"] for m in sent if m["role"] == "tool")  # read on shop: its own again
    assert not any(SALARIES[0] in m["content"] for m in sent if m["role"] == "assistant")
