"""The Discord client: a mention opens a thread, "Working on it…" is posted there and edited into the answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Literal

import discord
import discord.http
import structlog

from adapters.discord.events import thread_name, to_core_message
from adapters.discord.render import render
from adapters.discord.views import DecisionButton, FeedbackButton, view_for
from core import Agent, Message, Reply, ReplyKind, render_error
from core.config import DiscordSettings

log = structlog.get_logger(__name__)

THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440  # a day of quiet before Discord archives the thread


class PgbotClient(discord.Client):
    """A ``discord.Client`` that answers through core; no slash commands, no business logic."""

    def __init__(self, *, agent: Agent, settings: DiscordSettings) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: enable "Message Content Intent" in the developer portal
        # Text from the model or the database must never ping @everyone, roles or users.
        super().__init__(intents=intents, allowed_mentions=discord.AllowedMentions.none())
        self.agent = agent
        self.settings = settings
        self.add_dynamic_items(DecisionButton, FeedbackButton)

    async def on_message(self, message: discord.Message) -> None:
        if self.user is None:
            return
        incoming = to_core_message(message, bot_user_id=self.user.id, allowed_guilds=self.settings.allowed_guilds)
        if incoming is None:
            return
        # The thread is opened with the first reply: a redelivered message (another replica answers it, or a
        # gateway replay) gets no reply from core, and so no empty thread either.
        await self.answer(incoming, lambda: self._conversation(message, incoming))

    async def _conversation(self, message: discord.Message, incoming: Message) -> discord.abc.Messageable:
        """Where the replies go: the thread or DM it came from, else a new thread on the message."""
        if message.guild is None or isinstance(message.channel, discord.Thread):
            return message.channel
        try:
            return await message.create_thread(
                name=thread_name(incoming.text), auto_archive_duration=THREAD_ARCHIVE_MINUTES
            )
        except discord.HTTPException as exc:  # no thread permission or a channel without threads
            log.warning("discord_thread_create_failed", channel=message.channel.id, status=exc.status)
            return message.channel

    async def answer(
        self, incoming: Message, where: discord.abc.Messageable | Callable[[], Awaitable[discord.abc.Messageable]]
    ) -> None:
        """Post the working reply, then edit it into each later reply (extra ones are posted)."""
        live: discord.Message | None = None
        channel = where if isinstance(where, discord.abc.Messageable) else None
        try:
            # Closed at once if posting fails, so core releases the thread's turn lock without waiting for GC.
            async with aclosing(self.agent.handle(incoming)) as replies:
                async for reply in replies:
                    if channel is None:
                        channel = await where()  # type: ignore[operator]
                    live = await self._show(channel, reply, live)
        except discord.HTTPException as exc:
            log.error("discord_post_failed", status=exc.status, code=exc.code)
        except Exception as exc:
            if channel is not None:
                await self._show(channel, render_error(exc), live)
            else:
                log.exception("discord_answer_failed")

    async def _show(
        self, channel: discord.abc.Messageable, reply: Reply, live: discord.Message | None
    ) -> discord.Message | None:
        """Edit the live "working" message if there is one, else send; return the message still live."""
        shown = render(reply)
        view = view_for(reply)
        try:
            message = await _put(channel, live, content=shown.content, embeds=shown.embeds, view=view)
        except discord.HTTPException as exc:
            if reply.kind is ReplyKind.WORKING or exc.status != 400:
                raise
            # Embeds Discord refuses (a limit we missed) must not leave "Working on it…" forever: text only.
            log.warning("discord_embeds_refused", code=exc.code)
            message = await _put(channel, live, content=shown.content, embeds=[], view=view)
        return message if reply.kind is ReplyKind.WORKING else None


async def _put(
    channel: discord.abc.Messageable, live: discord.Message | None, *, content: str, embeds: list[discord.Embed],
    view: discord.ui.View | None,
) -> discord.Message:
    if live is not None:
        return await live.edit(content=content, embeds=embeds, view=view)
    if view is not None:
        return await channel.send(content=content, embeds=embeds, view=view)
    return await channel.send(content=content, embeds=embeds)


def build_discord_client(agent: Agent, settings: DiscordSettings) -> PgbotClient:
    """The client, not yet logged in. ``settings.api_base_url`` (tests, proxies) redirects discord.py's REST
    calls for the whole process, since discord.py keeps its base URL in a class attribute."""
    if settings.api_base_url:
        discord.http.Route.BASE = settings.api_base_url.rstrip("/")
    return PgbotClient(agent=agent, settings=settings)
