"""The working message's Cancel button and a clarifying question's answer buttons (``pgbot:cancel:<turn id>``,
``pgbot:opt:<n>``), plus the live "Working on it…" line.

Cancel stops the turn only for the person who asked (core checks; anyone else is told privately). An answer
button sends its label as the clicker's own reply in the thread, as if typed, and the buttons go so the
question is answered once; the label is what pgbot posted, checked again with core's rule for answers.
"""

from __future__ import annotations

import re
from typing import Any, Self

import discord
import structlog

from adapters.discord.events import PLATFORM, command_message
from adapters.discord.host import button_host, refused_here
from adapters.discord.render import CONTENT_LIMIT, render
from adapters.live_line import TurnLine, elapsed_text
from adapters.text_table import cut
from core import Reply
from core.threads.turn_status import TurnStatus
from core.tools.clarify import clarification_choices

log = structlog.get_logger(__name__)
_ID = r"[A-Za-z0-9_.-]{1,80}"
NOTIFY_AFTER_S = 10.0


def working_content(working: Reply, *, phase: str = "", elapsed_s: float | None = None) -> str:
    text = "⏳ " + working.text + (f" {phase}" if phase else "")
    return text + (f" ({elapsed_text(elapsed_s)})" if elapsed_s is not None else "")


def noticed(content: str, *, user: str, took_s: float) -> str:
    """A long turn's answer as a new message naming the asker (an edit notifies nobody)."""
    return cut(f"<@{user}> here is your answer (it took {elapsed_text(took_s)}).\n{content}", CONTENT_LIMIT)


class CancelButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=rf"pgbot:cancel:(?P<turn>{_ID})",
):
    """Stop a turn in flight (its running query is cancelled on the server); only its asker may."""

    def __init__(self, *, turn: str) -> None:
        super().__init__(discord.ui.Button(label="Cancel", style=discord.ButtonStyle.secondary,
                                           custom_id=f"pgbot:cancel:{turn}"))
        self.turn = turn

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(turn=match["turn"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if await refused_here(interaction):
            return
        reply = button_host(interaction).agent.cancel_turn(turn_id=self.turn, user=f"{PLATFORM}:{interaction.user.id}")
        shown = render(reply)
        await interaction.response.send_message(content=shown.content, ephemeral=True)


class OptionButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=r"pgbot:opt:(?P<index>[0-4])",
):
    """One answer to a clarifying question; its label is the answer."""

    def __init__(self, *, index: int, label: str = "") -> None:
        super().__init__(discord.ui.Button(label=label or "…", style=discord.ButtonStyle.primary,
                                           custom_id=f"pgbot:opt:{index}"))
        self.label = label

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        label = getattr(item, "label", None)
        return cls(index=int(match["index"]), label=label if isinstance(label, str) else "")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if await refused_here(interaction):
            return
        choice = clarification_choices([self.label])
        channel = interaction.channel
        if not choice or choice[0] != self.label or not isinstance(channel, discord.Thread | discord.DMChannel):
            await interaction.response.send_message("Type your answer in the thread instead.", ephemeral=True)
            return
        await interaction.response.edit_message(
            content=cut(f"{interaction.message.content if interaction.message else ''}\n↳ "
                        f"{interaction.user.mention} chose: {self.label}", CONTENT_LIMIT), view=None)
        incoming = command_message(question=self.label, guild_id=interaction.guild_id, channel=channel,
                                   user=interaction.user)
        await button_host(interaction).answer(incoming, channel)


def turn_items(reply: Reply) -> list[discord.ui.Item[Any]]:
    """Cancel on a working message core named; the answers of a clarifying question."""
    items: list[discord.ui.Item[Any]] = []
    turn = reply.turn_id
    if turn and re.fullmatch(_ID, turn):
        items.append(CancelButton(turn=turn))
    if reply.clarification:
        items.extend(OptionButton(index=i, label=c) for i, c in enumerate(clarification_choices(list(reply.choices))))
    return items


def working_line(message: discord.Message, working: Reply, status: TurnStatus | None, *, every_s: float) -> TurnLine:
    """The live "Working on it…" line of ``message``: the turn's phase as it changes and the time so far."""

    async def edit(phase: str, elapsed_s: float) -> None:
        await message.edit(content=working_content(working, phase=phase, elapsed_s=elapsed_s))

    return TurnLine(edit, status, every_s=every_s, errors=(discord.HTTPException,))
