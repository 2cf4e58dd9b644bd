"""Discord guild roles → database roles (``discord-role:<id>`` in [databases.X.roles]): real gateway and
interaction payloads through discord.py, the real Agent, and real Postgres roles behind ``SELECT current_user``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from bot.wiring import build_agent
from core import Agent, Settings
from tests.adapters.discord.conftest import ClientFactory
from tests.adapters.discord.fake_discord import (
    APPROVER_ID,
    BOT_ID,
    BOT_USER,
    GUILD_ID,
    USER_ID,
    FakeDiscord,
    guild_role,
    member,
    message_create,
    missing_permissions,
    text_channel,
    user,
)
from tests.helpers import ITEMS_SQL
from tests.services import throwaway_role

ANALYSTS, ENGINEERS, DBAS = "1200000000000000901", "1200000000000000902", "1200000000000000903"
ALICE = user(USER_ID, "alice")
CAROL, EVE = user("1200000000000000551", "carol"), user("1200000000000000555", "eve")


def add_guild_roles(client: Any) -> None:
    """GUILD_ROLE_CREATE for the roles used here: discord.py resolves a member's role ids against its cache."""
    for role_id, name in ((ANALYSTS, "analysts"), (ENGINEERS, "engineers"), (DBAS, "dbas")):
        client._connection.parse_guild_role_create({"guild_id": GUILD_ID, "role": guild_role(role_id, name)})


async def ask(fake: FakeDiscord, client: Any, text: str, *, author: dict[str, Any], roles: list[str]) -> Any:
    """Mention pgbot as ``author`` holding ``roles``; return the edit that answered."""
    patches = len(fake.of("PATCH", "channels"))
    client._connection.parse_message_create(message_create(
        f"<@{BOT_ID}> {text}", mentions=[BOT_USER], author=author, roles=roles))
    await fake.wait_for(lambda f: len(f.of("PATCH", "channels")) > patches)
    return fake.of("PATCH", "channels")[-1]


def shown_text(edit: Any) -> str:
    return str(edit.json["content"]) + "".join(str(e.get("description", "")) for e in edit.json.get("embeds", []))


def who(edit: Any) -> str:
    """The single cell of a ``SELECT current_user AS who`` result as shown (a one-row result: a field)."""
    (field,) = [f for e in edit.json.get("embeds", []) for f in e.get("fields", []) if f["name"] == "who"]
    return str(field["value"])


async def test_guild_roles_choose_the_database_role(
    fake_discord: FakeDiscord, make_client: ClientFactory, fresh_db: str, pg_admin_dsn: str
) -> None:
    """A member runs as their guild role's database role; their own entry beats it; of two mapped guild roles
    the first in config order wins (not the order Discord lists them); no mapped role, no access."""
    async with (throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_analyst") as analyst,
                throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_engineer") as engineer,
                throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_alice") as own):
        roles = {f"discord-role:{ANALYSTS}": analyst, f"discord:{USER_ID}": own, f"discord-role:{ENGINEERS}": engineer}
        agent = build_agent(Settings(databases={"shop": {"dsn": fresh_db, "roles": roles}}), use_llm=False)
        try:
            client = await make_client(agent)
            add_guild_roles(client)
            query = "/sql SELECT current_user AS who"
            carol_one = await ask(fake_discord, client, query, author=CAROL, roles=[ENGINEERS])
            assert who(carol_one) == engineer
            carol_both = await ask(fake_discord, client, query, author=CAROL, roles=[ENGINEERS, ANALYSTS])
            assert who(carol_both) == analyst  # analysts come first in the config
            alice = await ask(fake_discord, client, query, author=ALICE, roles=[ANALYSTS])
            assert who(alice) == own
            eve = await ask(fake_discord, client, query, author=EVE, roles=[DBAS])  # a role, but not mapped
            assert f"You (discord:{EVE['id']}) are not mapped to a database role on 'shop'" in eve.json["content"]

            # /pgbot ask carries the invoker's roles too (the command's Message, not a gateway message).
            command = fake_discord.command(query, channel=text_channel(), invoker=CAROL, roles=[ANALYSTS])
            client._connection.parse_interaction_create(command)
            await fake_discord.wait_for(lambda f: len(f.of("PATCH", "webhooks")) == 1)
            answered = fake_discord.of("PATCH", "webhooks")[0]
            assert who(answered) == analyst
        finally:
            await agent.aclose()


@pytest.fixture
async def roles_agent(fresh_db: str, pg_admin_dsn: str) -> AsyncIterator[tuple[Agent, str, str]]:
    """Engineers (guild role) request changes as a role that may update ``items``; DBAs (guild role) map to
    the approvers' database role. Yields (agent, engineer role, dba role)."""
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(ITEMS_SQL)
    finally:
        await conn.close()
    async with (throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_eng",
                               grants="GRANT SELECT, UPDATE ON items TO {role}") as engineer,
                throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_dba") as dba):
        settings = Settings(databases={"shop": {
            "dsn": fresh_db,
            "roles": {f"discord-role:{ENGINEERS}": engineer, f"discord-role:{DBAS}": dba},
            "approvers": {"roles": [dba]},
        }})
        agent = build_agent(settings, use_llm=False)
        try:
            yield agent, engineer, dba
        finally:
            await agent.aclose()


async def qty(dsn: str, item: int) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT qty FROM items WHERE id = $1", item))
    finally:
        await conn.close()


async def request_change(fake: FakeDiscord, client: Any, sql: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Alice (an engineer) asks for ``sql``; returns (Approve custom_id, the message shown, its thread)."""
    patches = len(fake.of("PATCH", "channels"))
    data = message_create(f"<@{BOT_ID}> /sql {sql}", mentions=[BOT_USER], author=ALICE, roles=[ENGINEERS])
    client._connection.parse_message_create(data)
    await fake.wait_for(lambda f: len(f.of("PATCH", "channels")) > patches)
    edit = fake.of("PATCH", "channels")[-1]
    approve_id = edit.json["components"][0]["components"][0]["custom_id"]
    thread = fake.of("POST", "channels", data["id"], "messages")[-1]
    shown = fake.messages[thread.response["id"]]
    opened = fake.of("POST", "channels")[-2].response  # the thread opened on the mention
    return approve_id, shown, opened


async def click(fake: FakeDiscord, client: Any, approve_id: str, shown: dict[str, Any], thread: dict[str, Any],
                *, clicker: dict[str, Any], roles: list[str]) -> str:
    """Press Approve as ``clicker`` holding ``roles``; return what pgbot answered that click."""
    payload = fake.click(approve_id, message=shown, thread=thread, clicker=clicker, roles=roles)
    client._connection.parse_interaction_create(payload)
    await fake.wait_for(lambda f: len(f.of("POST", "webhooks", BOT_ID, payload["token"])) == 1)
    return str(fake.of("POST", "webhooks", BOT_ID, payload["token"])[0].json["content"])


async def test_an_approver_by_guild_role_approves_and_the_change_runs_as_the_requesters_role(
    fake_discord: FakeDiscord, make_client: ClientFactory, roles_agent: tuple[Agent, str, str], fresh_db: str
) -> None:
    agent, engineer, _ = roles_agent
    client = await make_client(agent)
    add_guild_roles(client)
    fake_discord.members[USER_ID] = member(ALICE, roles=[ENGINEERS])  # what a member look-up returns now
    approve_id, shown, thread = await request_change(fake_discord, client, "UPDATE items SET qty = 0 WHERE id = 7")

    # An engineer is no approver (their guild role maps to the requesters' role, not the approvers').
    refused = await click(fake_discord, client, approve_id, shown, thread, clicker=CAROL, roles=[ENGINEERS])
    assert f"You (<@{CAROL['id']}>) cannot approve this change: you are not an approver" in refused
    assert await qty(fresh_db, 7) == 70

    done = await click(fake_discord, client, approve_id, shown, thread, clicker=user(APPROVER_ID, "dba"),
                       roles=[DBAS])
    assert f"approved by <@{APPROVER_ID}> and executed as role {engineer} on 'shop'" in done
    assert await qty(fresh_db, 7) == 0
    assert fake_discord.of("GET", "guilds", GUILD_ID, "members", USER_ID)  # the requester's roles, asked afresh


async def test_a_requester_who_lost_the_guild_role_is_refused_at_approval(
    fake_discord: FakeDiscord, make_client: ClientFactory, roles_agent: tuple[Agent, str, str], fresh_db: str
) -> None:
    agent, _, _ = roles_agent
    client = await make_client(agent)
    add_guild_roles(client)
    fake_discord.members[USER_ID] = member(ALICE, roles=[ENGINEERS])
    approve_id, shown, thread = await request_change(fake_discord, client, "UPDATE items SET qty = 1 WHERE id = 8")
    dba = user(APPROVER_ID, "dba")

    # Discord cannot be asked (403): nothing is decided, the same click works once it can.
    fake_discord.fail(missing_permissions("GET", f"/guilds/{GUILD_ID}/members"))
    busy = await click(fake_discord, client, approve_id, shown, thread, clicker=dba, roles=[DBAS])
    assert f"Could not check <@{USER_ID}>'s current roles" in busy and "Try again" in busy

    fake_discord.members[USER_ID] = member(ALICE, roles=[])  # an admin took the engineers role away
    refused = await click(fake_discord, client, approve_id, shown, thread, clicker=dba, roles=[DBAS])
    assert f"Refused: <@{USER_ID}> no longer has access to 'shop'. Nothing was run." in refused
    assert await qty(fresh_db, 8) == 80

    # The refusal is final: given the role back, the change stays refused (ask again instead).
    fake_discord.members[USER_ID] = member(ALICE, roles=[ENGINEERS])
    again = await click(fake_discord, client, approve_id, shown, thread, clicker=dba, roles=[DBAS])
    assert "already failed" in again
    assert await qty(fresh_db, 8) == 80
