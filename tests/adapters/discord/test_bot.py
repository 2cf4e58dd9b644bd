"""The Discord client end to end: real gateway payloads through discord.py's ConnectionState, the real core
Agent and Postgres behind it, and every REST call checked on a local fake Discord."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest

from bot.wiring import build_agent
from core import Agent, Settings
from tests.adapters.discord.conftest import ClientFactory
from tests.adapters.discord.fake_discord import (
    APPROVER_ID,
    BOT_ID,
    BOT_ROLE_ID,
    BOT_USER,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    OTHER_BOT_ID,
    USER_ID,
    FakeDiscord,
    RestCall,
    message_create,
    result_text,
    thread_channel,
    user,
)
from tests.adapters.slack.agent_double import ACTION_ID, ApprovalAgentDouble, HeldDouble
from tests.services import throwaway_role

ALICE = user(USER_ID, "alice")


def custom_ids(body: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in body.get("components", []) for c in row["components"]]


async def mention(fake: FakeDiscord, client: Any, text: str) -> tuple[dict[str, Any], RestCall, RestCall, RestCall]:
    """Mention pgbot in #db-ops; return (the message, thread creation, working post, the edit that answered)."""
    patches = len(fake.of("PATCH", "channels"))
    data = message_create(f"<@{BOT_ID}> {text}", mentions=[BOT_USER])
    client._connection.parse_message_create(data)
    await fake.wait_for(lambda f: len(f.of("PATCH", "channels")) > patches)
    thread = fake.of("POST", "channels", CHANNEL_ID, "messages", data["id"], "threads")[-1]
    post = fake.of("POST", "channels", data["id"], "messages")[-1]
    return data, thread, post, fake.of("PATCH", "channels")[-1]


async def test_mention_opens_a_thread_and_edits_working_into_the_result(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    client = await make_client(shop_agent)
    data, thread, post, edit = await mention(
        fake_discord, client, "/sql SELECT id, qty FROM items WHERE id < 3 ORDER BY id"
    )
    assert thread.json["name"] == "/sql SELECT id, qty FROM items WHERE id < 3 ORDER BY id"
    assert thread.json["auto_archive_duration"] == 1440
    assert post.json["content"] == "⏳ Working on it…"
    assert post.json["allowed_mentions"] == {"parse": []}
    assert edit.path == f"/channels/{data['id']}/messages/{post.response['id']}"
    assert edit.json["content"] == "2 rows"
    table, sql = edit.json["embeds"]  # the data first, then the statement the person wrote, laid out
    assert table["description"].splitlines()[1:5] == ["id | qty", "---+----", " 1 |  10", " 2 |  20"]
    assert re.fullmatch(r"shop · 2 rows · \d+ ms", table["footer"]["text"])
    assert sql["title"] == "SQL" and sql["description"] == (
        "```sql\nSELECT id\n     , qty\nFROM items\nWHERE id < 3\nORDER BY id;\n```"
    )
    assert edit.json["components"] == []
    await fake_discord.handled()
    assert len(fake_discord.of("POST", "channels")) == 2  # one thread, one message: edited, never re-posted


async def test_thread_replies_need_no_mention_and_stay_in_the_thread(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    client = await make_client(shop_agent)
    data, thread, _, _ = await mention(fake_discord, client, "/sql SELECT 1 AS one")
    client._connection.parse_thread_create({**thread.response, "newly_created": True})  # what the gateway sends

    client._connection.parse_message_create(message_create("/sql SELECT count(*) AS n FROM items",
                                                           channel_id=data["id"]))
    await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 2)
    assert len(fake_discord.of("POST", "channels", CHANNEL_ID, "messages")) == 1  # no second thread
    posts = fake_discord.of("POST", "channels", data["id"], "messages")
    assert len(posts) == 2
    edit = fake_discord.of("PATCH", "channels")[-1]
    assert edit.path == f"/channels/{data['id']}/messages/{posts[1].response['id']}"
    assert "n: 300" in result_text(edit.json)


async def test_messages_pgbot_must_not_answer(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    client = await make_client(shop_agent)
    someone_elses = thread_channel(thread_id="1200000000000000099", name="chat", owner_id=USER_ID)
    client._connection.parse_thread_create({**someone_elses, "newly_created": True})
    ignored = [
        message_create("/sql SELECT 1"),  # no mention in a channel
        message_create("/sql SELECT 1", channel_id=someone_elses["id"]),  # a thread pgbot did not create
        message_create(f"<@{BOT_ID}> /sql SELECT 1", mentions=[BOT_USER],
                       author=user(OTHER_BOT_ID, "otherbot", bot=True)),  # bots
        message_create(f"<@{BOT_ID}> /sql SELECT 1", mentions=[BOT_USER], author=BOT_USER),  # itself
        message_create("@everyone /sql SELECT 1"),
        {**message_create("", mentions=[BOT_USER]), "type": 7},  # a system message (member joined)
    ]
    for data in ignored:
        client._connection.parse_message_create(data)
    await fake_discord.handled()
    assert not fake_discord.of("POST", "channels") and not fake_discord.of("PATCH", "channels")

    # Mentioned inside someone else's thread: answered there, no new thread.
    client._connection.parse_message_create(
        message_create(f"<@!{BOT_ID}> /sql SELECT 5 AS five", channel_id=someone_elses["id"], mentions=[BOT_USER])
    )
    await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 1)
    assert [c.path for c in fake_discord.of("POST", "channels")] == [f"/channels/{someone_elses['id']}/messages"]


async def test_role_mentions_and_direct_messages_are_answered(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    client = await make_client(shop_agent)
    data = message_create(f"<@&{BOT_ROLE_ID}> /sql SELECT 'role' AS via", mention_roles=[BOT_ROLE_ID])
    client._connection.parse_message_create(data)
    await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 1)
    assert fake_discord.of("POST", "channels", CHANNEL_ID, "messages", data["id"], "threads")[0].json["name"] == (
        "/sql SELECT 'role' AS via"
    )

    client._connection.parse_message_create(message_create("/sql SELECT 'dm' AS via", channel_id=DM_CHANNEL_ID,
                                                           guild=False))
    await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 2)
    assert fake_discord.of("POST", "channels", DM_CHANNEL_ID, "messages")
    assert "via: dm" in result_text(fake_discord.of("PATCH", "channels", DM_CHANNEL_ID)[0].json)


async def test_guilds_outside_allowed_guilds_and_dms_are_ignored(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    client = await make_client(shop_agent, allowed_guilds=[1200000000000000777])
    client._connection.parse_message_create(message_create(f"<@{BOT_ID}> /sql SELECT 1", mentions=[BOT_USER]))
    client._connection.parse_message_create(message_create("/sql SELECT 1", channel_id=DM_CHANNEL_ID, guild=False))
    await fake_discord.handled()
    assert not fake_discord.of("POST", "channels")


async def test_approval_buttons_work_across_a_restart(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent, fresh_db: str
) -> None:
    client = await make_client(shop_agent)
    data, thread, post, edit = await mention(fake_discord, client, "/sql UPDATE items SET qty = 0 WHERE id = 7")
    approval, sql = edit.json["embeds"]  # the after rows are not shown a second time
    assert approval["title"] == "Approve: UPDATE 1 row in items?"
    assert approval["description"].startswith("```\nid 7: qty 70 → 0\n```")  # only the changed column, by key
    fields = {f["name"]: f["value"] for f in approval["fields"]}
    assert fields["Requested by"] == f"<@{USER_ID}>" and fields["May approve"] == f"<@{APPROVER_ID}>"
    assert edit.json["content"].startswith("🔒 Waiting for approval · expires <t:")
    assert edit.json["content"].endswith(f"**May approve:** <@{APPROVER_ID}>")
    assert sql["description"] == "```sql\nUPDATE items SET qty = 0 WHERE id = 7;\n```"
    approve_id, reject_id = custom_ids(edit.json)
    action_id = approve_id.removeprefix("pgbot:approve:")
    assert reject_id == f"pgbot:reject:{action_id}"
    thread_data, shown = thread.response, fake_discord.messages[post.response["id"]]

    # A stranger clicks Approve: acknowledged at once, core refuses, the buttons stay.
    eve = user("1200000000000000555", "eve")
    stranger = fake_discord.click(approve_id, message=shown, thread=thread_data, clicker=eve)
    client._connection.parse_interaction_create(stranger)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks")) == 1)
    callback = fake_discord.of("POST", "interactions", stranger["id"])[0]
    assert callback.json == {"type": 6} and callback.query == {"with_response": "1"}
    refusal = fake_discord.of("POST", "webhooks", BOT_ID, stranger["token"])[0]
    assert "cannot approve" in refusal.json["content"] and refusal.json["flags"] == 64  # for the clicker alone
    await fake_discord.handled()
    card_edits = len(fake_discord.of("PATCH", "channels"))

    # pgbot restarts: a brand-new client still understands the old buttons (custom_id carries the action id).
    restarted = await make_client(shop_agent)
    click = fake_discord.click(approve_id, message=shown, thread=thread_data, clicker=user(APPROVER_ID, "dba"))
    restarted._connection.parse_interaction_create(click)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks", BOT_ID, click["token"])) == 1)
    assert len(fake_discord.of("PATCH", "channels")) == card_edits + 2  # the stranger changed nothing
    outcome = fake_discord.of("POST", "webhooks", BOT_ID, click["token"])[0]
    assert outcome.response["channel_id"] == data["id"] and not outcome.json.get("flags")  # in the thread
    running, retired = [c.json for c in fake_discord.of("PATCH", "channels", data["id"], "messages",
                                                           post.response["id"])][-2:]
    assert (running["content"], running["components"]) == (f"⏳ Approved by <@{APPROVER_ID}> — running", [])
    assert retired["components"] == []  # no live buttons
    assert re.fullmatch(rf"✅ Applied: UPDATE 1 in \d+ ms — approved by <@{APPROVER_ID}>", retired["content"])
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT qty FROM items WHERE id = 7") == 0
    finally:
        await conn.close()


async def test_embeds_discord_refuses_fall_back_to_text(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    client = await make_client(shop_agent)
    fake_discord.refuse_embeds_with = "```"
    client._connection.parse_message_create(message_create(f"<@{BOT_ID}> /sql SELECT 1 AS one", mentions=[BOT_USER]))
    await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 2)
    refused, plain = fake_discord.of("PATCH", "channels")
    assert refused.path == plain.path
    assert plain.json["embeds"] == [] and plain.json["content"] == "1 row"


async def test_results_larger_than_a_message_come_as_an_attached_csv(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    client = await make_client(shop_agent)
    data, _, post, edit = await mention(fake_discord, client, "/sql SELECT id, qty FROM items ORDER BY id")
    assert edit.path == f"/channels/{data['id']}/messages/{post.response['id']}"
    grid = edit.json["embeds"][0]
    assert grid["description"].startswith("```\nid | qty") and len(grid["description"]) <= 2000
    assert len(grid["description"].splitlines()) == 15 + 4  # 15 rows: fences, header and rule around them
    footer = grid["footer"]["text"]
    assert footer.startswith("showing 15 of 300 in result.csv\nshop · 300 rows · ")
    assert edit.json["attachments"] == [{"id": 0, "filename": "result.csv"}]  # multipart upload on the edit
    lines = edit.files["result.csv"].decode().splitlines()
    assert lines[0] == "id,qty" and len(lines) == 301 and lines[-1] == "300,3000"


async def test_small_results_have_no_attachment_and_typing_shows_while_working(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    client = await make_client(shop_agent)
    data, _, _, edit = await mention(fake_discord, client, "/sql SELECT 1 AS one")
    assert not edit.files and "attachments" not in edit.json
    typing = fake_discord.of("POST", "channels", data["id"], "typing")
    assert typing  # started once "Working on it…" was up (a message clears typing)
    order = [c.path for c in fake_discord.calls if c.method == "POST" and c.path.startswith(f"/channels/{data['id']}")]
    assert order[0].endswith("/messages") and order[1].endswith("/typing")


async def test_channels_outside_allowed_channels_are_ignored(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    client = await make_client(shop_agent, allowed_channels=[1200000000000000778])
    client._connection.parse_message_create(message_create(f"<@{BOT_ID}> /sql SELECT 1", mentions=[BOT_USER]))
    await fake_discord.handled()
    assert not fake_discord.of("POST", "channels")
    allowed = await make_client(shop_agent, allowed_channels=[int(CHANNEL_ID)])
    await mention(fake_discord, allowed, "/sql SELECT 1 AS one")  # the parent channel allows its threads too


async def test_discord_identities_map_to_database_roles(
    fake_discord: FakeDiscord, make_client: ClientFactory, fresh_db: str, pg_admin_dsn: str
) -> None:
    """``discord:<user id>`` in [databases.X.roles]: Alice's statements run as her role, Eve (unmapped) gets none."""
    async with throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_analyst") as role:
        agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db, "roles": {f"discord:{USER_ID}": role}}}),
                            use_llm=False)
        try:
            client = await make_client(agent)
            _, _, _, edit = await mention(fake_discord, client, "/sql SELECT current_user AS who")
            assert f"who: {role}" in result_text(edit.json)
            eve = "1200000000000000555"
            client._connection.parse_message_create(message_create(
                f"<@{BOT_ID}> /sql SELECT 1", mentions=[BOT_USER], author=user(eve, "eve")))
            await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 2)
            refused = fake_discord.of("PATCH", "channels")[-1].json["content"]
            assert f"You (discord:{eve}) are not mapped to a database role on 'shop'" in refused
        finally:
            await agent.aclose()


async def test_progress_of_long_approved_work_edits_the_cards_state_line(
    fake_discord: FakeDiscord, make_client: ClientFactory
) -> None:
    steps = [f"building index: {p}% (phase: building index: scanning table)" for p in range(0, 100, 10)]
    double = ApprovalAgentDouble(progress_lines=steps, progress_pause_s=0.05)
    client = await make_client(double)
    client.progress_every_s = 0.2  # production: 15 s ticks, at most one edit per 3 s
    data, thread, post, edit = await mention(fake_discord, client, "back up shop")
    approve_id, _ = custom_ids(edit.json)
    click = fake_discord.click(approve_id, message=fake_discord.messages[post.response["id"]],
                               thread=thread.response, clicker=user(APPROVER_ID, "dba"))
    client._connection.parse_interaction_create(click)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks")) == 1)
    await fake_discord.handled()
    assert len(fake_discord.of("POST", "webhooks")) == 1  # the outcome only: never a message per step
    states = [c.json["content"] for c in fake_discord.of("PATCH", "channels", data["id"], "messages",
                                                         post.response["id"])][1:]  # after the card itself
    assert states[0] == f"⏳ Approved by <@{APPROVER_ID}> — running"
    progress = states[1:-1]
    assert 1 <= len(progress) < len(steps)  # rate-limited
    assert all(p.startswith(f"⏳ Approved by <@{APPROVER_ID}> — running: building index: ") for p in progress)
    assert states[-1] == f"✅ Applied: UPDATE 1 in 12 ms — approved by <@{APPROVER_ID}>"


async def test_handled_waits_for_handlers_still_running(fake_discord: FakeDiscord, make_client: ClientFactory) -> None:
    """The negative checks of these tests ("nothing more is sent") wait for discord.py's handlers with
    handled(): it must see a handler that is still running, for a message and for a click."""
    double = HeldDouble()
    client = await make_client(double)
    data = message_create(f"<@{BOT_ID}> held", mentions=[BOT_USER])
    client._connection.parse_message_create(data)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "channels", data["id"], "messages")) == 1)  # working
    with pytest.raises(AssertionError, match=r"discord\.py handlers still running"):
        await fake_discord.handled(within_s=0.2)
    double.release.set()
    await fake_discord.handled()
    post, edit = fake_discord.of("POST", "channels", data["id"], "messages")[0], fake_discord.of("PATCH", "channels")[0]
    thread = fake_discord.of("POST", "channels", CHANNEL_ID, "messages", data["id"], "threads")[0]
    double.release.clear()
    click = fake_discord.click(custom_ids(edit.json)[0], message=fake_discord.messages[post.response["id"]],
                               thread=thread.response, clicker=user(APPROVER_ID, "dba"))
    client._connection.parse_interaction_create(click)
    with pytest.raises(AssertionError, match=r"discord\.py handlers still running"):
        await fake_discord.handled(within_s=0.2)
    double.release.set()
    await fake_discord.handled()
    assert double.decisions == [(ACTION_ID, f"discord:{APPROVER_ID}", True)]
    assert len(fake_discord.of("POST", "webhooks")) == 1  # the outcome, posted before the handler ended
