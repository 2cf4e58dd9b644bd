"""Where an approval card stands: the state adapters show in its one state line (core.cards words it).

A plain type with no imports from core, so :mod:`core.messages` can carry it on a :class:`Reply`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class CardStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for Approve / Reject
    RUNNING = "running"  # approved and claimed; the change is running
    APPLIED = "applied"
    REJECTED = "rejected"
    FAILED = "failed"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        """The card takes no more clicks: its buttons go."""
        return self not in (CardStatus.PENDING, CardStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class CardState:
    """One state of one card. ``by`` is a chat identity (adapters show it as a mention); ``detail`` is the
    command tag ("UPDATE 3"), a failure, or the latest progress line of long work."""

    status: CardStatus
    by: str = ""
    at: float = 0.0  # epoch seconds: when it was decided, or when it expired
    detail: str = ""
    duration_ms: float | None = None
    nothing_changed: bool = True  # FAILED: its transaction was rolled back (False: it ran outside one)


@dataclass(frozen=True, slots=True)
class Approvers:
    """Who may approve a change on one database, for the card to name (and notify)."""

    people: tuple[str, ...] = ()  # identities and platform groups from approvers.users (the requester left out)
    roles: tuple[str, ...] = ()  # database roles from approvers.roles
    role_holders: tuple[str, ...] = ()  # roles-table keys mapped to those roles (a "*" entry is not listed)
    anyone_mapped: bool = False  # "*" maps to an approver role: anyone mapped may approve

    @property
    def nobody(self) -> bool:
        return not (self.people or self.roles)
