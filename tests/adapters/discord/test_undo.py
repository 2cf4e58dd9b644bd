"""Undo over Discord end to end: real interaction payloads through discord.py on the fake Discord, the real
Agent on the real Postgres. The outcome carries an Undo button (a DynamicItem, so it works after a restart);
the undo's card goes in the thread for approvers; refusals go only to the clicker."""

from __future__ import annotations

from typing import Any

import asyncpg

from core import Agent
from tests.adapters.discord.conftest import ClientFactory
from tests.adapters.discord.fake_discord import APPROVER_ID, BOT_ID, USER_ID, FakeDiscord, user
from tests.adapters.discord.test_approval_safety import press
from tests.adapters.discord.test_bot import custom_ids, mention

APPROVER = user(APPROVER_ID, "dba")
ASKER = user(USER_ID, "alice")
EPHEMERAL = 64


async def qty(dsn: str, item: int) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT qty FROM items WHERE id = $1", item))
    finally:
        await conn.close()


async def answer(fake: FakeDiscord, payload: dict[str, Any]) -> dict[str, Any]:
    """The followup message a click got (as the fake stored it, so it can be clicked in turn)."""
    await fake.wait_for(lambda f: len(f.of("POST", "webhooks", BOT_ID, payload["token"])) >= 1)
    call = fake.of("POST", "webhooks", BOT_ID, payload["token"])[0]
    return {**fake.messages[call.response["id"]], "flags": call.json.get("flags", 0)}


def seen(message: dict[str, Any]) -> str:
    """What a person reads of a message: its content and its embeds (an approval card's words are there)."""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f.get('name')} {f.get('value')}" for f in embed.get("fields") or []]
    return "\n".join(parts)


async def test_undo_button_card_and_approval_in_a_thread(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent, fresh_db: str
) -> None:
    client = await make_client(shop_agent)
    _, thread, post, edit = await mention(fake_discord, client, "/sql UPDATE items SET qty = 0 WHERE id IN (1, 2)")
    card = fake_discord.messages[post.response["id"]]
    outcome = await answer(fake_discord, await press(fake_discord, client, custom_ids(edit.json)[0], card,
                                                     thread.response, clicker=APPROVER))
    assert "UPDATE 2" in outcome["content"] and "kept the 2 rows" in outcome["content"]
    (undo_id,) = custom_ids(outcome)
    assert undo_id.startswith("pgbot:undo:") and await qty(fresh_db, 1) == 0

    undo_card = await answer(fake_discord, await press(fake_discord, client, undo_id, outcome, thread.response,
                                                       clicker=ASKER))
    assert not undo_card["flags"] & EPHEMERAL and "UNDO of change" in seen(undo_card)
    approve, reject = custom_ids(undo_card)
    assert approve.startswith("pgbot:approve:") and reject.startswith("pgbot:reject:")
    again = await answer(fake_discord, await press(fake_discord, client, undo_id, outcome, thread.response,
                                                   clicker=APPROVER))
    assert again["flags"] & EPHEMERAL and "already waits for approval" in again["content"]

    mine = await answer(fake_discord, await press(fake_discord, client, approve, undo_card, thread.response,
                                                  clicker=ASKER))
    assert mine["flags"] & EPHEMERAL and "self-approval is off" in mine["content"] and await qty(fresh_db, 1) == 0
    done = await answer(fake_discord, await press(fake_discord, client, approve, undo_card, thread.response,
                                                  clicker=APPROVER))
    assert "put back 2 of 2 rows of public.items" in done["content"] and custom_ids(done) == []
    assert await qty(fresh_db, 1) == 10 and await qty(fresh_db, 2) == 20
    late = await answer(fake_discord, await press(fake_discord, client, undo_id, outcome, thread.response,
                                                  clicker=ASKER))
    assert late["flags"] & EPHEMERAL and "already undone" in late["content"]
