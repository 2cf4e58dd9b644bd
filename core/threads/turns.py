"""Per-thread ordering: messages in one thread run one at a time, in arrival order; threads run in parallel.

A message takes its place in its thread's line synchronously, when the agent first sees it (before any
``await``), so a slow "working…" post by an adapter cannot let a later message overtake it. Each line is
bounded: a message beyond ``max_waiting`` gets a :class:`BusyError` at once instead of waiting unboundedly.
Lines are dropped when empty, so a million threads over a day leave nothing behind.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

from core.errors import BusyError


class Ticket:
    """One message's place in its thread's line; ``async with ticket`` waits for its turn."""

    __slots__ = ("_done", "_line", "_owner", "_ready", "key")

    def __init__(self, owner: ThreadLocks, key: str, line: deque[Ticket]) -> None:
        self._owner = owner
        self.key = key
        self._line = line
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done = False

    async def __aenter__(self) -> Ticket:
        try:
            await self._ready
        except BaseException:
            self.release()  # cancelled while waiting: leave the line, wake the next one if it was our turn
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def release(self) -> None:
        """Leave the line (idempotent); the next ticket, if any, may go."""
        if self._done:
            return
        self._done = True
        line = self._line
        was_first = bool(line) and line[0] is self
        try:
            line.remove(self)
        except ValueError:
            return
        if was_first and line and not line[0]._ready.done():
            line[0]._ready.set_result(None)
        if not line:
            self._owner._drop(self.key, line)


class ThreadLocks:
    """A FIFO line per thread key, bounded by ``max_waiting`` messages waiting behind the running one."""

    def __init__(self, *, max_waiting: int | None = None) -> None:
        self._lines: dict[str, deque[Ticket]] = {}
        self.max_waiting = max_waiting

    def enter(self, key: str) -> Ticket:
        """Take a place in ``key``'s line now (no await); raises BusyError when the line is full."""
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = deque()
        if self.max_waiting is not None and len(line) > self.max_waiting:
            raise BusyError(
                f"This thread already has {len(line) - 1} messages waiting for pgbot; this one was not run. "
                "Send it again once the earlier ones are answered."
            )
        ticket = Ticket(self, key, line)
        line.append(ticket)
        if len(line) == 1:
            ticket._ready.set_result(None)
        return ticket

    def hold(self, key: str) -> Ticket:
        """``async with locks.hold(key):`` — enter the line and wait for the turn."""
        return self.enter(key)

    def waiting(self, key: str) -> int:
        """Messages in ``key``'s line, the running one included."""
        return len(self._lines.get(key, ()))

    def _drop(self, key: str, line: deque[Ticket]) -> None:
        if self._lines.get(key) is line:
            del self._lines[key]

    def __len__(self) -> int:
        return len(self._lines)
