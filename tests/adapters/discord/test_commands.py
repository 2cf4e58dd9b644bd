"""``/pgbot ask``: registered with Discord at start-up, answered from a real INTERACTION_CREATE (type 2) through
discord.py's CommandTree: deferred at once, the deferred response edited into the answer, a thread opened."""

from __future__ import annotations

from tests import llm_server as llm
from tests.adapters.discord.conftest import AgentFactory, ClientFactory
from tests.adapters.discord.fake_discord import (
    APP_ID,
    BOT_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    USER_ID,
    FakeDiscord,
    message_create,
    missing_permissions,
    result_text,
    text_channel,
    thread_channel,
    user,
)
from tests.adapters.discord.test_bot import custom_ids
from tests.llm_server import ScriptedLlmServer

ALICE = user(USER_ID, "alice")


async def test_the_command_is_registered_at_login(fake_discord: FakeDiscord, make_client: ClientFactory,
                                                   stack: AgentFactory) -> None:
    await make_client(stack())
    (put,) = fake_discord.of("PUT", "applications", APP_ID, "commands")
    (group,) = put.json
    assert (group["name"], group["type"]) == ("pgbot", 1)
    (ask,) = group["options"]
    assert (ask["name"], ask["type"]) == ("ask", 1)  # a subcommand
    (question,) = ask["options"]
    assert question["name"] == "question" and question["type"] == 3 and question["required"] is True
    assert (question["min_length"], question["max_length"]) == (1, 2000)


async def test_ask_in_a_channel_answers_then_opens_a_thread_that_continues_without_mentions(
    fake_discord: FakeDiscord, make_client: ClientFactory, stack: AgentFactory, llm_server: ScriptedLlmServer
) -> None:
    client = await make_client(stack())
    llm_server.script(llm.tool_call("run_query", {"sql": "SELECT count(*) AS n FROM items"}), llm.text("300 items."))
    command = fake_discord.command("how many items?", channel=text_channel(), invoker=ALICE)
    client._connection.parse_interaction_create(command)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "channels")) == 1)

    callback = fake_discord.of("POST", "interactions", command["id"])[0]
    assert callback.json == {"type": 5}  # deferred, public: "pgbot is thinking…"
    original = fake_discord.of("GET", "webhooks", APP_ID, command["token"], "messages", "@original")[0].response
    (answer,) = fake_discord.of("PATCH", "webhooks", APP_ID, command["token"], "messages", "@original")
    assert answer.json["content"] == "300 items."
    assert result_text(answer.json).startswith("n: 300\nshop · 1 row · ")
    assert [c.split(":")[1:3] for c in custom_ids(answer.json)][1:-1] == [["fb", "up"], ["fb", "down"]]
    assert custom_ids(answer.json)[-1].startswith("pgbot:edit:")
    assert custom_ids(answer.json)[0].startswith("pgbot:sql:")  # the SQL waits behind Show SQL
    (thread,) = fake_discord.of("POST", "channels", CHANNEL_ID, "messages", original["id"], "threads")
    assert thread.json["name"] == "how many items?"
    assert not fake_discord.of("POST", "webhooks")  # one answer, no extra followups

    # The thread on the answer is the same conversation: a reply there needs no mention and has the history.
    llm_server.script(llm.text("Yes, all 300."))
    client._connection.parse_thread_create({**thread.response, "newly_created": True})
    client._connection.parse_message_create(message_create("all of them?", channel_id=original["id"]))
    await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 1)
    assert fake_discord.of("PATCH", "channels", original["id"])[0].json["content"].startswith("Yes, all 300.")
    history = [llm.question_of(m["content"]) for m in llm_server.requests[-1]["messages"] if m["role"] == "user"]
    assert history[-2:] == ["how many items?", "all of them?"]


async def test_ask_inside_a_thread_continues_that_thread(
    fake_discord: FakeDiscord, make_client: ClientFactory, stack: AgentFactory, llm_server: ScriptedLlmServer
) -> None:
    client = await make_client(stack())
    thread = thread_channel(thread_id="1200000000000000096", name="stock", owner_id=BOT_ID)
    client._connection.parse_thread_create({**thread, "newly_created": True})
    llm_server.script(llm.text("Hello."), llm.text("Still here."))
    client._connection.parse_message_create(message_create("hi", channel_id=thread["id"]))
    await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 1)
    command = fake_discord.command("still there?", channel=thread, invoker=ALICE)
    client._connection.parse_interaction_create(command)
    await fake_discord.wait_for(lambda f: len(f.of("PATCH", "webhooks")) == 1)
    assert fake_discord.of("PATCH", "webhooks")[0].json["content"].startswith("Still here.")
    assert [llm.question_of(m["content"]) for m in llm_server.requests[-1]["messages"] if m["role"] == "user"][-2:] == [
        "hi", "still there?"]
    await fake_discord.handled()
    assert not fake_discord.of("POST", "channels", CHANNEL_ID)  # no new thread inside a thread
    assert not fake_discord.of("GET", "webhooks")


async def test_ask_where_config_does_not_allow_it_is_refused_privately(
    fake_discord: FakeDiscord, make_client: ClientFactory, stack: AgentFactory, llm_server: ScriptedLlmServer
) -> None:
    client = await make_client(stack(), allowed_guilds=[1200000000000000777])
    command = fake_discord.command("how many items?", channel=text_channel(), invoker=ALICE)
    client._connection.parse_interaction_create(command)
    dm = fake_discord.command("and in a DM?", invoker=ALICE, guild=False,
                              channel={"id": DM_CHANNEL_ID, "type": 1, "recipients": [ALICE], "flags": 0,
                                       "last_message_id": None})
    client._connection.parse_interaction_create(dm)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "interactions")) == 2)
    for interaction in (command, dm):
        refusal = fake_discord.of("POST", "interactions", interaction["id"])[0].json
        assert refusal == {"type": 4, "data": {
            "tts": False, "content": "pgbot is not enabled in this server or channel.", "flags": 64,
            "allowed_mentions": {"parse": []}}}
    await fake_discord.handled()
    assert not llm_server.requests and not fake_discord.of("PATCH", "webhooks")


async def test_ask_where_pgbot_cannot_open_a_thread_tells_the_asker_privately(
    fake_discord: FakeDiscord, make_client: ClientFactory, stack: AgentFactory, llm_server: ScriptedLlmServer
) -> None:
    client = await make_client(stack())
    llm_server.script(llm.tool_call("run_query", {"sql": "SELECT 1 AS one"}), llm.text("One."))
    fake_discord.fail(missing_permissions("POST", f"/channels/{CHANNEL_ID}/messages"))
    command = fake_discord.command("just one?", channel=text_channel(), invoker=ALICE)
    client._connection.parse_interaction_create(command)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks")) == 1)
    assert fake_discord.of("PATCH", "webhooks")[0].json["content"].startswith("One.")  # the answer still came
    note = fake_discord.of("POST", "webhooks", APP_ID, command["token"])[0].json
    assert "Create Public Threads" in note["content"] and note["flags"] & 64
