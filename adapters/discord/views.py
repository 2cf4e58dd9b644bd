"""Buttons: Approve/Reject (``pgbot:approve:<action_id>`` / ``pgbot:reject:<action_id>``), 👍/👎
(``pgbot:fb:up:<answer_id>`` / ``pgbot:fb:down:<answer_id>``) and a schedule's Pause/Resume/Delete
(``pgbot:sched:<pause|resume|delete>:<schedule_id>``).

They are :class:`discord.ui.DynamicItem` s registered on the client, so a click is understood from its
``custom_id`` alone: buttons on messages posted before a restart still work. A click is acknowledged at
once (Discord's 3-second limit), then passed to core as (id, clicking user, decision); core decides
whether it is allowed, expired or already done.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Self

import discord
import structlog

from adapters.discord.events import PLATFORM, member_groups
from adapters.discord.render import CONTENT_LIMIT, render
from adapters.text_table import cut
from core import Agent, PgbotError, Reply, ReplyKind, ScheduleChange
from core.permissions import GroupLookup

if TYPE_CHECKING:
    from adapters.discord.bot import PgbotClient

log = structlog.get_logger(__name__)
_ID = r"[A-Za-z0-9_.-]{1,80}"  # custom_id is at most 100 characters


def _client(interaction: discord.Interaction[Any]) -> PgbotClient:
    from adapters.discord.bot import PgbotClient

    client = interaction.client
    if not isinstance(client, PgbotClient):
        raise TypeError("pgbot buttons need the client made by build_discord_client")
    return client


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
        agent = _client(interaction).agent
        await interaction.response.defer()  # a deferred update: the change may take longer than 3 s

        async def progress(text: str) -> None:
            """Long approved work (a backup, an index build) reports in the thread while it runs."""
            try:
                await interaction.followup.send(content=cut(text, CONTENT_LIMIT))
            except discord.HTTPException as exc:
                log.warning("discord_progress_not_posted", status=exc.status, error=exc.text[:200])

        outcome = await agent.decide(
            action_id=self.action_id, decided_by=f"{PLATFORM}:{interaction.user.id}", approve=self.approve,
            progress=progress, groups=member_groups(interaction.user), current_groups=current_groups(interaction),
        )
        shown = render(outcome)
        if outcome.kind is not ReplyKind.OUTCOME:
            # Not allowed, expired, already decided: only the clicker needs to know; the buttons stay.
            await interaction.followup.send(content=shown.content, embeds=shown.embeds, ephemeral=True)
            return
        await interaction.followup.send(content=shown.content, embeds=shown.embeds)
        if interaction.message is not None:
            verdict = "✅ Approved" if self.approve else "🚫 Rejected"
            note = f"{verdict} by {interaction.user.mention}"
            await interaction.edit_original_response(
                content=cut(f"{interaction.message.content}\n{note}", CONTENT_LIMIT),
                view=decided_view(self.action_id, approved=self.approve),
            )


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


def decided_view(action_id: str, *, approved: bool) -> discord.ui.View:
    """The Approve/Reject pair, disabled, the chosen one keeping its colour: the decision stays visible."""
    view = discord.ui.View(timeout=None)
    for decision in ("approve", "reject"):
        chosen = (decision == "approve") == approved
        style = discord.ButtonStyle.secondary
        if chosen:
            style = discord.ButtonStyle.success if approved else discord.ButtonStyle.danger
        view.add_item(discord.ui.Button(
            label="Approve" if decision == "approve" else "Reject", style=style, disabled=True,
            custom_id=f"pgbot:{decision}:{action_id}",
        ))
    view.stop()  # nothing to listen for: discord.py does not keep a finished view
    return view


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
        agent = _client(interaction).agent
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
        agent = _client(interaction).agent
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


def view_for(reply: Reply) -> discord.ui.View | None:
    """The buttons a reply needs, or None (which also clears buttons when a message is edited)."""
    items: list[discord.ui.Item[Any]] = []
    if reply.approval is not None:
        items.append(DecisionButton(decision="approve", action_id=reply.approval.action_id))
        items.append(DecisionButton(decision="reject", action_id=reply.approval.action_id))
    if reply.answer_id:
        items.append(FeedbackButton(vote="up", answer_id=reply.answer_id))
        items.append(FeedbackButton(vote="down", answer_id=reply.answer_id))
    for card in reply.schedules[:MAX_SCHEDULE_CARDS]:
        items.append(ScheduleButton(change="resume" if card.paused else "pause", schedule_id=card.schedule_id))
        items.append(ScheduleButton(change="delete", schedule_id=card.schedule_id))
    if not items:
        return None
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view
