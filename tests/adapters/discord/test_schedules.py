"""Schedules over the Discord stand-in: the card's buttons (custom_id ``pgbot:sched:<change>:<id>``) and a due
run posted into the thread the schedule was made in, through the client's sender."""

from __future__ import annotations

import datetime as dt

from core import Agent
from core.schedules import ManualClock, MemoryRunClaims, Scheduler
from tests.adapters.discord.conftest import ClientFactory
from tests.adapters.discord.fake_discord import APPROVER_ID, BOT_ID, FakeDiscord, user
from tests.adapters.discord.test_bot import custom_ids, mention
from tests.helpers import wait_until


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
    assert report.json["embeds"][1]["description"].splitlines()[1:4] == ["  n", "---", "300"]
