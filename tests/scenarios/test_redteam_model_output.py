"""Red team: model output is hostile (it repeats what rows and people tell it). Through the real Agent over the
scripted HTTP model and real Postgres.

* SQL written as text (a bare statement, an unlabelled ``` block) is recognised with the Postgres parser; a
  50 KB ``SELECT 1+1+…`` overflowed libpg_query's C stack there, killing the whole bot with a segfault (the
  guard's size check was only applied later, to calls).
* A tool call whose arguments nest JSON deeper than Python's recursion limit failed the turn with an internal
  error when its arguments were masked for history.
"""

from __future__ import annotations

import asyncio
import sys

from bot.wiring import build_agent
from core import ReplyKind
from core.llm.base import ChatTurn, ReadScope, ToolCall
from core.threads.history_scope import visible_history
from tests import llm_server as llm
from tests.helpers import REPO_ROOT, final_reply, load_shop, message, settings_for

# One turn in a child process: a segfault must show as the child's exit code, not kill the test run.
CHILD = """
import asyncio, sys
from bot.wiring import build_agent
from tests.helpers import final_reply, message, settings_for

async def main() -> None:
    agent = build_agent(settings_for(sys.argv[1], llm_url=sys.argv[2]))
    try:
        reply = await final_reply(agent, message("how many customers?"))
    finally:
        await agent.aclose()
    print("REPLY", reply.kind.value, flush=True)

asyncio.run(main())
"""
DEEP_SQL = "SELECT " + "1+" * 24_990 + "1"  # under MAX_REPAIR_CHARS, about 25,000 levels deep


async def test_deep_sql_written_as_text_is_not_parsed_into_a_crash(fresh_db: str,
                                                                   llm_server: llm.ScriptedLlmServer) -> None:
    await load_shop(fresh_db)
    for written in (DEEP_SQL, f"```\n{DEEP_SQL}\n```"):
        llm_server.script(llm.text(written), llm.text("I cannot count them."), llm.text("I cannot count them."))
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, fresh_db, llm_server.base_url, cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(child.communicate(), timeout=60)
        assert child.returncode == 0, (child.returncode, out[-2000:])
        assert b"REPLY " in out


async def test_deeply_nested_tool_arguments_do_not_fail_the_turn(fresh_db: str,
                                                                 llm_server: llm.ScriptedLlmServer) -> None:
    await load_shop(fresh_db)
    deep = '{"sql": "SELECT count(*) AS n FROM customers", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    llm_server.script(llm.tool_call("run_query", deep),
                      llm.tool_call("run_query", {"sql": "SELECT count(*) AS n FROM customers"}),
                      llm.text("There are 20 customers."))
    agent = build_agent(settings_for(fresh_db, llm_url=llm_server.base_url))
    try:
        reply = await final_reply(agent, message("how many customers?", thread="deep-json"))
        again = await final_reply(agent, message("and now?", thread="deep-json", user="U2"))
    finally:
        await agent.aclose()
    assert reply.kind is ReplyKind.ANSWER and "20" in reply.text, reply.text
    assert again.kind is not ReplyKind.ERROR or "Internal error" not in again.text, again.text


def test_deep_tool_arguments_from_another_scope_are_withheld_not_raised() -> None:
    deep = '{"sql": "SELECT 1", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    turn = ChatTurn(role="assistant", content="", tool_calls=(ToolCall(id="c1", name="run_query", arguments=deep),),
                    read_as=(ReadScope(database="shop", role="dba"),))
    shown = visible_history([turn], ReadScope(database="shop", role="analyst"))
    assert shown[0].tool_calls[0].arguments == "{}"
