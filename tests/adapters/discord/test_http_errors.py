"""Discord refusing or failing REST calls: 429s and 500s are retried by discord.py itself (against the local
server, with Discord's headers), 503 and 403 end in a logged error that names the cause; nothing crashes."""

from __future__ import annotations

from structlog.testing import capture_logs

from core import Agent
from tests.adapters.discord.conftest import ClientFactory
from tests.adapters.discord.fake_discord import (
    BOT_ID,
    BOT_USER,
    CHANNEL_ID,
    FakeDiscord,
    Fault,
    message_create,
    missing_permissions,
    rate_limited,
)


def mention_data(text: str) -> dict[str, object]:
    return message_create(f"<@{BOT_ID}> {text}", mentions=[BOT_USER])


async def test_a_429_is_waited_out_and_retried(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    client = await make_client(shop_agent)
    data = mention_data("/sql SELECT 1 AS one")
    fake_discord.fail(rate_limited("POST", f"/channels/{data['id']}/messages", retry_after=0.05))
    client._connection.parse_message_create(data)
    await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 1)
    posts = fake_discord.of("POST", "channels", data["id"], "messages")
    assert [p.status for p in posts] == [429, 200]
    assert posts[0].json == posts[1].json and posts[1].json["content"] == "⏳ Working on it…"
    assert fake_discord.of("PATCH", "channels")[0].json["content"] == "1 row"


async def test_a_500_is_retried_and_the_answer_still_arrives(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    client = await make_client(shop_agent)
    data = mention_data("/sql SELECT 1 AS one")
    fake_discord.fail(Fault("PATCH", f"/channels/{data['id']}/messages", 500, {"message": "500: Internal Server Error",
                                                                              "code": 0}))
    client._connection.parse_message_create(data)
    await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 2)  # discord.py waits 1 s first
    assert [p.status for p in fake_discord.of("PATCH", "channels")] == [500, 200]


async def test_a_503_is_logged_and_the_thread_stays_usable(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    client = await make_client(shop_agent)
    data = mention_data("/sql SELECT 1 AS one")
    fake_discord.fail(Fault("PATCH", f"/channels/{data['id']}/messages", 503,
                            {"message": "upstream connect error", "code": 0}))
    with capture_logs() as logs:
        client._connection.parse_message_create(data)
        await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 1)
        await fake_discord.handled()
    (failed,) = [e for e in logs if e["event"] == "discord_post_failed"]
    assert failed["status"] == 503 and failed["log_level"] == "error" and failed["hint"] is None
    # The turn's lock was released: the next message in that thread is answered.
    client._connection.parse_thread_create({**fake_discord.channels[str(data["id"])], "newly_created": True})
    client._connection.parse_message_create(message_create("/sql SELECT 2 AS two", channel_id=str(data["id"])))
    await fake_discord.wait_for(lambda f: [p.status for p in f.of("PATCH", "channels")] == [503, 200])


async def test_missing_permissions_are_logged_with_what_to_grant(
    fake_discord: FakeDiscord, make_client: ClientFactory, shop_agent: Agent
) -> None:
    client = await make_client(shop_agent)
    # No "Create Public Threads": pgbot answers in the channel instead, and says why in the log.
    data = mention_data("/sql SELECT 1 AS one")
    fake_discord.fail(missing_permissions("POST", f"/channels/{CHANNEL_ID}/messages/{data['id']}/threads"))
    with capture_logs() as logs:
        client._connection.parse_message_create(data)
        await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels", CHANNEL_ID)) == 1)
    assert fake_discord.of("POST", "channels", CHANNEL_ID, "messages")[-1].json["content"] == "⏳ Working on it…"
    (warned,) = [e for e in logs if e["event"] == "discord_thread_create_failed"]
    assert warned["status"] == 403 and "Create Public Threads" in warned["hint"]

    # No "Send Messages" either: nothing can be said in chat, so the log says it (code 50013), once.
    data = mention_data("/sql SELECT 1 AS one")
    fake_discord.fail(missing_permissions("POST", f"/channels/{CHANNEL_ID}/messages/{data['id']}/threads"))
    fake_discord.fail(missing_permissions("POST", f"/channels/{CHANNEL_ID}/messages", times=5))
    with capture_logs() as logs:
        client._connection.parse_message_create(data)
        await fake_discord.wait_for(lambda f: any(e["event"] == "discord_post_failed" for e in logs))
        await fake_discord.handled()
    (failed,) = [e for e in logs if e["event"] == "discord_post_failed"]
    assert (failed["status"], failed["code"]) == (403, 50013) and "Send Messages" in failed["hint"]
