"""Approvals with platform groups, platform-neutral (core only): the requester's groups are stored with the
request and re-checked at approval, the decider's groups come with the click."""

from __future__ import annotations

import uuid

from core import Message, ReplyKind
from tests.helpers import final_reply
from tests.integration.change_env import ChangeEnv, change_env_fixture  # noqa: F401 - fixture

ENGINEERS, DBAS = "discord-role:1", "discord-role:2"
REQUESTER, APPROVER = "discord:8", "discord:9"


def request(sql: str) -> Message:
    return Message(platform="discord", workspace="G1", channel="C1", thread=uuid.uuid4().hex, user="8",
                   text=f"/sql {sql}", groups=(ENGINEERS,))


async def test_groups_carry_through_request_and_approval(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent(env.settings(roles={ENGINEERS: env.analyst, DBAS: env.dba}, approvers={"roles": [env.dba]}))
    asked = await final_reply(agent, request("UPDATE items SET qty = 0 WHERE id = 1"))
    assert asked.kind is ReplyKind.APPROVAL and asked.approval is not None
    assert asked.approval.role == env.analyst  # the requester's group chose the role
    action_id = asked.approval.action_id

    nobody = await agent.decide(action_id=action_id, decided_by=APPROVER, approve=True)  # no groups: no role
    assert nobody.kind is ReplyKind.ERROR and "you are not an approver" in nobody.text
    done = await agent.decide(action_id=action_id, decided_by=APPROVER, approve=True, groups=(DBAS,))
    assert done.kind is ReplyKind.OUTCOME, done.text
    assert f"executed as role {env.analyst}" in done.text  # stored groups: the requester still maps to analyst
    assert await env.fetchval("SELECT qty FROM items WHERE id = 1") == 0

    async def unknown(identity: str) -> tuple[str, ...] | None:
        return None  # the adapter cannot tell: the stored groups stand

    kept = await final_reply(agent, request("UPDATE items SET qty = 0 WHERE id = 2"))
    assert kept.approval is not None
    ran = await agent.decide(action_id=kept.approval.action_id, decided_by=APPROVER, approve=True, groups=(DBAS,),
                             current_groups=unknown)
    assert ran.kind is ReplyKind.OUTCOME, ran.text

    async def promoted(identity: str) -> tuple[str, ...] | None:
        assert identity == REQUESTER
        return (DBAS,)  # the requester's group changed since the request

    moved = await final_reply(agent, request("UPDATE items SET qty = 0 WHERE id = 3"))
    assert moved.approval is not None
    refused = await agent.decide(action_id=moved.approval.action_id, decided_by=APPROVER, approve=True,
                                 groups=(DBAS,), current_groups=promoted)
    assert refused.kind is ReplyKind.ERROR
    assert (f"{REQUESTER} now maps to role {env.dba}, not role {env.analyst} as when the change was requested"
            in refused.text)
    assert await env.fetchval("SELECT qty FROM items WHERE id = 3") == 3
    assert await env.audit_events(moved.approval.action_id) == ["requested", "failed"]
