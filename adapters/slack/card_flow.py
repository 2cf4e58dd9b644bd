"""An Approve / Reject click in Slack, from the card's point of view.

The clicker, the action id and the decision go to core. A click that changes nothing (not an approver,
self-approval, already decided) is answered to the clicker alone (``chat.postEphemeral``); the card and the
thread stay as they were. An approval that wins turns the card to "Approved by @x — running" at once (its
buttons gone), long work then edits that one line with its progress (rate-limited, never a message per
step), and the card ends in one state line: "Applied: UPDATE 3 in 12 ms", "Rejected by @y", "Failed: …
(nothing changed)". The outcome is also posted in the thread. A card past its expiry turns to "Expired 14:05":
on the first click after it, or by the sweep (:mod:`adapters.card_sweep`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.card_sweep import CardSweep
from adapters.live_line import LiveLine
from adapters.slack import cards, render
from core import Agent, Reply
from core.card_state import CardState, CardStatus

log = structlog.get_logger(__name__)

PROGRESS_TICK_S = 15.0  # a running card refreshes its elapsed time this often (and on every progress step)


@dataclass(frozen=True, slots=True)
class CardAt:
    """Where a card is, and its blocks as posted (edits keep everything but the state line and buttons)."""

    channel: str
    ts: str
    blocks: list[dict[str, Any]]

    async def show(self, client: AsyncWebClient, state: CardState, *, elapsed_s: float | None = None) -> None:
        await client.chat_update(channel=self.channel, ts=self.ts, text=cards.state_fallback(state),
                                 blocks=cards.restated(self.blocks, state, elapsed_s=elapsed_s))


class CardFlow:
    """Decisions on cards, and the sweep that expires the cards this process posted."""

    def __init__(self, agent: Agent, client: AsyncWebClient, *, tick_s: float = PROGRESS_TICK_S) -> None:
        self.agent = agent
        self.tick_s = tick_s

        async def show(where: CardAt, state: CardState) -> None:
            await where.show(client, state)

        async def expire(action_id: str) -> CardState | None:
            return await agent.expire_card(action_id)

        self.sweep: CardSweep[CardAt] = CardSweep(expire=expire, show=show)

    def posted(self, reply: Reply, *, channel: str, ts: str, blocks: list[dict[str, Any]]) -> None:
        """A card is in the thread: watch its expiry."""
        if reply.approval is not None:
            self.sweep.watch(reply.approval.action_id, expires_at=reply.approval.expires_at,
                             where=CardAt(channel=channel, ts=ts, blocks=blocks))

    async def decide(
        self, client: AsyncWebClient, *, action_id: str, user: str, channel: str, message: Mapping[str, Any],
        approve: bool, render_reply: Callable[[Reply], render.SlackMessage],
    ) -> None:
        """One click; ``render_reply`` is the poster's renderer (mentions, tables as configured)."""
        thread_ts = str(message.get("thread_ts") or message["ts"])
        card = CardAt(channel=channel, ts=str(message["ts"]), blocks=list(message.get("blocks") or []))
        by = f"slack:{user}"
        running: list[LiveLine] = []

        async def started() -> None:
            state = CardState(status=CardStatus.RUNNING, by=by, at=time.time())
            await card.show(client, state)

            async def edit(text: str, elapsed_s: float) -> None:
                await card.show(client, CardState(status=CardStatus.RUNNING, by=by, detail=text), elapsed_s=elapsed_s)

            running.append(LiveLine(edit, every_s=self.tick_s, errors=(SlackApiError,)))

        async def progress(text: str) -> None:
            if running:
                running[0].set(text)

        outcome = await self.agent.decide(action_id=action_id, decided_by=by, approve=approve, progress=progress,
                                          started=started)
        for line in running:
            await line.stop()  # no progress edit may land after the final state
        shown = render_reply(outcome)
        try:
            if outcome.card is not None:
                self.sweep.forget(action_id)
                await card.show(client, outcome.card)
            if outcome.card is not None and outcome.card.status is not CardStatus.EXPIRED:
                await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=shown.text,
                                              blocks=shown.blocks)
            else:  # refused, already decided, expired: for the clicker alone
                await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=shown.text,
                                                blocks=shown.blocks)
        except SlackApiError as exc:
            log.error("slack_post_failed", channel=channel, error=exc.response.get("error"))
