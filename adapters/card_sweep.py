"""Approval cards end as "Expired 14:05" on time, not only when someone clicks one after its expiry.

Each adapter process remembers the cards it posted (action id, expiry, where the card is) and, once a card's
time has passed, asks core to expire it (``Agent.expire_card``: claimed and audited once, whichever replica or
click gets there first) and edits the card when core says it expired now. Kept in memory only: after a restart
the first click on an old card expires it instead (core answers that click with the Expired state too).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

from core.card_state import CardState

log = structlog.get_logger(__name__)

Where = TypeVar("Where")
SWEEP_EVERY_S = 30.0
MAX_WATCHED = 10_000  # a bound on memory: the oldest are forgotten first (a click still expires them)


class CardSweep(Generic[Where]):
    """Watches posted cards; ``expire(action_id)`` is core's, ``show(where, state)`` the adapter's edit."""

    def __init__(
        self, *, expire: Callable[[str], Awaitable[CardState | None]],
        show: Callable[[Where, CardState], Awaitable[None]], every_s: float = SWEEP_EVERY_S,
    ) -> None:
        self._expire = expire
        self._show = show
        self._every_s = every_s
        self._cards: dict[str, tuple[float, Where]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def watch(self, action_id: str, *, expires_at: float, where: Where) -> None:
        if len(self._cards) >= MAX_WATCHED:
            self._cards.pop(next(iter(self._cards)))
        self._cards[action_id] = (expires_at, where)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        self._wake.set()

    def forget(self, action_id: str) -> None:
        """A click decided it (or turned it to Expired): nothing left to sweep."""
        self._cards.pop(action_id, None)

    def __contains__(self, action_id: str) -> bool:
        return action_id in self._cards

    async def _run(self) -> None:
        while self._cards:
            soonest = min(expires for expires, _ in self._cards.values())
            wait = min(max(soonest - time.time(), 0.0) + 0.05, self._every_s)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
                continue  # a new card may expire sooner
            except TimeoutError:
                pass
            await self.sweep()

    async def sweep(self) -> None:
        """Expire the cards whose time has passed (one at a time: a sweep is rare and small)."""
        now = time.time()
        for action_id, (expires_at, where) in list(self._cards.items()):
            if expires_at > now:
                continue
            self._cards.pop(action_id, None)
            state = await self._expire(action_id)
            if state is None:
                continue
            try:
                await self._show(where, state)
            except Exception as exc:  # noqa: BLE001 - one card's failed edit must not stop the sweep
                log.warning("card_expiry_not_shown", action_id=action_id, error=type(exc).__name__)
