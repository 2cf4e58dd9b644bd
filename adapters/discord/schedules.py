"""Scheduled posts into Discord: core's :class:`core.schedules.Sender` over the logged-in client.

A schedule is addressed as the adapter addresses a conversation: the thread's id (a thread pgbot opened, or a
DM channel), else its parent channel when the thread is gone. Runs wait while the gateway is not ready.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord

from adapters.discord.events import PLATFORM, member_groups
from core import Destination, PgbotError, Reply

Post = Callable[[discord.abc.Messageable, Reply], Awaitable[object]]


class DiscordSender:
    """``post`` sends one reply the way the client sends answers (embeds, files, buttons, text fallback)."""

    def __init__(self, client: discord.Client, *, post: Post) -> None:
        self.client = client
        self.post = post

    def ready(self) -> bool:
        return self.client.is_ready() and not self.client.is_closed()

    async def send(self, destination: Destination, replies: Sequence[Reply]) -> None:
        channel = await self._channel(destination)
        for reply in replies:
            await self.post(channel, reply)

    async def current_groups(self, destination: Destination, identity: str) -> tuple[str, ...] | None:
        """The creator's guild roles now, fetched from Discord (not the cache); () once they left the guild."""
        platform, _, user_id = identity.partition(":")
        if platform != PLATFORM or not user_id.isdigit() or not destination.workspace.isdigit():
            return None  # a DM, or not a Discord identity: the stored groups stand
        guild = self.client.get_guild(int(destination.workspace))
        if guild is None:
            return ()  # pgbot is no longer in that guild
        try:
            return member_groups(await guild.fetch_member(int(user_id)))
        except discord.NotFound:
            return ()
        except discord.HTTPException as exc:
            raise PgbotError("Discord did not answer the look-up of the creator's roles") from exc

    async def _channel(self, destination: Destination) -> discord.abc.Messageable:
        for raw in (destination.thread, destination.channel):
            if not raw.isdigit():
                continue
            channel: Any = self.client.get_channel(int(raw))
            if channel is None:
                try:
                    channel = await self.client.fetch_channel(int(raw))
                except (discord.NotFound, discord.Forbidden):
                    continue  # the thread was deleted, or pgbot was removed from it: try its channel
            if isinstance(channel, discord.abc.Messageable):
                return channel
        raise PgbotError(f"Discord channel {destination.channel} / thread {destination.thread} cannot be reached")
