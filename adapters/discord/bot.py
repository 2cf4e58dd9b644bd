"""The Discord client: a mention opens a thread, "Working on it…" is posted there and edited into the answer;
``/pgbot ask`` answers through the interaction. Translation only: core decides everything else."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing, suppress
from typing import Any, Literal

import discord
import discord.http
import structlog
import yarl
from discord import app_commands

from adapters.discord import events
from adapters.discord.card_flow import card_sweep
from adapters.discord.commands import pgbot_commands
from adapters.discord.edit import EditSqlButton
from adapters.discord.render import CONTENT_LIMIT, DiscordMessage, render
from adapters.discord.schedules import DiscordSender
from adapters.discord.turn_views import (
    NOTIFY_AFTER_S,
    CancelButton,
    OptionButton,
    noticed,
    working_content,
    working_line,
)
from adapters.discord.views import (
    ChartButton,
    DecisionButton,
    ExportButton,
    FeedbackButton,
    ScheduleButton,
    ShowSqlButton,
    UndoButton,
    export_attachment,
    view_for,
)
from adapters.live_line import TurnLine
from adapters.text_table import cut
from core import Agent, ConfigError, Message, PgbotError, Reply, ReplyKind, render_error
from core.config import ChatSettings, DiscordSettings

log = structlog.get_logger(__name__)

THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440  # a day of quiet before Discord archives the thread
TYPING_EVERY_S = 8.0  # Discord shows "is typing…" for about 10 s per trigger
PROGRESS_EVERY_S = 15.0  # a live line ("Working on it…", a running card) refreshes its elapsed time this often
# What the invite grants (README: the permissions integer); the log names them when Discord answers 403.
PERMISSIONS = discord.Permissions(
    view_channel=True, send_messages=True, send_messages_in_threads=True, create_public_threads=True,
    read_message_history=True, embed_links=True, attach_files=True,
)
SCOPES = ("bot", "applications.commands")
MISSING_PERMISSIONS = (
    "pgbot lacks a Discord permission here: it needs View Channel, Send Messages, Send Messages in Threads, "
    "Create Public Threads, Read Message History, Embed Links and Attach Files"
)
NOT_HERE = "pgbot is not enabled in this server or channel."
NO_THREAD = (
    "I could not open a thread on this answer (pgbot needs the Create Public Threads permission here). "
    "Use /pgbot ask again, or mention me, to continue."
)

Put = Callable[[DiscordMessage], Awaitable[discord.Message]]


class PgbotClient(discord.Client):
    """A ``discord.Client`` that answers through core, with the ``/pgbot`` command tree; no business logic."""

    def __init__(
        self, *, agent: Agent, settings: DiscordSettings, chat: ChatSettings | None = None,
        progress_every_s: float = PROGRESS_EVERY_S,
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: enable "Message Content Intent" in the developer portal
        # Text from the model or the database must never ping @everyone, roles or users.
        super().__init__(intents=intents, allowed_mentions=discord.AllowedMentions.none())
        self.agent = agent
        self.settings = settings
        self.chat = chat or ChatSettings()  # how answers look ([chat])
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(pgbot_commands(self))
        self.add_dynamic_items(DecisionButton, FeedbackButton, ChartButton, ShowSqlButton, ExportButton,
                               ScheduleButton, UndoButton, CancelButton, OptionButton)
        if agent.schedules is not None:  # scheduled reports post through this client once it is ready
            agent.schedules.senders.register(events.PLATFORM, DiscordSender(self, post=post_reply))
        self.add_dynamic_items(EditSqlButton)
        self.sweep = card_sweep(agent)  # approval cards posted here turn to "Expired" on time
        self.progress_every_s = progress_every_s  # how often a live line refreshes its elapsed time

    async def setup_hook(self) -> None:
        """After login, before the gateway: take the gateway URL from the configured API, register /pgbot."""
        await self._use_gateway_of_api()
        try:
            await self.tree.sync()
        except discord.HTTPException as exc:  # the bot still answers mentions without the command
            log.error("discord_command_sync_failed", status=exc.status, code=exc.code, error=exc.text)

    async def close(self) -> None:
        """Also stop discord.py's pending "ready" task: it waits up to 2 s after READY for more GUILD_CREATEs,
        and a client closed in that window (SIGTERM right after connecting) would otherwise dispatch on_ready
        into a closed client and log a traceback on exit."""
        ready_task: asyncio.Task[None] | None = getattr(self._connection, "_ready_task", None)
        if ready_task is not None:
            ready_task.cancel()
        await super().close()

    async def on_ready(self) -> None:
        """Log where pgbot is and the invite URL with the scopes and permissions it needs."""
        if self.user is not None:
            log.info("discord_ready", user=str(self.user), guilds=len(self.guilds), invite=invite_url(self.user.id))

    async def _use_gateway_of_api(self) -> None:
        """discord.py's plain Client always dials wss://gateway.discord.gg; ask the configured API instead,
        so a Discord-compatible server (or a test) serves the gateway too. Like Route.BASE it is per process."""
        try:
            _, url, _ = await self.http.get_bot_gateway()
        except discord.GatewayNotFound as exc:
            raise ConfigError(
                f"GET /gateway/bot failed at {discord.http.Route.BASE}: Discord may be down, or [discord] "
                "api_base_url is not a Discord-compatible API"
            ) from exc.__cause__
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)

    # --- mentions and thread replies ----------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        if self.user is None or events.never_answered(
            message, bot_user_id=self.user.id, allowed_guilds=self.settings.allowed_guilds
        ):
            return  # decided before any REST call or context lookup
        channel = await self._channel_of(message)
        if channel is None:
            return
        incoming = events.to_core_message(
            message, channel=channel, bot_user_id=self.user.id, allowed_guilds=self.settings.allowed_guilds,
            allowed_channels=self.settings.allowed_channels,
        )
        if incoming is None:
            return
        if not events.addressed(message, channel=channel, bot_user_id=self.user.id) and not (
            isinstance(channel, discord.Thread) and await self._in_conversation(incoming)
        ):
            return
        # The thread is opened with the first reply: a redelivered message (another replica answers it, or a
        # gateway replay) gets no reply from core, and so no empty thread either.
        await self.answer(incoming, lambda: self._conversation(message, channel, incoming))

    async def _channel_of(self, message: discord.Message) -> events.Channel | None:
        """The message's channel; a thread missing from the cache (after a restart, an archived thread) comes
        as a PartialMessageable and is fetched once, so its parent channel and owner are known."""
        channel = message.channel
        if message.guild is None or not isinstance(channel, discord.PartialMessageable):
            return channel
        try:
            fetched = await self.fetch_channel(channel.id)
        except discord.HTTPException as exc:
            log.warning("discord_channel_fetch_failed", channel=channel.id, status=exc.status, code=exc.code)
            return None
        return fetched if isinstance(fetched, discord.abc.Messageable) else None

    async def _in_conversation(self, incoming: Message) -> bool:
        """A thread pgbot did not open but has talked in: core's context store knows (any replica, any restart)."""
        try:
            return await self.agent.in_conversation(incoming.thread_key)
        except PgbotError as exc:  # context store down: such replies wait for a mention
            log.warning("discord_thread_lookup_failed", thread=incoming.thread, error=exc.user_message)
            return False

    async def _conversation(
        self, message: discord.Message, channel: events.Channel, incoming: Message
    ) -> discord.abc.Messageable:
        """Where the replies go: the thread or DM it came from, else a new thread on the message."""
        if (message.guild is None or isinstance(channel, discord.Thread)) and isinstance(
            channel, discord.abc.Messageable
        ):
            return channel
        try:
            return await message.create_thread(
                name=events.thread_name(incoming.text), auto_archive_duration=THREAD_ARCHIVE_MINUTES
            )
        except discord.HTTPException as exc:  # no thread permission or a channel without threads
            log.warning("discord_thread_create_failed", channel=message.channel.id, status=exc.status,
                        code=exc.code, hint=MISSING_PERMISSIONS if exc.status == 403 else None)
            return message.channel

    async def answer(
        self, incoming: Message, where: discord.abc.Messageable | Callable[[], Awaitable[discord.abc.Messageable]]
    ) -> None:
        """Post the working reply, then edit it into each later reply (extra ones are posted); typing shows
        from the working message until the last reply. ``where`` may be a callable that opens the thread,
        called only when core has something to say."""
        live: discord.Message | None = None
        typing: asyncio.Task[None] | None = None
        line: TurnLine | None = None
        started = time.monotonic()
        channel = where if isinstance(where, discord.abc.Messageable) else None
        try:
            # Closed at once if posting fails, so core releases the thread's turn lock without waiting for GC.
            async with aclosing(self.agent.handle(incoming)) as replies:
                async for reply in replies:
                    if channel is None:
                        channel = await where()  # type: ignore[operator]
                    if line is not None:
                        await line.stop()
                        line = None
                    notify = None
                    took = time.monotonic() - started
                    if reply.kind is not ReplyKind.WORKING and live is not None and took >= NOTIFY_AFTER_S:
                        notify = incoming.user  # an edit notifies nobody: a new message naming the asker
                        with suppress(discord.HTTPException):
                            await live.delete()
                        live = None
                    shown = await self._show(channel, reply, live, notify=notify, took_s=took)
                    live = shown if reply.kind is ReplyKind.WORKING else None
                    if reply.kind is ReplyKind.WORKING and shown is not None:
                        if typing is None:
                            typing = asyncio.create_task(_keep_typing(channel))
                        turn = reply.turn_id
                        status = self.agent.turn_status(turn) if turn else None
                        line = working_line(shown, reply, status, every_s=self.progress_every_s)
                    elif reply.approval is not None and shown is not None:
                        self.sweep.watch(reply.approval.action_id, expires_at=reply.approval.expires_at, where=shown)
        except discord.HTTPException as exc:
            _log_http_error("discord_post_failed", exc, thread=incoming.thread)
        except Exception as exc:
            if channel is not None:
                await self._show(channel, render_error(exc), live)
            else:
                log.exception("discord_answer_failed")
        finally:
            if line is not None:
                await line.stop()
            if typing is not None:
                typing.cancel()
                with suppress(asyncio.CancelledError):
                    await typing

    async def _show(
        self, channel: discord.abc.Messageable, reply: Reply, live: discord.Message | None, *,
        notify: str | None = None, took_s: float = 0.0,
    ) -> discord.Message:
        """Edit the live "working" message if there is one, else send; return the message shown. ``notify``:
        the asker's user id, named (and pinged) at the top of a long turn's answer."""
        view = view_for(reply, show_sql=self.chat.show_sql)

        async def put(shown: DiscordMessage) -> discord.Message:
            files = [f.to_file() for f in shown.files]
            if reply.kind is ReplyKind.WORKING:
                shown.content = working_content(reply)
            mentions = shown.mentions
            if notify is not None and notify.isdigit():
                shown.content = noticed(shown.content, user=notify, took_s=took_s)
                mentions = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(int(notify))])
            if live is not None:
                if files:
                    return await live.edit(content=shown.content, embeds=shown.embeds, attachments=files, view=view)
                return await live.edit(content=shown.content, embeds=shown.embeds, view=view)
            extra: dict[str, Any] = {"view": view} if view is not None else {}
            if files:
                extra["files"] = files
            if mentions is not None:
                extra["allowed_mentions"] = mentions
            return await channel.send(content=shown.content, embeds=shown.embeds, **extra)

        return await deliver(put, reply, show_sql=self.chat.show_sql)

    # --- /pgbot ask -----------------------------------------------------------------------------------------

    async def ask(self, interaction: discord.Interaction[Any], question: str) -> None:
        """``/pgbot ask``: deferred at once (Discord's 3 s), answered by editing the deferred response; in a
        channel a thread is then opened on the answer so the conversation continues there without mentions."""
        channel = interaction.channel
        if channel is None or not events.allowed_place(
            guild_id=interaction.guild_id, channel=channel, allowed_guilds=self.settings.allowed_guilds,
            allowed_channels=self.settings.allowed_channels,
        ):
            await interaction.response.send_message(NOT_HERE, ephemeral=True)
            return
        opens_thread = interaction.guild_id is not None and not isinstance(channel, discord.Thread)
        try:
            await interaction.response.defer(thinking=True)  # an expired interaction (over 3 s) fails here
            original = await interaction.original_response() if opens_thread else None
            incoming = events.command_message(
                question=question, guild_id=interaction.guild_id, channel=channel, user=interaction.user,
                thread=str(original.id) if original is not None else None,
            )
            await self._answer_interaction(interaction, incoming)
            if original is not None:
                await self._thread_on_answer(interaction, original, question)
        except discord.HTTPException as exc:
            _log_http_error("discord_command_failed", exc, interaction=interaction.id)

    async def _thread_on_answer(
        self, interaction: discord.Interaction[Any], original: discord.InteractionMessage, question: str
    ) -> None:
        """Open the thread follow-ups go to; if Discord refuses, the asker is told privately why."""
        try:
            await original.create_thread(
                name=events.thread_name(question), auto_archive_duration=THREAD_ARCHIVE_MINUTES
            )
        except discord.HTTPException as exc:
            _log_http_error("discord_thread_create_failed", exc, interaction=interaction.id)
            if isinstance(exc, discord.Forbidden):
                await interaction.followup.send(NO_THREAD, ephemeral=True)

    async def _answer_interaction(self, interaction: discord.Interaction[Any], incoming: Message) -> None:
        """The first reply after WORKING replaces the "thinking…" response; any later one is a followup."""
        first = True
        async with aclosing(self.agent.handle(incoming)) as replies:
            try:
                async for reply in replies:
                    if reply.kind is ReplyKind.WORKING:
                        continue  # the deferred response already shows "pgbot is thinking…"
                    await self._show_interaction(interaction, reply, first=first)
                    first = False
            except discord.HTTPException:
                raise
            except Exception as exc:  # noqa: BLE001 - the error policy: one reply in chat, traceback in the log
                await self._show_interaction(interaction, render_error(exc), first=first)

    async def _show_interaction(self, interaction: discord.Interaction[Any], reply: Reply, *, first: bool) -> None:
        view = view_for(reply, show_sql=self.chat.show_sql)
        extra: dict[str, Any] = {"view": view} if view is not None else {}

        async def put(shown: DiscordMessage) -> discord.Message:
            files = [f.to_file() for f in shown.files]
            if first:
                return await interaction.edit_original_response(
                    content=shown.content, embeds=shown.embeds, attachments=files, **extra
                )
            if files:
                extra["files"] = files
            if shown.mentions is not None:
                extra["allowed_mentions"] = shown.mentions
            return await interaction.followup.send(content=shown.content, embeds=shown.embeds, wait=True, **extra)

        await deliver(put, reply, show_sql=self.chat.show_sql)


async def post_reply(channel: discord.abc.Messageable, reply: Reply) -> discord.Message:
    """A new message with the reply, its files and its buttons (scheduled posts)."""
    view = view_for(reply)

    async def put(shown: DiscordMessage) -> discord.Message:
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        if shown.files:
            extra["files"] = [f.to_file() for f in shown.files]
        return await channel.send(content=shown.content, embeds=shown.embeds, **extra)

    return await deliver(put, reply)


async def deliver(put: Put, reply: Reply, *, show_sql: str = "button") -> discord.Message:
    """Send the rendered reply; embeds Discord refuses (a limit we missed) must not leave "Working on it…"
    forever, so a 400 on an answer is retried as text (and files) only."""
    shown = render(reply, show_sql=show_sql)
    if reply.export is not None:  # /export or the export tool: the file itself, never its path
        file, problem = await asyncio.to_thread(export_attachment, reply)
        if file is not None:
            shown.files.append(file)
        else:
            shown.content = cut(f"{shown.content}\n⚠️ {problem}", CONTENT_LIMIT)
    try:
        return await put(shown)
    except discord.HTTPException as exc:
        if reply.kind is ReplyKind.WORKING or exc.status != 400 or not shown.embeds:
            raise
        log.warning("discord_embeds_refused", code=exc.code, error=exc.text)
        return await put(DiscordMessage(content=shown.content, embeds=[], files=shown.files))


async def _keep_typing(channel: discord.abc.Messageable) -> None:
    """"pgbot is typing…" while core works; a refused trigger is logged once and typing stops."""
    while True:
        try:
            await channel.typing()
        except discord.HTTPException as exc:
            log.info("discord_typing_failed", status=exc.status, code=exc.code)
            return
        await asyncio.sleep(TYPING_EVERY_S)


def _log_http_error(event: str, exc: discord.HTTPException, **where: object) -> None:
    """Discord refused a call pgbot cannot recover from; 403 says which permissions pgbot needs."""
    hint = MISSING_PERMISSIONS if isinstance(exc, discord.Forbidden) else None
    log.error(event, status=exc.status, code=exc.code, error=exc.text, hint=hint, **where)


def invite_url(application_id: int) -> str:
    """The OAuth2 URL that adds pgbot to a server with its scopes and permissions."""
    return discord.utils.oauth_url(application_id, permissions=PERMISSIONS, scopes=SCOPES)


def build_discord_client(
    agent: Agent, settings: DiscordSettings, *, chat: ChatSettings | None = None,
    progress_every_s: float = PROGRESS_EVERY_S,
) -> PgbotClient:
    """The client, not yet logged in. ``settings.api_base_url`` (tests, proxies) redirects discord.py's REST
    calls for the whole process, since discord.py keeps its base URL in a class attribute."""
    if settings.api_base_url:
        discord.http.Route.BASE = settings.api_base_url.rstrip("/")
    return PgbotClient(agent=agent, settings=settings, chat=chat, progress_every_s=progress_every_s)
