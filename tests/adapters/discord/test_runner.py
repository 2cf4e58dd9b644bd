"""run_discord's one-line errors: a missing token, and a token Discord rejects (through discord.py's login)."""

from __future__ import annotations

import pytest

from adapters.discord.runner import run_discord
from core import ConfigError
from core.config import DiscordSettings
from tests.adapters.discord.fake_discord import FakeDiscord
from tests.adapters.slack.agent_double import IdleAgentDouble


async def test_missing_token_is_one_clear_line() -> None:
    with pytest.raises(ConfigError) as caught:
        await run_discord(IdleAgentDouble(), DiscordSettings())  # type: ignore[arg-type]
    assert str(caught.value) == "discord.token is not set (PGBOT_DISCORD__TOKEN)"


async def test_rejected_token_is_one_clear_line(fake_discord: FakeDiscord) -> None:
    settings = DiscordSettings(token="rejected-token", api_base_url=fake_discord.api_url)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as caught:
        await run_discord(IdleAgentDouble(), settings)  # type: ignore[arg-type]
    assert str(caught.value) == "discord.token was rejected by Discord (check PGBOT_DISCORD__TOKEN)"
    assert "rejected-token" not in str(caught.value)
