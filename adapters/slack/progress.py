"""Long work shows progress: while core works on a turn, the "Working on it…" message is edited every few
seconds to say how long it has been running, so a slow query does not look like a dead bot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from slack_sdk.errors import SlackApiError

log = structlog.get_logger(__name__)


class Progress:
    """Calls ``update(seconds elapsed)`` every ``every_s`` until :meth:`stop`; one update at a time."""

    def __init__(self, update: Callable[[float], Awaitable[None]], *, every_s: float) -> None:
        self._update = update
        self._every_s = every_s
        self._stopped = asyncio.Event()
        self._task = asyncio.create_task(self._run(time.monotonic()))

    async def _run(self, started: float) -> None:
        while True:
            try:
                await asyncio.wait_for(self._stopped.wait(), timeout=self._every_s)
                return
            except TimeoutError:
                pass
            try:
                await self._update(time.monotonic() - started)
            except SlackApiError as exc:  # progress is a courtesy: the answer still comes
                log.warning("slack_progress_failed", error=exc.response.get("error"))
                return

    async def stop(self) -> None:
        """Stop ticking; waits for an edit in flight, so it can never land after the answer's edit."""
        self._stopped.set()
        await self._task


def elapsed_text(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"
