"""A two-person Discord thread through discord.py, the real agent, real Postgres roles, Redis and the model
server: rows the DBA read never reach the model in the read-only colleague's turn."""

from __future__ import annotations

import json

from bot.wiring import build_agent
from tests import llm_server as llm
from tests.adapters.discord.conftest import ClientFactory
from tests.adapters.discord.fake_discord import USER_ID, FakeDiscord, message_create, user
from tests.adapters.discord.test_bot import mention
from tests.integration.change_env import ChangeEnv, change_env_fixture  # noqa: F401 - fixture
from tests.llm_server import ScriptedLlmServer

EVE = user("1200000000000000555", "eve")  # read-only colleague; the mentioning user (alice) is the DBA
SECRET = "launch codes"  # change_env's secrets table: the DBA role reads it, the analyst role does not


async def test_a_colleague_in_the_same_thread_never_gets_the_dbas_rows_sent_to_the_model(
    fake_discord: FakeDiscord, make_client: ClientFactory, change_env: ChangeEnv, llm_server: ScriptedLlmServer
) -> None:
    env = change_env
    roles = {f"discord:{USER_ID}": env.dba, f"discord:{EVE['id']}": env.analyst}
    agent = build_agent(env.settings(llm_url=llm_server.base_url, roles=roles), approval_store=env.store())
    env.agents.append(agent)
    client = await make_client(agent)

    llm_server.script(llm.tool_call("run_query", {"sql": "SELECT secret FROM secrets"}),
                      llm.text(f"The secret is {SECRET}."))
    _, thread, _, answer = await mention(fake_discord, client, "what is the secret?")
    assert answer.json["content"] == f"The secret is {SECRET}."
    assert SECRET in json.dumps(llm_server.requests[1])

    llm_server.script(llm.text("I cannot tell."))
    client._connection.parse_message_create(
        message_create("so what is it?", channel_id=thread.response["id"], author=EVE))
    await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 2)
    # The answer, then its context line (database · role), which names no data.
    assert fake_discord.of("PATCH", "channels")[-1].json["content"].splitlines()[0] == "I cannot tell."
    follow_up = json.dumps(llm_server.requests[2])
    assert SECRET not in follow_up
    assert "what is the secret?" in follow_up and "SELECT secret FROM secrets" in follow_up
