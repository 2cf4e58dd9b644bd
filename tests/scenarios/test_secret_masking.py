"""Passwords in SQL never come back to the model or to people (issue 13): the model proposes a statement with a
password; the card shows it masked, the thread's history (Redis) keeps it masked, and the next turn sends the
model no password, while the hash still covers the real statement that an approval would run."""

from __future__ import annotations

import json
import uuid

import redis.asyncio as aioredis

from core import ReplyKind
from core.approvals.pending import sql_hash
from tests import llm_server as llm
from tests.helpers import final_reply, message
from tests.integration.change_env import ChangeEnv, change_env_fixture  # noqa: F401 - fixture
from tests.services import delete_keys

SECRET = "Hist-S3cret-42"


async def test_a_password_the_model_wrote_is_masked_in_history_and_never_sent_back(
        change_env: ChangeEnv, llm_server: llm.ScriptedLlmServer) -> None:
    env = change_env
    sql = (f"ALTER ROLE pgbot_nobody ENCRYPTED PASSWORD '{SECRET}';\n"
           f"-- and a connection string: SELECT dblink_connect('host=db password={SECRET}')")
    llm_server.script(llm.tool_call("propose_change", {"sql": sql}), llm.text("Waiting for approval."))
    agent = env.llm_agent(llm_server.base_url)
    thread = f"scenario-secret-{uuid.uuid4().hex}"
    proposal = await final_reply(agent, message("rotate the password of pgbot_nobody", user="UDBA", thread=thread))
    assert proposal.kind is ReplyKind.APPROVAL and proposal.approval is not None
    assert SECRET not in json.dumps(proposal.to_json()) and "PASSWORD '********'" in proposal.approval.sql
    assert proposal.approval.sql_hash == sql_hash(sql)  # what an approval checks and runs is the real text
    assert any("shown as ********" in note for note in proposal.approval.notes)

    await final_reply(agent, message("what did you propose?", user="UDBA", thread=thread))
    sent = json.dumps(llm_server.requests[-1]["messages"])
    assert "ALTER ROLE pgbot_nobody ENCRYPTED PASSWORD" in sent and SECRET not in sent
    client = aioredis.Redis.from_url(env.redis_url, decode_responses=True)
    try:  # what is stored, before any per-viewer filtering: the password never reached Redis
        stored = await client.lrange(f"pgbot:ctx:slack:T1:C1:{thread}:history", 0, -1)
        assert stored and "PASSWORD '********'" in "".join(stored) and SECRET not in "".join(stored)
    finally:
        await client.aclose()
        await delete_keys(env.redis_url, f"pgbot:ctx:slack:T1:C1:{thread}:*")
