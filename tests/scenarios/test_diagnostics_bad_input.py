"""Hostile or mistaken index and EXPLAIN requests from the model: clear hints or refusals, nothing built."""

from __future__ import annotations

from core import ReplyKind
from tests import llm_server as llm
from tests.helpers import final_reply, message
from tests.integration.change_env import ANALYST, ChangeEnv, change_env_fixture  # noqa: F401 - fixture

USER = ANALYST.split(":")[1]


def tool_results(server: llm.ScriptedLlmServer, request: int) -> list[str]:
    return [str(m.get("content")) for m in server.requests[request]["messages"] if m.get("role") == "tool"]


async def test_bad_index_requests_get_hints_and_a_non_owner_is_refused(
        change_env: ChangeEnv, llm_server: llm.ScriptedLlmServer) -> None:
    llm_server.script(
        llm.tool_call("propose_index", {"table": "items", "columns": ["nope"]}),
        llm.tool_call("propose_index", {"table": "no_such_table", "columns": ["id"]}),
        llm.tool_call("propose_index", {"table": "items", "columns": ["id"]}),
        llm.tool_call("explain_query", {"sql": "DELETE FROM items", "analyze": True}),
        llm.tool_call("explain_query", {"sql": "SELECT 1; DROP TABLE items"}),
        llm.text("Done."),
    )
    agent = change_env.llm_agent(llm_server.base_url)
    reply = await final_reply(agent, message("index items please, and explain", user=USER))
    assert reply.kind is ReplyKind.ANSWER, reply.text
    seen = tool_results(llm_server, 5)
    assert "has no column nope" in seen[0] and "id, name, qty, created_by" in seen[0]
    assert "no table named 'no_such_table'" in seen[1]
    assert "already has index items_pkey" in seen[2] and "Nothing to build" in seen[2]
    assert "pgbot refuses it" in seen[3] and "plain EXPLAIN instead" in seen[3]
    assert seen[4].startswith("ERROR: Refused:") and "2 statements" in seen[4]
    assert await change_env.fetchval("SELECT count(*) FROM items") == 10

    # The analyst's role does not own items: Postgres would refuse the build, so it is never proposed.
    llm_server.script(llm.tool_call("propose_index", {"table": "items", "columns": ["qty"]}))
    refused = await final_reply(agent, message("index items.qty", user=USER))
    assert refused.kind is ReplyKind.ERROR and "only the owner of public.items" in refused.text
    assert await change_env.redis_keys() == []
