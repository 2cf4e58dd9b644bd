"""Whole conversations through discord.py's objects with the real agent, Postgres, Redis and the scripted model
server: thread follow-ups across a restart, 👍/👎 into the feedback store, and the approval round trip."""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from core.approvals.audit import AuditLog
from core.approvals.decisions import Approvals
from core.approvals.store import RedisApprovalStore
from tests import llm_server as llm
from tests.adapters.discord.conftest import AgentFactory, ClientFactory
from tests.adapters.discord.fake_discord import (
    APPROVER_ID,
    BOT_ID,
    BOT_USER,
    USER_ID,
    FakeDiscord,
    message_create,
    result_text,
    thread_channel,
    user,
)
from tests.adapters.discord.test_bot import custom_ids, mention
from tests.llm_server import ScriptedLlmServer
from tests.services import store_client

EVE = user("1200000000000000555", "eve")
DBA = user(APPROVER_ID, "dba")


async def fetch(dsn: str, sql: str) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def user_messages(request: dict[str, Any]) -> list[str]:
    return [llm.question_of(m["content"]) for m in request["messages"] if m["role"] == "user"]


async def test_thread_replies_continue_after_a_restart_from_the_shared_context(
    fake_discord: FakeDiscord, make_client: ClientFactory, stack: AgentFactory, llm_server: ScriptedLlmServer
) -> None:
    # Alice's own thread: pgbot did not open it, so only the context store can say pgbot talks there.
    thread = thread_channel(thread_id="1200000000000000098", name="stock", owner_id=USER_ID)
    quiet = thread_channel(thread_id="1200000000000000097", name="chat", owner_id=USER_ID)
    fake_discord.channels.update({thread["id"]: thread, quiet["id"]: quiet})
    client = await make_client(stack())
    client._connection.parse_thread_create({**thread, "newly_created": True})
    llm_server.script(llm.tool_call("run_query", {"sql": "SELECT count(*) AS n FROM items"}),
                      llm.text("There are 300 items."))
    client._connection.parse_message_create(
        message_create(f"<@{BOT_ID}> how many items?", channel_id=thread["id"], mentions=[BOT_USER]))
    await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 1)
    answer = fake_discord.of("PATCH", "channels", thread["id"])[0].json
    assert answer["content"] == "There are 300 items."
    assert result_text(answer).startswith("n: 300\nshop · 1 row · ")
    assert [c.split(":")[1] for c in custom_ids(answer)] == ["sql", "fb", "fb", "edit"]

    # A restart: new agent, new client; the thread is not in discord.py's cache, so it is fetched once.
    restarted = await make_client(stack())
    llm_server.script(llm.tool_call("run_query", {"sql": "SELECT count(*) AS n FROM items WHERE qty > 2000"}),
                      llm.text("100 of them."))
    restarted._connection.parse_message_create(message_create("and over 2000?", channel_id=thread["id"]))
    await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 2)
    assert fake_discord.of("GET", "channels", thread["id"])
    assert fake_discord.of("PATCH", "channels", thread["id"])[1].json["content"] == "100 of them."
    follow_up = llm_server.requests[2]
    assert user_messages(follow_up)[-2:] == ["how many items?", "and over 2000?"]  # the history came from Redis
    assert any(m["role"] == "assistant" and m["content"] == "There are 300 items." for m in follow_up["messages"])

    # A thread pgbot never talked in still needs a mention.
    restarted._connection.parse_message_create(message_create("anyone?", channel_id=quiet["id"]))
    await fake_discord.handled()
    assert not fake_discord.of("POST", "channels", quiet["id"]) and len(llm_server.requests) == 4


async def test_feedback_on_a_real_answer_lands_in_the_feedback_store(
    fake_discord: FakeDiscord, make_client: ClientFactory, stack: AgentFactory, llm_server: ScriptedLlmServer,
    fresh_db: str,
) -> None:
    client = await make_client(stack())
    llm_server.script(llm.tool_call("run_query", {"sql": "SELECT max(qty) AS top FROM items"}),
                      llm.text("The largest quantity is 3000."))
    _, thread, post, edit = await mention(fake_discord, client, "what is the largest quantity?")
    _sql, up, down, _edit = custom_ids(edit.json)
    assert up.startswith("pgbot:fb:up:") and down == up.replace(":up:", ":down:")
    click = fake_discord.click(up, message=fake_discord.messages[post.response["id"]], thread=thread.response,
                               clicker=EVE)
    client._connection.parse_interaction_create(click)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks")) == 1)
    assert fake_discord.of("POST", "interactions", click["id"])[0].json == {"type": 5, "data": {"flags": 64}}
    note = fake_discord.of("POST", "webhooks")[0].json
    assert note["content"].startswith("Thanks! 👍 recorded") and note["flags"] & 64  # only the clicker sees it
    conn = await asyncpg.connect(fresh_db)
    try:
        row = await conn.fetchrow("SELECT question, sql, helpful, voted_by, asked_by FROM pgbot.feedback")
    finally:
        await conn.close()
    assert row is not None and dict(row) == {
        "question": "what is the largest quantity?", "sql": "SELECT max(qty) AS top FROM items", "helpful": True,
        "voted_by": f"discord:{EVE['id']}", "asked_by": f"discord:{USER_ID}",
    }


async def test_approval_round_trip_with_the_model_across_a_restart(
    fake_discord: FakeDiscord, make_client: ClientFactory, stack: AgentFactory, llm_server: ScriptedLlmServer,
    fresh_db: str,
) -> None:
    client = await make_client(stack())
    change = "UPDATE items SET qty = qty + 1 WHERE id = 7"
    llm_server.script(llm.tool_call("propose_change", {"sql": change}))
    data, thread, post, edit = await mention(fake_discord, client, "add one to item 7")
    approval, sql = edit.json["embeds"]
    assert approval["title"] == "Approve: UPDATE 1 row in items?" and sql["description"] == f"```sql\n{change};\n```"
    assert "id 7: qty 70 → 71" in approval["description"]
    approve_id, reject_id = custom_ids(edit.json)
    assert approve_id.startswith("pgbot:approve:") and reject_id == approve_id.replace("approve", "reject")
    shown = fake_discord.messages[post.response["id"]]

    # Someone who may not approve: told privately, nothing runs, the buttons stay.
    stranger = fake_discord.click(approve_id, message=shown, thread=thread.response, clicker=EVE)
    client._connection.parse_interaction_create(stranger)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks")) == 1)
    refusal = fake_discord.of("POST", "webhooks", BOT_ID, stranger["token"])[0].json
    assert "cannot approve" in refusal["content"] and refusal["flags"] & 64

    # pgbot restarts (new agent and client, same Redis): the approver's click still works, exactly once.
    restarted = await make_client(stack())
    click = fake_discord.click(approve_id, message=shown, thread=thread.response, clicker=DBA)
    restarted._connection.parse_interaction_create(click)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks", BOT_ID, click["token"])) == 1)
    outcome = fake_discord.of("POST", "webhooks", BOT_ID, click["token"])[0]
    assert outcome.response["channel_id"] == data["id"] and not outcome.json.get("flags")  # public, in the thread
    card_edits = fake_discord.of("PATCH", "channels", data["id"], "messages", post.response["id"])
    retired = card_edits[-1].json
    assert retired["content"].startswith("✅ Applied: UPDATE 1 in ") and retired["components"] == []

    again = fake_discord.click(reject_id, message=shown, thread=thread.response, clicker=DBA)  # a late double click
    restarted._connection.parse_interaction_create(again)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks", BOT_ID, again["token"])) == 1)
    late = fake_discord.of("POST", "webhooks", BOT_ID, again["token"])[0].json
    assert "already" in late["content"] and late["flags"] & 64
    await fake_discord.handled()
    assert len(fake_discord.of("PATCH", "channels", data["id"], "messages", post.response["id"])) == len(card_edits)
    assert await fetch(fresh_db, "SELECT qty FROM items WHERE id = 7") == 71  # ran once


async def test_a_click_on_an_expired_action_is_refused_to_the_clicker_only(
    fake_discord: FakeDiscord, make_client: ClientFactory, stack: AgentFactory, llm_server: ScriptedLlmServer,
    fresh_db: str, redis_url: str,
) -> None:
    client = await make_client(stack())
    llm_server.script(llm.tool_call("propose_change", {"sql": "DELETE FROM items WHERE id = 9"}))
    _, thread, post, edit = await mention(fake_discord, client, "delete item 9")
    approve_id, _ = custom_ids(edit.json)

    later = stack()  # restarted after the action's expiry
    later.approvals = Approvals(
        settings=later.settings, databases=later.databases, store=RedisApprovalStore(store_client(redis_url)),
        audit=AuditLog(later.databases), context=later.store,
        clock=lambda: time.time() + later.settings.approvals.expiry_s + 5,
    )
    restarted = await make_client(later)
    click = fake_discord.click(approve_id, message=fake_discord.messages[post.response["id"]],
                               thread=thread.response, clicker=DBA)
    restarted._connection.parse_interaction_create(click)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks")) == 1)
    expired = fake_discord.of("POST", "webhooks")[0].json
    assert "expired" in expired["content"] and expired["flags"] & 64
    await fake_discord.handled()
    assert not fake_discord.of("PATCH", "webhooks")
    assert await fetch(fresh_db, "SELECT count(*) FROM items WHERE id = 9") == 1


async def test_answers_over_2000_characters_are_cut_and_attached_whole(
    fake_discord: FakeDiscord, make_client: ClientFactory, stack: AgentFactory, llm_server: ScriptedLlmServer,
) -> None:
    client = await make_client(stack())
    long = "\n".join(f"Point {i}: quantities rise by ten for every item id." for i in range(80))
    assert len(long) > 3000
    llm_server.script(llm.tool_call("run_query", {"sql": "SELECT 1 AS one"}), llm.text(long))
    _, _, _, edit = await mention(fake_discord, client, "explain the quantities")
    assert len(edit.json["content"]) <= 2000
    assert edit.json["content"].endswith("\n-# cut here: the whole answer is in answer.md")
    assert edit.files["answer.md"].decode().startswith(long)
    assert custom_ids(edit.json)[1].startswith("pgbot:fb:up:")  # still rateable
