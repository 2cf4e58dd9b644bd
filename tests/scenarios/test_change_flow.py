"""A change from request to outcome through ``Agent.handle`` and ``Agent.decide`` (real Postgres, Redis, HTTP)."""

from __future__ import annotations

from core import ReplyKind
from tests import llm_server as llm
from tests.helpers import final_reply, message
from tests.integration.change_env import DBA, ChangeEnv, change_env_fixture  # noqa: F401 - fixture


async def test_slash_sql_delete_waits_for_approval_then_runs(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    thread = "scenario-delete"
    replies = [r async for r in agent.handle(message("/sql DELETE FROM items WHERE qty > 8", user="UANALYST",
                                                     thread=thread))]
    assert [r.kind for r in replies] == [ReplyKind.WORKING, ReplyKind.APPROVAL]
    proposal = replies[-1]
    assert proposal.approval is not None
    assert proposal.approval.sql == "DELETE FROM items WHERE qty > 8"
    assert proposal.approval.database == "shop" and proposal.database == "shop"
    assert "would affect 2 rows" in proposal.text and "ROW EXCLUSIVE" in proposal.text
    assert "Nothing has run yet" in proposal.text
    assert await env.fetchval("SELECT count(*) FROM items") == 10

    # A read in the same thread meanwhile still works and sees the rows.
    read = await final_reply(agent, message("/sql SELECT count(*) FROM items", user="UANALYST", thread=thread))
    assert read.table is not None and read.table.rows == ((10,),)

    outcome = await agent.decide(action_id=proposal.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.OUTCOME
    assert outcome.text.startswith(f"Change {proposal.approval.action_id} was approved by {DBA} and executed")
    assert "DELETE 2" in outcome.text and outcome.sql == (proposal.approval.sql,)
    assert await env.fetchval("SELECT count(*) FROM items") == 8
    assert await env.audit_events(proposal.approval.action_id) == ["requested", "approved", "executed"]


async def test_model_proposes_a_change_and_the_follow_up_knows_the_outcome(
        change_env: ChangeEnv, llm_server: llm.ScriptedLlmServer) -> None:
    env = change_env
    sql = "UPDATE items SET qty = 0 WHERE id = 5"
    llm_server.script(
        llm.tool_call("propose_change", {"sql": sql}),
        llm.text("Item 5 now has qty 0."),
    )
    agent = env.llm_agent(llm_server.base_url)
    thread = "scenario-model-change"
    proposal = await final_reply(agent, message("set item 5's qty to zero", user="UANALYST", thread=thread))
    assert proposal.kind is ReplyKind.APPROVAL and proposal.approval is not None
    assert proposal.approval.sql == sql and "would affect 1 row " in proposal.text
    assert len(llm_server.requests) == 1  # approval is a pause: the model is not called again until asked
    assert "propose_change" in {t["function"]["name"] for t in llm_server.requests[0]["tools"]}

    outcome = await agent.decide(action_id=proposal.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.OUTCOME and "UPDATE 1" in outcome.text
    assert await env.fetchval("SELECT qty FROM items WHERE id = 5") == 0

    answer = await final_reply(agent, message("did it work?", user="UANALYST", thread=thread))
    assert answer.kind is ReplyKind.ANSWER
    sent = [m.get("content") or "" for m in llm_server.requests[1]["messages"]]
    assert any("was approved by slack:UDBA and executed" in c and "UPDATE 1" in c for c in sent), sent
    assert any("Nothing has run yet" in c for c in sent)  # the tool result the model saw at proposal time
