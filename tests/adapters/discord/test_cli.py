"""``pgbot discord --config FILE`` as a real process: settings from the [discord] section, REST at its
api_base_url, the gateway URL from that server's GET /gateway/bot, and a mention answered over the gateway."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.adapters.discord.fake_discord import BOT_ID, BOT_USER, GUILD_ID, FakeDiscord, message_create, result_text

TOKEN = "discord-SECRET-token-777"


async def test_pgbot_discord_starts_from_its_config_section(
    fake_discord: FakeDiscord, tmp_path: Path, fresh_db: str
) -> None:
    config = tmp_path / "pgbot.toml"
    config.write_text(f'[databases.shop]\ndsn = "{fresh_db}"\n\n[discord]\ntoken = "{TOKEN}"\n'
                      f'api_base_url = "{fake_discord.api_url}"\nallowed_guilds = [{GUILD_ID}]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGBOT_", "OPENAI_", "DISCORD_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "discord", "--config", str(config), cwd=str(tmp_path), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await fake_discord.wait_for(lambda f: f.identify is not None, within_s=30)
        assert fake_discord.identify is not None and fake_discord.identify["token"] == TOKEN
        assert fake_discord.of("GET", "gateway", "bot") and fake_discord.commands[0]["name"] == "pgbot"
        fake_discord.dispatch("MESSAGE_CREATE", message_create(f"<@{BOT_ID}> /sql SELECT 40 + 2 AS answer",
                                                               mentions=[BOT_USER]))
        await fake_discord.wait_for(lambda f: len(f.of("PATCH", "channels")) == 1)
        assert "answer: 42" in result_text(fake_discord.of("PATCH", "channels")[0].json)
    finally:
        proc.terminate()
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    logs = (out + err).decode()
    assert "query_ran" in logs and "Traceback" not in logs and TOKEN not in logs
