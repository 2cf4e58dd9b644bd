"""run_discord: the whole start-up over the fake's REST API and gateway, and one-line errors for a missing token
and a token Discord rejects (through discord.py's login)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import discord
import pytest
from structlog.testing import capture_logs

from adapters.discord.bot import PERMISSIONS, invite_url
from adapters.discord.runner import run_discord
from core import Agent, ConfigError
from core.config import DiscordSettings
from tests.adapters.discord.fake_discord import (
    APP_ID,
    BOT_ID,
    BOT_USER,
    CHANNEL_ID,
    FakeDiscord,
    Fault,
    message_create,
)
from tests.adapters.slack.agent_double import IdleAgentDouble
from tests.helpers import wait_until


async def test_missing_token_is_one_clear_line() -> None:
    with pytest.raises(ConfigError) as caught:
        await run_discord(IdleAgentDouble(), DiscordSettings())  # type: ignore[arg-type]
    assert str(caught.value) == "discord.token is not set (DISCORD_TOKEN, PGBOT_DISCORD__TOKEN or [discord] token)"


async def test_rejected_token_is_one_clear_line(fake_discord: FakeDiscord) -> None:
    settings = DiscordSettings(token="rejected-token", api_base_url=fake_discord.api_url)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as caught:
        await run_discord(IdleAgentDouble(), settings)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "discord.token was rejected by Discord (check DISCORD_TOKEN, PGBOT_DISCORD__TOKEN or [discord] token)")
    assert "rejected-token" not in str(caught.value)


async def test_the_bot_dials_the_gateway_the_configured_api_names_and_answers_a_mention(
    fake_discord: FakeDiscord, shop_agent: Agent
) -> None:
    """``run_discord`` end to end: REST at ``api_base_url``, the gateway URL from its GET /gateway/bot, IDENTIFY
    with the intents pgbot needs, then a MESSAGE_CREATE over the websocket answered in a new thread."""
    settings = DiscordSettings(token="test-token", api_base_url=fake_discord.api_url)  # type: ignore[arg-type]
    bot = asyncio.create_task(run_discord(shop_agent, settings))
    try:
        with capture_logs() as logs:
            await fake_discord.wait_for(lambda f: f.identify is not None)
            assert fake_discord.of("GET", "gateway", "bot")
            identify = fake_discord.identify
            assert identify is not None and identify["token"] == "test-token"
            intents = discord.Intents._from_value(identify["intents"])
            assert intents.message_content and intents.guild_messages and intents.dm_messages and intents.guilds
            assert not intents.members and not intents.presences  # no other privileged intent is asked for

            fake_discord.dispatch("MESSAGE_CREATE", message_create(f"<@{BOT_ID}> /sql SELECT 2 AS two",
                                                                   mentions=[BOT_USER]))
            await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 1)
            assert fake_discord.of("POST", "channels", CHANNEL_ID, "messages")[0].json["name"] == (
                "/sql SELECT 2 AS two")
            assert fake_discord.of("PATCH", "channels")[0].json["content"] == "1 row"
            # discord.py fires on_ready once no GUILD_CREATE has come for 2 s; pgbot logs its invite URL then.
            await wait_until(lambda: any(e["event"] == "discord_ready" for e in logs), describe=lambda: logs)
        (ready,) = [e for e in logs if e["event"] == "discord_ready"]
        assert ready["guilds"] == 1 and ready["invite"] == invite_url(int(BOT_ID))
    finally:
        bot.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bot


def test_readme_invite_matches_what_the_bot_needs() -> None:
    """The README's permissions integer and scopes are the ones the adapter checks for and logs."""
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    assert invite_url(int(APP_ID)).replace(APP_ID, "<APPLICATION_ID>") in readme
    assert f"**{PERMISSIONS.value}**" in readme and "Message Content Intent" in readme


async def test_an_api_without_a_gateway_is_one_clear_line(fake_discord: FakeDiscord) -> None:
    fake_discord.fail(Fault("GET", "/gateway/bot", 404, {"message": "404: Not Found", "code": 0}))
    settings = DiscordSettings(token="test-token", api_base_url=fake_discord.api_url)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as caught:
        await run_discord(IdleAgentDouble(), settings)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"GET /gateway/bot failed at {fake_discord.api_url}: Discord may be down, or [discord] api_base_url is not "
        "a Discord-compatible API"
    )
