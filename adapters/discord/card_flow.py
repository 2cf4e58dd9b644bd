"""An Approve / Reject click in Discord, from the card's point of view (as adapters.slack.card_flow for Slack).

A click that changes nothing (not an approver, self-approval, already decided, expired) is answered to the
clicker alone (an ephemeral followup). An approval that wins turns the card's content into "Approved by @x —
running" at once and removes its buttons; long work edits that line (rate-limited); the card ends in one state
line, and the outcome is posted in the thread. Edits go through the channel's message endpoint with the bot's
token, which, unlike the interaction's token, does not lapse after 15 minutes of index build.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord
import structlog

from adapters.card_sweep import CardSweep
from adapters.discord import cards
from adapters.discord.events import PLATFORM, member_groups
from adapters.discord.render import render
from adapters.live_line import LiveLine
from core.card_state import CardState, CardStatus
from core.permissions import GroupLookup

if TYPE_CHECKING:
    from core import Agent, Reply

log = structlog.get_logger(__name__)
PROGRESS_TICK_S = 15.0


async def show_card(message: discord.Message | discord.PartialMessage, state: CardState, *,
                    elapsed_s: float | None = None) -> None:
    """The card in ``state``: its content is the state line; no buttons once it takes no more clicks."""
    if state.status is CardStatus.PENDING:
        await message.edit(content=cards.state_content(state, elapsed_s=elapsed_s))
    else:
        await message.edit(content=cards.state_content(state, elapsed_s=elapsed_s), view=None)


def card_sweep(agent: Agent) -> CardSweep[discord.Message]:
    """Expires the cards this client posted, on time (adapters.card_sweep)."""

    async def expire(action_id: str) -> CardState | None:
        return await agent.expire_card(action_id)

    async def show(message: discord.Message, state: CardState) -> None:
        await show_card(message, state)

    return CardSweep(expire=expire, show=show)


async def decide(
    interaction: discord.Interaction[Any], *, agent: Agent, action_id: str, approve: bool,
    current_groups: GroupLookup, sweep: CardSweep[discord.Message] | None, tick_s: float = PROGRESS_TICK_S,
    outcome_view: Callable[[Reply], dict[str, Any]] | None = None,
) -> None:
    """One click, already deferred; the card follows it. ``outcome_view``: the outcome message's buttons
    (views passes its Undo button; this module cannot import views, which imports it)."""
    card = interaction.message
    by = f"{PLATFORM}:{interaction.user.id}"
    running: list[LiveLine] = []

    async def started() -> None:
        if card is None:
            return
        await show_card(card, CardState(status=CardStatus.RUNNING, by=by, at=time.time()))

        async def edit(text: str, elapsed_s: float) -> None:
            await show_card(card, CardState(status=CardStatus.RUNNING, by=by, detail=text), elapsed_s=elapsed_s)

        running.append(LiveLine(edit, every_s=tick_s, errors=(discord.HTTPException,)))

    async def progress(text: str) -> None:
        if running:
            running[0].set(text)

    outcome = await agent.decide(
        action_id=action_id, decided_by=by, approve=approve, progress=progress, started=started,
        groups=member_groups(interaction.user), current_groups=current_groups,
    )
    for line in running:
        await line.stop()  # no progress edit may land after the final state
    shown = render(outcome)
    try:
        if outcome.card is not None:
            if sweep is not None:
                sweep.forget(action_id)
            if card is not None:
                await show_card(card, outcome.card)
        if outcome.card is not None and outcome.card.status is not CardStatus.EXPIRED:
            # The outcome carries the Undo button when pgbot kept the rows (core.undo).
            extra = outcome_view(outcome) if outcome_view is not None else {}
            await interaction.followup.send(content=shown.content, embeds=shown.embeds, **extra)
        else:  # refused, already decided, expired: only the clicker needs to know
            await interaction.followup.send(content=shown.content, embeds=shown.embeds, ephemeral=True)
    except discord.HTTPException as exc:
        log.error("discord_post_failed", status=exc.status, error=exc.text[:200])
