"""The agent's work in flight, so a shutdown can let it finish, or stop it and say so in its thread.

Each turn runs in its own task: stopping one (shutdown, a lost lease) cancels that task, which cancels its
running query on the server, and the turn ends with a reply naming the reason. Cancelling the adapter's
task instead (the client went away) still propagates as a plain cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from core.messages import Reply, ReplyKind

RESTARTING = (
    "pgbot is restarting, so your request was cancelled before it finished; nothing was changed. "
    "Please ask again in a moment."
)
NOT_TAKEN = "pgbot is restarting and did not take this message; nothing was run. Please send it again in a moment."
LEASE_LOST = (
    "pgbot lost its hold on this thread (its Redis state was lost or could not be reached), so this request was "
    "stopped before it finished; nothing was changed. Please ask again."
)


class InFlight:
    """Open work (handles, decisions) and the turn tasks among it."""

    def __init__(self) -> None:
        self.closing = False
        self._open = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: dict[object, asyncio.Task[list[Reply]]] = {}
        self._reasons: dict[object, str] = {}

    @property
    def open(self) -> int:
        return self._open

    @contextmanager
    def opened(self) -> Iterator[None]:
        """Count a piece of work as open while the block runs (a drain waits for it)."""
        self._open += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._open -= 1
            if self._open == 0:
                self._idle.set()

    async def run(self, token: object, work: Coroutine[Any, Any, list[Reply]]) -> list[Reply]:
        """Run one turn as a task that :meth:`stop` can end with a reason."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks[token] = task
        try:
            return await task
        except asyncio.CancelledError:
            reason = self._reasons.get(token)
            current = asyncio.current_task()
            if reason is None or (current is not None and current.cancelling()):
                raise
            return [Reply(kind=ReplyKind.ERROR, text=reason)]
        finally:
            self._tasks.pop(token, None)
            self._reasons.pop(token, None)

    def stop(self, token: object, reason: str) -> None:
        task = self._tasks.get(token)
        if task is not None and not task.done():
            self._reasons[token] = reason
            task.cancel()

    async def wait_idle(self, timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def drain(self, *, grace_s: float) -> int:
        """Stop taking work; wait for open work up to ``grace_s`` less a reserve, then stop the turns still
        running or waiting and give them the reserve to post why. Returns how many turns were stopped."""
        self.closing = True
        reserve = min(5.0, grace_s / 4)
        if await self.wait_idle(grace_s - reserve):
            return 0
        stopped = list(self._tasks)
        for token in stopped:
            self.stop(token, RESTARTING)
        await self.wait_idle(reserve)
        return len(stopped)
