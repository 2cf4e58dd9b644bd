"""How a scheduled answer reaches its channel: each adapter runner registers a :class:`Sender` for its platform.

Core produces :class:`core.messages.Reply` s addressed to a :class:`Destination`; the sender turns them into
platform calls (Slack Web API, a Discord channel, the open terminal). A replica claims only runs for the
platforms whose sender is ready, so a Slack-only replica never takes a Discord schedule's run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from core.messages import Reply
from core.schedules.model import Destination


class Sender(Protocol):
    def ready(self) -> bool:
        """Whether it can post now (connected); runs for its platform wait until it can."""
        ...

    async def send(self, destination: Destination, replies: Sequence[Reply]) -> None:
        """Post ``replies`` in order; raise on failure (the run is then recorded as not delivered)."""
        ...

    async def current_groups(self, destination: Destination, identity: str) -> tuple[str, ...] | None:
        """The creator's platform groups now (a Discord member's guild roles; () after leaving the guild), or
        None when the platform has none to tell (the groups stored with the schedule stand). Raises
        PgbotError when the look-up failed: the run then fails rather than run on stale groups."""
        ...


class Senders:
    """The senders of the adapters running in this process, by platform."""

    def __init__(self) -> None:
        self._senders: dict[str, Sender] = {}

    def register(self, platform: str, sender: Sender) -> None:
        self._senders[platform] = sender

    def get(self, platform: str) -> Sender | None:
        return self._senders.get(platform)

    def ready_platforms(self) -> tuple[str, ...]:
        return tuple(sorted(p for p, s in self._senders.items() if s.ready()))
