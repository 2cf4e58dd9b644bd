"""Issue 13, as an attacker in Discord would try it: real gateway and interaction payloads through discord.py,
the real Agent on the real Postgres, every REST call checked on the local fake Discord.

Self-approval, approving where no approvers are configured (the old shipped default), a dangerous statement
hidden past the card's cut, a click from another guild, and a disguised link from the model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from bot.wiring import build_agent
from core import Agent, Settings
from tests import llm_server as llm
from tests.adapters.discord.conftest import AgentFactory, ClientFactory
from tests.adapters.discord.fake_discord import (
    APPROVER_ID,
    BOT_ID,
    BOT_USER,
    GUILD_ID,
    FakeDiscord,
    message_create,
    user,
)
from tests.adapters.discord.test_bot import custom_ids, mention
from tests.adapters.slack.test_approval_safety import LONG_DO, count_items
from tests.helpers import ITEMS_SQL
from tests.llm_server import ScriptedLlmServer

APPROVER = user(APPROVER_ID, "dba")
OTHER_GUILD = "1299999999999999999"


async def mention_as(fake: FakeDiscord, client: Any, text: str, *, author: dict[str, Any]) -> Any:
    """Mention pgbot as ``author``; return (the edit that answered, the message shown, its thread)."""
    patches = len(fake.of("PATCH", "channels"))
    data = message_create(f"<@{BOT_ID}> {text}", mentions=[BOT_USER], author=author)
    client._connection.parse_message_create(data)
    await fake.wait_for(lambda f: len(f.of("PATCH", "channels")) > patches)
    post = fake.of("POST", "channels", data["id"], "messages")[-1]
    thread = fake.of("POST", "channels")[-2].response
    return fake.of("PATCH", "channels")[-1], fake.messages[post.response["id"]], thread


async def press(fake: FakeDiscord, client: Any, custom_id: str, shown: dict[str, Any], thread: dict[str, Any],
                *, clicker: dict[str, Any], guild: str = GUILD_ID) -> dict[str, Any]:
    """Click ``custom_id`` as ``clicker`` (from ``guild``); return the interaction payload once answered."""
    payload = fake.click(custom_id, message=shown, thread=thread, clicker=clicker)
    payload["guild_id"] = payload["guild"]["id"] = guild
    before = len(fake.of("POST", "interactions", payload["id"]))
    client._connection.parse_interaction_create(payload)
    await fake.wait_for(lambda f: len(f.of("POST", "interactions", payload["id"])) > before)
    return payload


async def followup(fake: FakeDiscord, payload: dict[str, Any]) -> str:
    await fake.wait_for(lambda f: len(f.of("POST", "webhooks", BOT_ID, payload["token"])) >= 1)
    return str(fake.of("POST", "webhooks", BOT_ID, payload["token"])[0].json["content"])


@pytest.fixture
async def open_agent(fresh_db: str) -> AsyncIterator[Agent]:
    """What the shipped configs used to be: no roles table, no approvers."""
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(ITEMS_SQL)
    finally:
        await conn.close()
    agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db}}), use_llm=False)
    yield agent
    await agent.aclose()


async def test_an_approver_cannot_approve_their_own_change(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent, fresh_db: str
) -> None:
    client = await make_client(shop_agent)
    edit, shown, thread = await mention_as(fake_discord, client, "/sql DELETE FROM items", author=APPROVER)
    payload = await press(fake_discord, client, custom_ids(edit.json)[0], shown, thread, clicker=APPROVER)
    refusal = await followup(fake_discord, payload)
    assert "self-approval is off" in refusal and "Nothing was run" in refusal
    assert await count_items(fresh_db) == 300


async def test_with_no_approvers_nobody_approves_from_chat_and_the_card_says_how_to_fix_it(
    fake_discord: FakeDiscord, make_client: ClientFactory, open_agent: Agent, fresh_db: str
) -> None:
    client = await make_client(open_agent)
    requester = user("1200000000000000777", "mallory")
    edit, shown, thread = await mention_as(fake_discord, client, "/sql DO $$ BEGIN DELETE FROM items; END $$",
                                           author=requester)
    notes = [f["value"] for f in edit.json["embeds"][0]["fields"] if "Note" in f["name"]]
    assert any("no approvers are configured for 'shop'" in n and "[databases.shop.approvers]" in n for n in notes)
    for clicker in (requester, user("1200000000000000888", "stranger")):
        payload = await press(fake_discord, client, custom_ids(edit.json)[0], shown, thread, clicker=clicker)
        assert "no approvers are configured" in await followup(fake_discord, payload)
    assert await count_items(fresh_db) == 300


async def test_a_statement_longer_than_the_card_is_attached_whole(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent, fresh_db: str
) -> None:
    client = await make_client(shop_agent)
    _, _, _, edit = await mention(fake_discord, client, f"/sql {LONG_DO}")
    approval, sql = edit.json["embeds"][:2]
    assert "DELETE FROM items" not in sql["description"] and sql["description"].endswith("…\n```")
    lines = LONG_DO.count("\n") + 1
    fields = {f["name"]: f["value"] for f in approval["fields"]}
    assert f"Full statement ({lines} lines) attached: change.sql" in fields["📎 Full statement attached"]
    assert edit.files["change.sql"].decode() == LONG_DO
    assert await count_items(fresh_db) == 300


async def test_clicks_from_another_guild_do_nothing(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent, fresh_db: str
) -> None:
    client = await make_client(shop_agent, allowed_guilds=[int(GUILD_ID)])
    _, thread, post, edit = await mention(fake_discord, client, "/sql DELETE FROM items WHERE id = 5")
    shown, approve_id = fake_discord.messages[post.response["id"]], custom_ids(edit.json)[0]
    payload = await press(fake_discord, client, approve_id, shown, thread.response, clicker=APPROVER,
                          guild=OTHER_GUILD)
    callback = fake_discord.of("POST", "interactions", payload["id"])[0]
    assert callback.json["type"] == 4 and callback.json["data"]["flags"] == 64  # a private note, nothing more
    assert "not enabled" in callback.json["data"]["content"]
    await fake_discord.handled()
    assert not fake_discord.of("POST", "webhooks") and await count_items(fresh_db) == 300
    payload = await press(fake_discord, client, approve_id, shown, thread.response, clicker=APPROVER)
    assert "approved by" in await followup(fake_discord, payload)  # the same click from the allowed guild runs
    assert await count_items(fresh_db) == 299


async def test_model_text_cannot_disguise_a_link(
    fake_discord: FakeDiscord, make_client: ClientFactory, stack: AgentFactory, llm_server: ScriptedLlmServer
) -> None:
    llm_server.script(llm.text("Session expired: [re-login](https://evil.example/steal) or "
                               "[docs](<https://evil.example/x> \"title\") or [a]\n(https://evil.example/y)"))
    client = await make_client(stack())
    _, _, _, edit = await mention(fake_discord, client, "hello")
    content = edit.json["content"]
    assert "re-login (<https://evil.example/steal>)" in content and "docs (<https://evil.example/x>)" in content
    assert "](" not in content
