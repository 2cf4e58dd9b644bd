"""The Slack app: bolt listeners that hand events to core and post what it replies.

A conversation's first reply ("Working on it…") is posted at once in the thread and then edited into the
answer with ``chat.update``, so a thread shows one message per question; a result too big for the message
follows as a CSV file (and an approval's long statement as change.sql), and so does an export (never a path
on pgbot's host). Button clicks are acked first (Slack's 3-second limit), then, if ``allowed_teams`` and
``allowed_channels`` admit the clicker, passed to core as (id, clicking user, decision); core decides the rest.
"Show SQL" answers only the clicker (ephemeral); "Export all rows" runs as the clicker and uploads the file
into the thread when they asked the question, else into a direct message to them (their role may read more
than the thread was shown). The Web API client retries rate limits (429, after
``Retry-After``), 500/503 and dropped connections itself; what still fails is logged with Slack's error code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.live_line import TurnLine
from adapters.slack import blocks, edit, events, progress, questions, render
from adapters.slack.card_flow import CardFlow
from adapters.slack.cards import APPROVE, REJECT
from adapters.slack.chart_upload import upload_chart
from adapters.slack.schedules import SlackSender
from adapters.text_table import cut
from core import Agent, ConfigError, Message, PgbotError, Reply, ReplyKind, ScheduleChange, render_error
from core.config import ChatSettings, SlackSettings
from core.db.export import human_size

log = structlog.get_logger(__name__)

PROGRESS_EVERY_S = 15.0  # how often a long turn's "Working on it…" message says how long it has run

# An export bigger than this is not uploaded (the reply says so); Slack takes up to 1 GB, but the SDK reads
# the whole file into memory to send it.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
TABLE_REFUSED = frozenset({"invalid_blocks", "invalid_attachments"})  # e.g. a workspace without table blocks

NOT_HERE = (
    "pgbot is not enabled in this channel, so it will not answer here. Ask whoever runs pgbot to add this "
    "channel to `[slack] allowed_channels`, or mention it in a channel where it works."
)


def retry_handlers() -> list[AsyncRetryHandler]:
    """Retry what Slack asks to retry: 429 after its Retry-After, 500/503 and lost connections with backoff."""
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        AsyncServerErrorRetryHandler(max_retry_count=2),
    ]


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def build_slack_app(
    agent: Agent, settings: SlackSettings, *, progress_every_s: float = PROGRESS_EVERY_S,
    chat: ChatSettings | None = None,
) -> AsyncApp:
    """A bolt ``AsyncApp`` whose Web API client talks to ``settings.api_base_url``; ``chat``: how answers
    look (``[chat]``; the defaults when not given)."""
    token = _secret(settings.bot_token)
    if not token:
        raise ConfigError("slack.bot_token is not set (PGBOT_SLACK__BOT_TOKEN)")
    # urljoin drops the last path segment of a base URL without a trailing slash ("/api" → "/chat.postMessage").
    client = AsyncWebClient(token=token, base_url=settings.api_base_url.rstrip("/") + "/",
                            retry_handlers=retry_handlers())
    app = AsyncApp(
        client=client,
        # Socket mode needs no signing secret (bolt skips verification there); HTTP mode checks it is set.
        signing_secret=_secret(settings.signing_secret) or "",
        name="pgbot",
    )
    threads = events.RecentKeys()
    poster = _Poster(agent=agent, threads=threads, progress_every_s=progress_every_s, chat=chat or ChatSettings(),
                     cards=CardFlow(agent, client, tick_s=progress_every_s or PROGRESS_EVERY_S))
    if agent.schedules is not None:  # scheduled reports post through this app's client
        agent.schedules.senders.register(events.PLATFORM, SlackSender(client))
    allowed = {"allowed_channels": settings.allowed_channels, "allowed_teams": settings.allowed_teams}

    @app.event("app_mention")
    async def on_mention(
        event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        team_id = events.team_of(body)
        why = events.refusal(event, team_id=team_id, **allowed)
        if why is not None and events.from_person(event):
            await poster.refuse(client, event, why=why, team_id=team_id)
            return
        message = events.from_app_mention(event, team_id=team_id, bot_user_id=context.bot_user_id, **allowed)
        if message is not None:
            await poster.answer(client, message, event=event)

    @app.event("message")
    async def on_message(
        event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        team_id = events.team_of(body)
        why = events.refusal(event, team_id=team_id, **allowed)
        if why is not None:
            if events.is_direct(event) and events.from_person(event):  # a DM asks pgbot directly, like a mention
                await poster.refuse(client, event, why=why, team_id=team_id)
            return
        await poster.learn_thread(event, team_id=team_id)
        message = events.from_message_event(
            event, team_id=team_id, bot_user_id=context.bot_user_id, threads=threads, **allowed,
        )
        if message is not None:
            await poster.answer(client, message, event=event)

    def click_allowed(body: dict[str, Any]) -> bool:
        """Clicks obey allowed_teams / allowed_channels like messages: a stranger's click does nothing."""
        why = events.click_refusal(body, **allowed)
        if why is not None:
            log.warning("slack_click_not_allowed", reason=why, team=events.team_of(body),
                        user=str((body.get("user") or {}).get("id", "")))
        return why is None

    @app.action(APPROVE)
    async def on_approve(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if click_allowed(body):
            await poster.decide(client, body, approve=True)

    @app.action(REJECT)
    async def on_reject(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if click_allowed(body):
            await poster.decide(client, body, approve=False)

    @app.action(progress.CANCEL)
    async def on_cancel(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if click_allowed(body):
            await poster.cancel(client, body)

    @app.action(questions.OPTION)
    async def on_option(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
        await ack()
        if click_allowed(body):
            await poster.option(client, body)

    @app.action(render.FEEDBACK_UP)
    async def on_feedback_up(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if click_allowed(body):
            await poster.feedback(client, body, helpful=True)

    @app.action(render.FEEDBACK_DOWN)
    async def on_feedback_down(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if click_allowed(body):
            await poster.feedback(client, body, helpful=False)

    @app.action(render.CHART)
    async def on_chart(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if click_allowed(body):
            await poster.chart(client, body)

    @app.action(render.UNDO)
    async def on_undo(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if click_allowed(body):
            await poster.undo(client, body)

    @app.action(render.SHOW_SQL)
    async def on_show_sql(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if click_allowed(body):
            await poster.show_sql(client, body)

    @app.action(render.EXPORT)
    async def on_export(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if click_allowed(body):
            await poster.export(client, body)

    for action_id, change in render.SCHEDULE_ACTIONS.items():
        app.action(action_id)(_schedule_handler(poster, change, allowed=click_allowed))
    register_edit(app, poster, key=edit.signing_key(token), allowed=allowed, click_allowed=click_allowed)
    return app


def _schedule_handler(poster: _Poster, change: ScheduleChange, *,
                      allowed: Callable[[dict[str, Any]], bool]) -> Callable[..., Awaitable[None]]:
    """Pause / Resume / Delete on a schedule card: acked at once, then (if the click is allowed here) core
    decides."""

    async def on_click(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if allowed(body):
            await poster.schedule(client, body, change=change)

    return on_click


def register_edit(
    app: AsyncApp, poster: _Poster, *, key: bytes, allowed: dict[str, Any], click_allowed: Callable[..., bool]
) -> None:
    """Edit SQL: the click opens the modal (adapters.slack.edit), its submission runs in the thread."""

    @app.action(render.EDIT_SQL)
    async def on_edit_sql(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if click_allowed(body):
            await edit.open_edit(poster, client, body, key=key)

    @app.view(edit.VIEW)
    async def on_edit_submitted(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await edit.on_submission(poster, ack, body, client, key=key, allowed=allowed)


class _Poster:
    """Turns core replies into Web API calls. Its only state: threads answered in and messages seen."""

    def __init__(
        self, *, agent: Agent, threads: events.RecentKeys, progress_every_s: float, chat: ChatSettings,
        cards: CardFlow,
    ) -> None:
        self.agent = agent
        self.cards = cards  # approval cards: decisions, their state line, expiry (adapters.slack.card_flow)
        self.threads = threads
        self.progress_every_s = progress_every_s
        self.seen = events.RecentKeys()  # (channel, ts) of messages already answered
        self.sql_mode = chat.show_sql
        self.native_table = True  # off for good once Slack refuses a table block (the code block works everywhere)

    def _render(self, reply: Reply) -> render.SlackMessage:
        return render.render(reply, show_sql=self.sql_mode, native_table=self.native_table)

    async def learn_thread(self, event: Mapping[str, Any], *, team_id: str) -> None:
        """A reply in a thread this process has not seen: ask core whether pgbot talks there (another
        replica, or this bot before a restart, may have answered in it)."""
        channel, thread_ts = str(event.get("channel", "")), event.get("thread_ts")
        if not thread_ts or thread_ts == event.get("ts") or (channel, str(thread_ts)) in self.threads:
            return
        key = Message(platform="slack", workspace=team_id, channel=channel, thread=str(thread_ts), user="",
                      text="").thread_key
        try:
            known = await self.agent.in_conversation(key)
        except PgbotError as exc:  # context store down: such replies wait for a mention
            log.warning("thread_lookup_failed", channel=channel, error=exc.user_message)
            return
        if known:
            self.threads.add(channel, str(thread_ts))

    async def refuse(self, client: AsyncWebClient, event: Mapping[str, Any], *, why: str, team_id: str) -> None:
        """Someone asked pgbot where config keeps it out. Another workspace: silence (pgbot does not serve
        it at all). A channel not allowed: a note only the asker sees, so nobody waits for an answer."""
        channel, user = str(event.get("channel", "")), str(event.get("user", ""))
        log.info("slack_not_allowed", reason=why, channel=channel, team=team_id, user=user)
        if why != "channel" or not self.seen.first_time(channel, str(event.get("ts", ""))):
            return
        try:
            await client.chat_postEphemeral(channel=channel, user=user, text=NOT_HERE,
                                            thread_ts=event.get("thread_ts") or None)
        except SlackApiError as exc:
            log.warning("slack_post_failed", channel=channel, error=exc.response.get("error"))

    async def answer(self, client: AsyncWebClient, message: Message, *, event: Mapping[str, Any]) -> None:
        """Post the working reply in the thread, then edit it into each later reply (extra ones are posted)."""
        channel, thread_ts = str(event["channel"]), events.thread_ts_of(event)
        if not self.seen.first_time(channel, str(event["ts"])):
            return  # a retried delivery, or the message + app_mention pair Slack sends for one message
        await self.converse(client, message, channel=channel, thread_ts=thread_ts)

    async def converse(self, client: AsyncWebClient, message: Message, *, channel: str, thread_ts: str) -> None:
        """Core's replies to ``message`` in the thread: "working" posted, then edited into the answer."""
        self.threads.add(channel, thread_ts)
        live_ts: str | None = None
        line: TurnLine | None = None
        started = time.monotonic()
        try:
            # Closed at once if posting fails, so core releases the thread's turn lock without waiting for GC.
            async with aclosing(self.agent.handle(message)) as replies:
                async for reply in replies:
                    if line is not None:
                        await line.stop()
                        line = None
                    if reply.kind is ReplyKind.WORKING:
                        shown = progress.working_message(reply)
                    else:
                        shown = self._render(reply)
                        took = time.monotonic() - started
                        if live_ts is not None and took >= progress.NOTIFY_AFTER_S:
                            # Edits do not notify: a long turn's answer comes as a new message naming the asker.
                            shown = progress.noticed(shown, user=message.user, took_s=took)
                            await self._retire_working(client, channel=channel, ts=live_ts)
                            live_ts = None
                    posted, shown = await self._show(client, reply, shown, channel=channel, thread_ts=thread_ts,
                                                     live_ts=live_ts)
                    live_ts = posted if reply.kind is ReplyKind.WORKING else None
                    if reply.kind is ReplyKind.WORKING and live_ts is not None and self.progress_every_s > 0:
                        line = self._working(client, reply, channel=channel, ts=live_ts)
                    elif reply.kind is not ReplyKind.WORKING:
                        if reply.approval is not None:
                            self.cards.posted(reply, channel=channel, ts=posted, blocks=shown.blocks)
                        await self._attach(client, reply, shown.file, channel=channel, thread_ts=thread_ts)
                        await upload_chart(client, reply, channel=channel, thread_ts=thread_ts)
        except SlackApiError as exc:
            log.error("slack_post_failed", channel=channel, error=exc.response.get("error"))
        except Exception as exc:  # noqa: BLE001 - the error policy: one reply in chat, traceback in the log
            if line is not None:
                await line.stop()
                line = None
            error = render_error(exc)
            await self._show(client, error, self._render(error), channel=channel, thread_ts=thread_ts,
                             live_ts=live_ts)
        finally:
            if line is not None:
                await line.stop()

    def _working(self, client: AsyncWebClient, working: Reply, *, channel: str, ts: str) -> TurnLine:
        """The working message's live line: the turn's phase (from core) and the time so far."""
        turn = working.turn_id
        status = self.agent.turn_status(turn) if turn else None

        async def put(shown: render.SlackMessage) -> None:
            await client.chat_update(channel=channel, ts=ts, text=shown.text, blocks=shown.blocks)

        return progress.working_line(working, status, put=put, every_s=self.progress_every_s)

    async def _retire_working(self, client: AsyncWebClient, *, channel: str, ts: str) -> None:
        """The answer follows as a new message: the "Working on it…" one goes (or, if Slack refuses, says so)."""
        try:
            await client.chat_delete(channel=channel, ts=ts)
        except SlackApiError as exc:
            log.warning("slack_working_not_deleted", channel=channel, error=exc.response.get("error"))
            try:
                await client.chat_update(channel=channel, ts=ts, text="Answered below.",
                                         blocks=[blocks.section("Answered below.")])
            except SlackApiError as again:
                log.warning("slack_working_not_retired", channel=channel, error=again.response.get("error"))

    async def _show(
        self, client: AsyncWebClient, reply: Reply, shown: render.SlackMessage, *, channel: str, thread_ts: str,
        live_ts: str | None,
    ) -> tuple[str, render.SlackMessage]:
        """Update the live "working" message if there is one, else post; return the message shown (its ts) and
        what was shown. A refused table block is retried as a code block; other refused blocks as text."""
        try:
            ts = await self._put(client, shown, channel=channel, thread_ts=thread_ts, live_ts=live_ts)
        except SlackApiError as exc:
            if reply.kind is ReplyKind.WORKING:
                raise
            error = str(exc.response.get("error"))
            log.warning("slack_blocks_refused", channel=channel, error=error)
            retried: str | None = None
            if error in TABLE_REFUSED and any(b.get("type") == "table" for b in shown.blocks):
                self.native_table = False
                shown = self._render(reply)
                try:
                    retried = await self._put(client, shown, channel=channel, thread_ts=thread_ts,
                                              live_ts=live_ts)
                except SlackApiError as again:
                    log.warning("slack_blocks_refused", channel=channel, error=again.response.get("error"))
            if retried is None:
                # Blocks Slack refuses (a limit we missed) must not leave "Working on it…" forever: text only.
                shown = render.SlackMessage(text=shown.text, blocks=[blocks.section(blocks.escape(reply.text))],
                                            file=shown.file)
                retried = await self._put(client, shown, channel=channel, thread_ts=thread_ts, live_ts=live_ts)
            ts = retried
        return ts, shown

    async def _attach(
        self, client: AsyncWebClient, reply: Reply, file: render.CsvFile | None, *, channel: str, thread_ts: str
    ) -> None:
        """Upload the CSV of a result the message could not show in full, or an export, into the thread."""
        if reply.export is not None:
            file, problem = await _export_file(reply)
            if problem:
                await client.chat_postMessage(channel=channel, thread_ts=thread_ts,
                                              text=f":warning: {blocks.escape(problem)}")
        if file is None:
            return
        why = await _upload(client, file, channel=channel, thread_ts=thread_ts)
        if why:
            await client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=f":warning: {file.if_lost} ({blocks.escape(why)}).",
            )

    async def chart(self, client: AsyncWebClient, body: Mapping[str, Any]) -> None:
        """A Chart click: core runs the answer's query again as the clicker and draws it; the chart goes in the
        thread with who asked for it, a refusal or error only to the clicker."""
        action, user, channel, msg = _click(body)
        thread_ts = str(msg.get("thread_ts") or msg["ts"])
        where = Message(platform="slack", workspace=events.team_of(body), channel=channel, thread=thread_ts,
                        user=user, text="").thread_key
        reply = await self.agent.chart_answer(answer_id=str(action["value"]), user=f"slack:{user}",
                                              thread_key=where)
        try:
            if reply.chart is None:
                shown = render.render(reply)
                await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=shown.text,
                                                blocks=shown.blocks)
                return
            comment = cut(f"{blocks.to_mrkdwn(reply.text)}\nRequested by <@{user}>.", blocks.SECTION_LIMIT)
            await upload_chart(client, reply, channel=channel, thread_ts=thread_ts, comment=comment)
        except SlackApiError as exc:
            log.error("slack_post_failed", channel=channel, error=exc.response.get("error"))

    async def _put(
        self, client: AsyncWebClient, shown: render.SlackMessage, *, channel: str, thread_ts: str, live_ts: str | None
    ) -> str:
        if live_ts is not None:
            await client.chat_update(channel=channel, ts=live_ts, text=shown.text, blocks=shown.blocks)
            return live_ts
        response = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=shown.text,
                                                 blocks=shown.blocks)
        return str(response["ts"])

    async def decide(self, client: AsyncWebClient, body: Mapping[str, Any], *, approve: bool) -> None:
        """Pass (action id, clicker, decision) to core; the card follows (adapters.slack.card_flow)."""
        action, user, channel, msg = _click(body)
        await self.cards.decide(client, action_id=str(action["value"]), user=user, channel=channel, message=msg,
                                approve=approve, render_reply=self._render)

    async def cancel(self, client: AsyncWebClient, body: Mapping[str, Any]) -> None:
        """Cancel on "Working on it…": core stops the turn if the clicker asked it; the reply is theirs alone."""
        action, user, channel, msg = _click(body)
        reply = self.agent.cancel_turn(turn_id=str(action["value"]), user=f"slack:{user}")
        await self.tell(client, reply, channel=channel, user=user, thread_ts=str(msg.get("thread_ts") or msg["ts"]))

    async def option(self, client: AsyncWebClient, body: Mapping[str, Any]) -> None:
        """A clarifying question's answer, clicked: sent as the clicker's own reply in the thread."""
        action, user, channel, msg = _click(body)
        choice = questions.chosen(action.get("value"))
        thread_ts = str(msg.get("thread_ts") or msg["ts"])
        if choice is None:
            log.warning("slack_option_refused", channel=channel, user=user)
            return
        try:
            await client.chat_update(channel=channel, ts=str(msg["ts"]), text=str(msg.get("text") or choice),
                                     blocks=questions.answered_blocks(list(msg.get("blocks") or []), user=user,
                                                                      choice=choice))
        except SlackApiError as exc:
            log.warning("slack_post_failed", channel=channel, error=exc.response.get("error"))
        click_ts = str(action.get("action_ts") or time.time())
        message = Message(platform="slack", workspace=events.team_of(body), channel=channel, thread=thread_ts,
                          user=user, text=choice, event_id=f"{channel}:option:{click_ts}")
        await self.answer(client, message, event={"channel": channel, "ts": click_ts, "thread_ts": thread_ts})

    async def undo(self, client: AsyncWebClient, body: Mapping[str, Any]) -> None:
        """Undo: core makes the change's inverse a pending change; its approval card goes in the thread (for
        the approvers), a refusal or "already waiting" only to the clicker."""
        action, user, channel, msg = _click(body)
        thread_ts = str(msg.get("thread_ts") or msg["ts"])
        reply = await self.agent.undo(action_id=str(action["value"]), user=f"slack:{user}",
                                      thread_key=_thread_key(body, channel=channel, thread_ts=thread_ts))
        if reply.kind is not ReplyKind.APPROVAL:
            await self.tell(client, reply, channel=channel, user=user, thread_ts=thread_ts)
            return
        shown = self._render(reply)
        try:
            await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=shown.text, blocks=shown.blocks)
            await self._attach(client, reply, shown.file, channel=channel, thread_ts=thread_ts)
        except SlackApiError as exc:
            log.error("slack_post_failed", channel=channel, error=exc.response.get("error"))

    async def feedback(self, client: AsyncWebClient, body: Mapping[str, Any], *, helpful: bool) -> None:
        """👍/👎 → core's feedback; the answer goes only to the person who clicked."""
        action, user, channel, msg = _click(body)
        # core turns every failure into an error reply itself
        reply = await self.agent.feedback(answer_id=str(action["value"]), user=f"slack:{user}", helpful=helpful)
        await self.tell(client, reply, channel=channel, user=user, thread_ts=str(msg.get("thread_ts") or msg["ts"]))

    async def tell(self, client: AsyncWebClient, reply: Reply, *, channel: str, user: str, thread_ts: str) -> None:
        """A reply only the clicking person sees (ephemeral)."""
        shown = self._render(reply)
        try:
            await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=shown.text,
                                            blocks=shown.blocks)
        except SlackApiError as exc:
            log.error("slack_post_failed", channel=channel, error=exc.response.get("error"))

    async def show_sql(self, client: AsyncWebClient, body: Mapping[str, Any]) -> None:
        """Show SQL: the answer's statements, pretty-printed, for the clicker alone."""
        action, user, channel, msg = _click(body)
        thread_ts = str(msg.get("thread_ts") or msg["ts"])
        reply = await self.agent.show_sql(answer_id=str(action["value"]),
                                          thread_key=_thread_key(body, channel=channel, thread_ts=thread_ts))
        await self.tell(client, reply, channel=channel, user=user, thread_ts=thread_ts)

    async def export(self, client: AsyncWebClient, body: Mapping[str, Any]) -> None:
        """Export all rows: run as the clicker (core resolves their own role), then upload the CSV: into the
        thread for the asker, into a direct message for anyone else; problems go to the clicker alone."""
        action, user, channel, msg = _click(body)
        thread_ts = str(msg.get("thread_ts") or msg["ts"])
        reply = await self.agent.export_answer(answer_id=str(action["value"]), user=f"slack:{user}",
                                               thread_key=_thread_key(body, channel=channel, thread_ts=thread_ts))
        if reply.export is None:
            await self.tell(client, reply, channel=channel, user=user, thread_ts=thread_ts)
            return
        file, problem = await _export_file(reply)
        if file is None:
            await self.tell(client, Reply(kind=ReplyKind.ERROR, text=problem), channel=channel, user=user,
                             thread_ts=thread_ts)
            return
        private = reply.export.private
        where, where_ts = channel, thread_ts
        if private:
            try:
                opened = await client.conversations_open(users=user)
                where, where_ts = str(opened["channel"]["id"]), ""
            except SlackApiError as exc:
                error = str(exc.response.get("error"))
                log.warning("slack_dm_not_opened", user=user, error=error)
                text = (f"pgbot could not send you the file in a direct message (Slack said: {error}). It ran as "
                        "your own database role, so it is not posted in the thread.")
                await self.tell(client, Reply(kind=ReplyKind.ERROR, text=text), channel=channel, user=user,
                                 thread_ts=thread_ts)
                return
        why = await _upload(client, file, channel=where, thread_ts=where_ts, comment=blocks.escape(reply.text))
        if why:
            text = f"The file could not be uploaded ({why})."
            await self.tell(client, Reply(kind=ReplyKind.ERROR, text=text), channel=channel, user=user,
                             thread_ts=thread_ts)
        elif private:
            text = ("I sent you the file in a direct message: it ran as your own database role, so it stays "
                    "with you.")
            await self.tell(client, Reply(kind=ReplyKind.INFO, text=text), channel=channel, user=user,
                             thread_ts=thread_ts)


    async def schedule(self, client: AsyncWebClient, body: Mapping[str, Any], *, change: ScheduleChange) -> None:
        """Pass (schedule id, clicker, change) to core; the outcome goes to the thread, a refusal to the clicker."""
        action, user, channel, msg = _click(body)
        reply = await self.agent.schedule_action(schedule_id=str(action["value"]), action=change,
                                                 user=f"slack:{user}")
        shown = render.render(reply)
        thread_ts = str(msg.get("thread_ts") or msg["ts"])
        try:
            if reply.kind is ReplyKind.ERROR:
                await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=shown.text,
                                                blocks=shown.blocks)
            else:
                await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=shown.text,
                                              blocks=shown.blocks)
        except SlackApiError as exc:
            log.error("slack_post_failed", channel=channel, error=exc.response.get("error"))


async def _upload(
    client: AsyncWebClient, file: render.CsvFile, *, channel: str, thread_ts: str, comment: str = ""
) -> str:
    """Upload into ``channel`` (the thread when ``thread_ts``); '' when it worked, else Slack's reason."""
    try:
        await client.files_upload_v2(channel=channel, thread_ts=thread_ts or None, filename=file.filename,
                                     title=file.title, content=file.content, initial_comment=comment or None)
    except (SlackApiError, SlackRequestError) as exc:
        why = str(exc.response.get("error")) if isinstance(exc, SlackApiError) else "the upload failed"
        log.warning("slack_upload_failed", channel=channel, error=why)
        return why
    return ""


async def _export_file(reply: Reply) -> tuple[render.CsvFile | None, str]:
    """The file an export reply names (core wrote it on this host), or why it is not sent: what people read
    names the size and the limit, never the path."""
    if reply.export is None:
        return None, ""
    path = str(reply.export.path)
    file = reply.export.path
    try:
        content = await asyncio.to_thread(_read_at_most, file, MAX_UPLOAD_BYTES)
    except OSError as exc:
        log.warning("slack_export_unreadable", path=path, error=str(exc))
        return None, "The export file could not be read on pgbot's host; the details are in pgbot's log."
    if content is None:
        size = reply.export.size_bytes
        log.info("slack_export_not_uploaded", path=path, reason="too big", bytes=size)
        return None, (f"The CSV is {human_size(size)}, over the {human_size(MAX_UPLOAD_BYTES)} pgbot uploads to "
                      f"Slack, so it was not sent; narrow the query (fewer rows or columns), or ask whoever runs "
                      f"pgbot for {file.name}.")
    return render.CsvFile(filename=file.name, title=f"Export ({reply.export.rows} rows)",
                          content=content), ""


def _thread_key(body: Mapping[str, Any], *, channel: str, thread_ts: str) -> str:
    """The core thread a clicked button sits in (core refuses a button of another conversation)."""
    return Message(platform="slack", workspace=events.team_of(body), channel=channel, thread=thread_ts, user="",
                   text="").thread_key


def _read_at_most(file: Path, limit: int) -> bytes | None:
    return None if file.stat().st_size > limit else file.read_bytes()


def _click(body: Mapping[str, Any]) -> tuple[Mapping[str, Any], str, str, Mapping[str, Any]]:
    """(the clicked action, clicking user id, channel id, the message the button is on) of a block_actions body."""
    action = body["actions"][0]
    container = body.get("container") or {}
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id"))
    message = body.get("message") or {"ts": container.get("message_ts"), "thread_ts": container.get("thread_ts")}
    return action, str(body["user"]["id"]), channel, message
