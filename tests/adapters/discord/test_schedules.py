"""Schedules over the Discord stand-in: the card's buttons (custom_id ``pgbot:sched:<change>:<id>``) and a due
run posted into the thread the schedule was made in, through the client's sender."""

from __future__ import annotations

import datetime as dt

import asyncpg

from bot.wiring import build_agent
from core import Agent, Settings
from core.schedules import ManualClock, MemoryRunClaims, Scheduler
from tests.adapters.discord.conftest import ClientFactory
from tests.adapters.discord.fake_discord import APPROVER_ID, BOT_ID, USER_ID, FakeDiscord, member, user
from tests.adapters.discord.test_bot import custom_ids, mention
from tests.adapters.discord.test_guild_roles import ALICE, ENGINEERS, add_guild_roles, ask
from tests.helpers import ITEMS_SQL, wait_until
from tests.services import throwaway_role


async def test_schedule_buttons_and_a_due_run_in_the_thread(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    assert shop_agent.schedules is not None
    clock = ManualClock(dt.datetime(2026, 3, 30, 6, 0, tzinfo=dt.UTC))
    shop_agent.schedules.clock = clock
    client = await make_client(shop_agent)
    data, thread, post, edit = await mention(
        fake_discord, client, '/schedule "every hour" SELECT count(*) AS n FROM items')
    assert "Scheduled: At the start of every hour" in edit.json["content"]
    pause_id, delete_id = custom_ids(edit.json)
    schedule_id = pause_id.removeprefix("pgbot:sched:pause:")
    assert delete_id == f"pgbot:sched:delete:{schedule_id}"
    assert f"• `{schedule_id}` At the start of every hour" in edit.json["content"]
    shown = fake_discord.messages[post.response["id"]]

    eve = user("1200000000000000555", "eve")
    stranger = fake_discord.click(pause_id, message=shown, thread=thread.response, clicker=eve)
    client._connection.parse_interaction_create(stranger)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks")) == 1)
    refusal = fake_discord.of("POST", "webhooks", BOT_ID, stranger["token"])[0]
    assert "only its creator or an approver" in refusal.json["content"] and refusal.json["flags"] & 64

    approver = fake_discord.click(pause_id, message=shown, thread=thread.response, clicker=user(APPROVER_ID, "dba"))
    client._connection.parse_interaction_create(approver)
    await fake_discord.wait_for(lambda f: len(f.of("POST", "webhooks")) == 2)
    paused = fake_discord.of("POST", "webhooks", BOT_ID, approver["token"])[0]
    assert f"Schedule {schedule_id} paused by discord:{APPROVER_ID}" in paused.json["content"]
    assert not paused.json.get("flags", 0) & 64  # the channel sees who paused it
    assert custom_ids(paused.json) == [f"pgbot:sched:resume:{schedule_id}", delete_id]
    await shop_agent.schedules.change(schedule_id, "resume", by=f"discord:{APPROVER_ID}")

    await wait_until(client.is_ready, describe=lambda: "client not ready")
    scheduler = Scheduler(schedules=shop_agent.schedules, claims=MemoryRunClaims(), clock=clock)
    clock.set(dt.datetime(2026, 3, 30, 7, 0, 3, tzinfo=dt.UTC))
    posts = len(fake_discord.of("POST", "channels", data["id"], "messages"))
    assert await scheduler.tick() == 1
    report = fake_discord.of("POST", "channels", data["id"], "messages")[posts]  # the thread's id is the message's
    assert report.json["content"].startswith("Scheduled report: SELECT count(*) AS n FROM items (At the start of")
    result = report.json["embeds"][0]  # a one-row result: name / value fields, then the SQL's embed
    assert [(f["name"], f["value"]) for f in result["fields"]] == [("n", "300")]


async def test_a_schedule_made_through_a_guild_role_stops_when_the_role_is_taken_away(
    fake_discord: FakeDiscord, make_client: ClientFactory, fresh_db: str, pg_admin_dsn: str
) -> None:
    """The config maps the guild role, not the person: each run asks Discord for the creator's roles now."""
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(ITEMS_SQL)
    finally:
        await conn.close()
    async with throwaway_role(fresh_db, pg_admin_dsn, prefix="pgbot_sched_eng",
                              grants="GRANT SELECT ON items TO {role}") as engineer:
        settings = Settings(databases={"shop": {"dsn": fresh_db, "roles": {f"discord-role:{ENGINEERS}": engineer}}})
        agent = build_agent(settings, use_llm=False)
        try:
            assert agent.schedules is not None
            clock = ManualClock(dt.datetime(2026, 3, 30, 6, 0, tzinfo=dt.UTC))
            agent.schedules.clock = clock
            client = await make_client(agent)
            add_guild_roles(client)
            edit = await ask(fake_discord, client, '/schedule "every hour" SELECT count(*) AS n FROM items',
                             author=ALICE, roles=[ENGINEERS])
            assert f"it runs as {engineer}" in edit.json["content"]
            data_channel = edit.path.split("/")[2]
            await wait_until(client.is_ready, describe=lambda: "client not ready")
            scheduler = Scheduler(schedules=agent.schedules, claims=MemoryRunClaims(), clock=clock)

            fake_discord.members[USER_ID] = member(ALICE, roles=[ENGINEERS])
            clock.set(dt.datetime(2026, 3, 30, 7, 0, 1, tzinfo=dt.UTC))
            posts = len(fake_discord.of("POST", "channels", data_channel, "messages"))
            assert await scheduler.tick() == 1
            ran = fake_discord.of("POST", "channels", data_channel, "messages")[posts]
            assert ran.json["content"].startswith("Scheduled report:") and "stopped" not in ran.json["content"]

            fake_discord.members[USER_ID] = member(ALICE, roles=[])  # an admin took the engineers role away
            clock.set(dt.datetime(2026, 3, 30, 8, 0, 1, tzinfo=dt.UTC))
            assert await scheduler.tick() == 1
            stopped = fake_discord.of("POST", "channels", data_channel, "messages")[posts + 1]
            assert f"This schedule is stopped: discord:{USER_ID} is no longer mapped" in stopped.json["content"]
            assert not stopped.json.get("embeds")  # nothing ran: no SQL, no table
            clock.set(dt.datetime(2026, 3, 30, 9, 0, 1, tzinfo=dt.UTC))
            assert await scheduler.tick() == 0
        finally:
            await agent.aclose()


async def test_a_chart_schedule_posts_its_png_as_an_attachment(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    assert shop_agent.schedules is not None
    clock = ManualClock(dt.datetime(2026, 3, 30, 6, 0, tzinfo=dt.UTC))
    shop_agent.schedules.clock = clock
    client = await make_client(shop_agent)
    data, _, _, edit = await mention(
        fake_discord, client, '/schedule "every hour" chart line SELECT id, qty FROM items ORDER BY id LIMIT 5')
    assert "with a chart of each result" in edit.json["content"]
    await wait_until(client.is_ready, describe=lambda: "client not ready")
    scheduler = Scheduler(schedules=shop_agent.schedules, claims=MemoryRunClaims(), clock=clock)
    clock.set(dt.datetime(2026, 3, 30, 7, 0, 3, tzinfo=dt.UTC))
    posts = len(fake_discord.of("POST", "channels", data["id"], "messages"))
    assert await scheduler.tick() == 1
    report = fake_discord.of("POST", "channels", data["id"], "messages")[posts]
    assert report.json["content"].startswith("Scheduled report: SELECT id, qty FROM items")
    assert report.json["embeds"]  # the table still shows
    assert report.files["chart-line.png"].startswith(b"\x89PNG\r\n\x1a\n")
