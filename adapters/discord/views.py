"""Buttons: Approve/Reject (``pgbot:approve:<action_id>`` / ``pgbot:reject:<action_id>``), 👍/👎
(``pgbot:fb:up:<answer_id>`` / ``pgbot:fb:down:<answer_id>``), Show SQL (``pgbot:sql:<answer_id>``, answered
to the clicker alone) and Export all rows (``pgbot:export:<answer_id>``: run as the clicker's own role; the
file is posted in the thread for the asker, and only to the clicker (ephemeral) for anyone else); and a
schedule's Pause/Resume/Delete
(``pgbot:sched:<pause|resume|delete>:<schedule_id>``).

They are :class:`discord.ui.DynamicItem` s registered on the client, so a click is understood from its
``custom_id`` alone: buttons on messages posted before a restart still work. A click from a guild or channel
outside ``allowed_guilds`` / ``allowed_channels`` gets a private "not enabled here" and nothing else; any other
click is acknowledged at once (Discord's 3-second limit), then passed to core as (id, clicking user,
decision); core decides whether it is allowed, expired or already done.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Self

import discord
import structlog

from adapters.discord import card_flow
from adapters.discord.edit import edit_button
from adapters.discord.events import PLATFORM, click_thread_key, member_groups
from adapters.discord.host import button_host, refused_here
from adapters.discord.render import CONTENT_LIMIT, FILE_LIMIT, Attachment, render
from adapters.discord.turn_views import turn_items
from adapters.text_table import cut
from core import Agent, PgbotError, Reply, ReplyKind, ScheduleChange, can_chart
from core.db.export import human_size
from core.permissions import GroupLookup

log = structlog.get_logger(__name__)
_ID = r"[A-Za-z0-9_.-]{1,80}"  # custom_id is at most 100 characters


class DecisionButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=rf"pgbot:(?P<decision>approve|reject):(?P<action_id>{_ID})",
):
    """Approve or Reject one pending change; the action id travels in the custom_id."""

    def __init__(self, *, decision: str, action_id: str) -> None:
        approve = decision == "approve"
        super().__init__(
            discord.ui.Button(
                label="Approve" if approve else "Reject",
                style=discord.ButtonStyle.success if approve else discord.ButtonStyle.danger,
                custom_id=f"pgbot:{decision}:{action_id}",
            )
        )
        self.approve = approve
        self.action_id = action_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(decision=match["decision"], action_id=match["action_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        agent = button_host(interaction).agent
        if await refused_here(interaction):
            return
        await interaction.response.defer()  # a deferred update: the change may take longer than 3 s
        client = button_host(interaction)
        await card_flow.decide(interaction, agent=agent, action_id=self.action_id, approve=self.approve,
                               current_groups=current_groups(interaction), sweep=client.sweep,
                               tick_s=client.progress_every_s, outcome_view=undo_view)


def current_groups(interaction: discord.Interaction[Any]) -> GroupLookup:
    """Core asks for the requester's roles at approval: a role removed since the request is noticed. Fetched
    from Discord (not the cache, which may be stale or hold no members); one who left the guild has none."""

    async def lookup(identity: str) -> tuple[str, ...] | None:
        platform, _, user_id = identity.partition(":")
        guild = interaction.guild
        if platform != PLATFORM or guild is None or not user_id.isdigit():
            return None  # not a member of this guild by construction: the groups stored with the request stand
        try:
            return member_groups(await guild.fetch_member(int(user_id)))
        except discord.NotFound:
            return ()
        except discord.HTTPException as exc:
            log.warning("discord_member_lookup_failed", status=exc.status, error=exc.text[:200])
            raise PgbotError("Discord did not answer the member look-up") from exc

    return lookup


class FeedbackButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=rf"pgbot:fb:(?P<vote>up|down):(?P<answer_id>{_ID})",
):
    """👍 or 👎 on one answer; only the person who clicked sees the acknowledgement."""

    def __init__(self, *, vote: str, answer_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                emoji="👍" if vote == "up" else "👎",
                style=discord.ButtonStyle.secondary,
                custom_id=f"pgbot:fb:{vote}:{answer_id}",
            )
        )
        self.helpful = vote == "up"
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(vote=match["vote"], answer_id=match["answer_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        agent = button_host(interaction).agent
        if await refused_here(interaction):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        reply = await record_feedback(
            agent, answer_id=self.answer_id, user=f"{PLATFORM}:{interaction.user.id}", helpful=self.helpful,
            groups=member_groups(interaction.user),
        )
        shown = render(reply)
        await interaction.followup.send(content=shown.content, embeds=shown.embeds, ephemeral=True)


async def record_feedback(
    agent: Agent, *, answer_id: str, user: str, helpful: bool, groups: tuple[str, ...] = ()
) -> Reply:
    """core's ``Agent.feedback``; core turns every failure into an error reply itself."""
    return await agent.feedback(answer_id=answer_id, user=user, helpful=helpful, groups=groups)


class ShowSqlButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=rf"pgbot:sql:(?P<answer_id>{_ID})",
):
    """The answer's SQL, pretty-printed, shown to the clicker alone."""

    def __init__(self, *, answer_id: str) -> None:
        super().__init__(discord.ui.Button(label="Show SQL", style=discord.ButtonStyle.secondary,
                                           custom_id=f"pgbot:sql:{answer_id}"))
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(answer_id=match["answer_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if await refused_here(interaction):
            return
        agent = button_host(interaction).agent
        await interaction.response.defer(ephemeral=True, thinking=True)
        reply = await agent.show_sql(answer_id=self.answer_id, thread_key=click_thread_key(interaction))
        shown = render(reply)
        await interaction.followup.send(content=shown.content, embeds=shown.embeds, ephemeral=True)


class ExportButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=rf"pgbot:export:(?P<answer_id>{_ID})",
):
    """Every row of the answer as CSV, run as the clicker's own database role."""

    def __init__(self, *, answer_id: str) -> None:
        super().__init__(discord.ui.Button(label="Export all rows (CSV)", style=discord.ButtonStyle.secondary,
                                           custom_id=f"pgbot:export:{answer_id}"))
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(answer_id=match["answer_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if await refused_here(interaction):
            return
        agent = button_host(interaction).agent
        await interaction.response.defer()  # an export may take longer than Discord's 3 s
        reply = await agent.export_answer(
            answer_id=self.answer_id, user=f"{PLATFORM}:{interaction.user.id}",
            groups=member_groups(interaction.user), thread_key=click_thread_key(interaction),
        )
        file, problem = await asyncio.to_thread(export_attachment, reply)
        if file is None:
            shown = render(reply if not problem else Reply(kind=ReplyKind.ERROR, text=problem))
            await interaction.followup.send(content=shown.content, embeds=shown.embeds, ephemeral=True)
            return
        private = reply.export is not None and reply.export.private
        text = reply.text + ("\n-# Only you see this: it ran as your own database role." if private else "")
        await interaction.followup.send(content=cut(text, CONTENT_LIMIT), file=file.to_file(), ephemeral=private)


def export_attachment(reply: Reply) -> tuple[Attachment | None, str]:
    """The CSV an export reply names, read from pgbot's host, or why it is not sent (size and limit, never
    the path)."""
    if reply.export is None:
        return None, ""
    file = reply.export.path
    size = reply.export.size_bytes
    if size > FILE_LIMIT:
        log.info("discord_export_not_uploaded", path=str(file), reason="too big", bytes=size)
        return None, (f"The CSV is {human_size(size)}, over the {human_size(FILE_LIMIT)} pgbot uploads to Discord, "
                      f"so it was not sent; narrow the query (fewer rows or columns), or ask whoever runs pgbot "
                      f"for {file.name}.")
    try:
        data = file.read_bytes()
    except OSError as exc:
        log.warning("discord_export_unreadable", path=str(file), error=str(exc))
        return None, "The export file could not be read on pgbot's host; the details are in pgbot's log."
    return Attachment(file.name, data), ""


class ChartButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=rf"pgbot:chart:(?P<answer_id>{_ID})",
):
    """Draw an answer's result after the fact: core runs its query again as the person who clicks."""

    def __init__(self, *, answer_id: str) -> None:
        super().__init__(discord.ui.Button(label="Chart", emoji="📈", style=discord.ButtonStyle.secondary,
                                           custom_id=f"pgbot:chart:{answer_id}"))
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(answer_id=match["answer_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """The chart goes in the thread naming who asked for it; a refusal or error only to the clicker."""
        if await refused_here(interaction):
            return
        agent = button_host(interaction).agent
        await interaction.response.defer()  # a deferred update: the query may take longer than 3 s
        reply = await agent.chart_answer(answer_id=self.answer_id, user=f"{PLATFORM}:{interaction.user.id}",
                                         groups=member_groups(interaction.user))
        shown = render(reply)
        if reply.chart is None:
            await interaction.followup.send(content=shown.content, embeds=shown.embeds, ephemeral=True)
            return
        content = cut(f"{shown.content}\nRequested by {interaction.user.mention}.", CONTENT_LIMIT)
        await interaction.followup.send(content=content, files=[f.to_file() for f in shown.files])


def chart_button(reply: Reply) -> list[discord.ui.Item[Any]]:
    """A Chart button under an answer whose table can be drawn and that has no chart yet."""
    if not reply.answer_id or reply.chart is not None or not can_chart(reply.table):
        return []
    return [ChartButton(answer_id=reply.answer_id)]



_SCHEDULE_LABELS: dict[str, tuple[str, discord.ButtonStyle]] = {
    "pause": ("Pause", discord.ButtonStyle.secondary), "resume": ("Resume", discord.ButtonStyle.primary),
    "delete": ("Delete", discord.ButtonStyle.danger),
}


class ScheduleButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"pgbot:sched:(?P<change>pause|resume|delete):(?P<schedule_id>[A-Za-z0-9]{1,64})",
):
    """Pause, Resume or Delete one schedule; core checks the clicker is its creator or an approver."""

    def __init__(self, *, change: ScheduleChange, schedule_id: str) -> None:
        label, style = _SCHEDULE_LABELS[change]
        # The id in the label tells which listed schedule a button is for (ids lead each line of the list).
        super().__init__(discord.ui.Button(label=f"{label} {schedule_id}", style=style,
                                           custom_id=f"pgbot:sched:{change}:{schedule_id}"))
        self.change: ScheduleChange = change
        self.schedule_id = schedule_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        change: ScheduleChange = "pause" if match["change"] == "pause" else (
            "resume" if match["change"] == "resume" else "delete")
        return cls(change=change, schedule_id=match["schedule_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if await refused_here(interaction):
            return
        agent = button_host(interaction).agent
        await interaction.response.defer(thinking=True)
        reply = await agent.schedule_action(schedule_id=self.schedule_id, action=self.change,
                                            user=f"{PLATFORM}:{interaction.user.id}",
                                            groups=member_groups(interaction.user))
        shown = render(reply)
        # A refusal only the clicker needs to see; a change the channel sees (who paused or deleted it).
        view = view_for(reply)  # the schedule's buttons again, now Resume after a Pause
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        await interaction.followup.send(content=shown.content, embeds=shown.embeds,
                                        ephemeral=reply.kind is ReplyKind.ERROR, **extra)


MAX_SCHEDULE_CARDS = 10  # two buttons each, within Discord's 25 components per message


class UndoButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=rf"pgbot:undo:(?P<action_id>{_ID})",
):
    """Undo an approved change: core makes its inverse a pending change, approved like any other."""

    def __init__(self, *, action_id: str) -> None:
        super().__init__(discord.ui.Button(label="Undo", emoji="↩️", style=discord.ButtonStyle.secondary,
                                           custom_id=f"pgbot:undo:{action_id}"))
        self.action_id = action_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(action_id=match["action_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """The undo's approval card goes in the thread for the approvers; a refusal only to the clicker."""
        if await refused_here(interaction):
            return
        agent = button_host(interaction).agent
        await interaction.response.defer()  # the undo is previewed (rolled back) first: may take over 3 s
        reply = await agent.undo(action_id=self.action_id, user=f"{PLATFORM}:{interaction.user.id}",
                                 groups=member_groups(interaction.user), thread_key=click_thread_key(interaction))
        shown = render(reply)
        if reply.kind is not ReplyKind.APPROVAL:
            await interaction.followup.send(content=shown.content, embeds=shown.embeds, ephemeral=True)
            return
        view = view_for(reply)
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        await interaction.followup.send(content=shown.content, embeds=shown.embeds,
                                        files=[f.to_file() for f in shown.files], **extra)


def undo_button(reply: Reply) -> list[discord.ui.Item[Any]]:
    """An Undo button under the outcome of an approved change whose rows pgbot kept (core.undo)."""
    return [UndoButton(action_id=reply.undo_id)] if reply.undo_id else []


def undo_view(reply: Reply) -> dict[str, Any]:
    """``view=`` for a followup that may carry an Undo button (discord.py refuses ``view=None`` there)."""
    items = undo_button(reply)
    if not items:
        return {}
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return {"view": view}


def view_for(reply: Reply, *, show_sql: str = "button") -> discord.ui.View | None:
    """The buttons a reply needs, or None (which also clears buttons when a message is edited)."""
    items: list[discord.ui.Item[Any]] = []
    if reply.approval is not None:
        items.append(DecisionButton(decision="approve", action_id=reply.approval.action_id))
        items.append(DecisionButton(decision="reject", action_id=reply.approval.action_id))
    if reply.answer_id:
        if reply.sql and show_sql == "button":
            items.append(ShowSqlButton(answer_id=reply.answer_id))
        if reply.table is not None and reply.table.truncated:
            items.append(ExportButton(answer_id=reply.answer_id))
        items.append(FeedbackButton(vote="up", answer_id=reply.answer_id))
        items.append(FeedbackButton(vote="down", answer_id=reply.answer_id))
    items.extend(chart_button(reply))
    for card in reply.schedules[:MAX_SCHEDULE_CARDS]:
        items.append(ScheduleButton(change="resume" if card.paused else "pause", schedule_id=card.schedule_id))
        items.append(ScheduleButton(change="delete", schedule_id=card.schedule_id))
    items.extend(undo_button(reply))
    items.extend(edit_button(reply))
    items.extend(turn_items(reply))
    if not items:
        return None
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view
