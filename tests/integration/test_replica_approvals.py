"""Approvals stay exactly once across replicas: two Agents (separate Redis connections, separate pools) share
one Redis, and approvers click on both at the same moment."""

from __future__ import annotations

import asyncio

from core import ReplyKind
from tests.helpers import final_reply, message
from tests.integration.change_env import DBA, LEAD, ChangeEnv, change_env_fixture  # noqa: F401 - fixture


async def test_concurrent_approvals_on_two_replicas_run_the_change_once(change_env: ChangeEnv) -> None:
    env = change_env
    proposer, other = env.agent(), env.agent()
    reply = await final_reply(proposer, message("/sql DELETE FROM items WHERE id <= 4", user="UANALYST"))
    assert reply.kind is ReplyKind.APPROVAL and reply.approval is not None
    action = reply.approval.action_id
    clicks = [agent.decide(action_id=action, decided_by=who, approve=True)
              for _ in range(10) for agent in (proposer, other) for who in (DBA, LEAD)]
    outcomes = await asyncio.gather(*clicks)
    executed = [o for o in outcomes if o.kind is ReplyKind.OUTCOME]
    assert len(executed) == 1, [o.text for o in outcomes]
    refused = [o for o in outcomes if o.kind is ReplyKind.ERROR]
    assert len(refused) == 39 and all("already approved" in o.text for o in refused)
    assert await env.fetchval("SELECT count(*) FROM items") == 6  # deleted once: 10 - 4
    assert await env.audit_events(action) == ["requested", "approved", "executed"]
