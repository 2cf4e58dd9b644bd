"""One line of a chat message edited in place while work runs: a phase, a progress step, the time so far.

Long work used to post a message per step (ten minutes of index build: ~200 messages). A :class:`LiveLine`
instead edits one message, at most once per ``min_gap_s`` (chat APIs rate-limit edits, and people cannot
read faster anyway), as soon as the gap allows after a change, and every ``every_s`` to refresh the elapsed
time. Only the latest text is ever shown; :meth:`stop` waits for an edit in flight, so the final state, which
the caller shows after it, can never be overwritten by a late progress edit. Platform-neutral: the adapter
passes the edit and the errors its SDK raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from core.threads.turn_status import TurnStatus

log = structlog.get_logger(__name__)

MIN_GAP_S = 3.0

Edit = Callable[[str, float], Awaitable[None]]
"""Show (text, seconds since the line started) in the message."""


class LiveLine:
    """Edits one message with the latest text: rate-limited, ticking for the elapsed time, stopped once."""

    def __init__(
        self, edit: Edit, *, text: str = "", every_s: float | None = None, min_gap_s: float = MIN_GAP_S,
        errors: tuple[type[Exception], ...] = (),
    ) -> None:
        self._edit = edit
        self._text = text
        self._every_s = every_s
        self._min_gap_s = min(min_gap_s, every_s) if every_s else min_gap_s
        self._errors = errors
        self._started = time.monotonic()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._task = asyncio.create_task(self._run())
        self.edits = 0

    def set(self, text: str) -> None:
        """Show ``text`` at the next edit the rate allows (earlier texts not yet shown are skipped)."""
        if text != self._text:
            self._text = text
            self._wake.set()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    async def _run(self) -> None:
        last = time.monotonic()  # the message was just posted (or the card just said "running")
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):  # a tick: refresh the elapsed time
                await asyncio.wait_for(self._wake.wait(), timeout=self._every_s)
            self._wake.clear()
            wait = self._min_gap_s - (time.monotonic() - last)
            if wait > 0 and await self._stopped_within(wait):
                return
            if self._stopped.is_set():
                return
            try:
                await self._edit(self._text, self.elapsed_s)
            except self._errors as exc:  # progress is a courtesy: the work and its final state go on
                log.warning("live_line_edit_failed", error=type(exc).__name__)
                return
            self.edits += 1
            last = time.monotonic()

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """No more edits; returns once an edit in flight has landed."""
        self._stopped.set()
        self._wake.set()
        await self._task


def elapsed_text(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


class TurnLine:
    """The live line of one turn's "Working on it…" message: ``edit(phase, elapsed)`` on each phase core reports
    (``status``: core.threads.turn_status; None for a turn core did not name) and every ``every_s``."""

    def __init__(
        self, edit: Edit, status: TurnStatus | None, *, every_s: float, errors: tuple[type[Exception], ...]
    ) -> None:
        self._status = status
        self._line = LiveLine(edit, every_s=every_s, errors=errors)
        self._watch = asyncio.create_task(self._follow()) if status is not None else None

    async def _follow(self) -> None:
        assert self._status is not None
        while True:
            self._line.set(await self._status.wait_changed())

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self._line.stop()
