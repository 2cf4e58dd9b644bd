"""Undo of an approved change against real Postgres roles and the real Redis (core.undo).

Each test checks what people are told and what the database holds afterwards.
"""

from __future__ import annotations

import asyncio

from core import Reply, ReplyKind
from core.agent import Agent
from tests.helpers import final_reply, message
from tests.integration.change_env import ANALYST, DBA, LEAD, OTHER, ChangeEnv, change_env_fixture  # noqa: F401 - fixture

THREAD = "t-undo"
WHERE = message("", thread=THREAD).thread_key


async def propose(agent: Agent, sql: str, *, user: str = "UANALYST") -> Reply:
    reply = await final_reply(agent, message(f"/sql {sql}", user=user, thread=THREAD))
    assert reply.kind is ReplyKind.APPROVAL and reply.approval is not None, reply.text
    return reply


async def run_approved(agent: Agent, sql: str) -> Reply:
    reply = await propose(agent, sql)
    assert reply.approval is not None
    outcome = await agent.decide(action_id=reply.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.OUTCOME, outcome.text
    return outcome


async def undo_and_approve(agent: Agent, change_id: str, *, by: str = ANALYST) -> Reply:
    pending = await agent.undo(action_id=change_id, user=by, thread_key=WHERE)
    assert pending.kind is ReplyKind.APPROVAL and pending.approval is not None, pending.text
    done = await agent.decide(action_id=pending.approval.action_id, decided_by=DBA, approve=True)
    assert done.kind is ReplyKind.OUTCOME, done.text
    return done


async def items(env: ChangeEnv) -> dict[int, tuple[str, int]]:
    return {r["id"]: (r["name"], r["qty"]) for r in await env.fetch("SELECT id, name, qty FROM items")}


async def test_update_round_trip(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    before = await items(env)
    reply = await propose(agent, "UPDATE items SET qty = qty * 10, name = upper(name) WHERE id IN (2, 4)")
    assert "Undo: once it runs, pgbot keeps the rows" in reply.text
    assert reply.approval is not None and not any("cannot be undone" in n for n in reply.approval.notes)
    outcome = await agent.decide(action_id=reply.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.OUTCOME and outcome.undo_id == reply.approval.action_id, outcome.text
    assert "UPDATE 2" in outcome.text and "kept the 2 rows it changed" in outcome.text
    assert (await items(env))[2] == ("ITEM 2", 20)
    done = await undo_and_approve(agent, outcome.undo_id or "")
    assert "put back 2 of 2 rows of public.items" in done.text and done.undo_id is None
    assert await items(env) == before
