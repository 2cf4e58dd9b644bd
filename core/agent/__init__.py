"""The agent: the loop that answers a message (``loop``), slash commands and buttons, the error policy (``render``).
May import every other core package; only ``core/__init__.py``, adapters and bot import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.agent.loop import Agent

__all__ = ["Agent"]


def __getattr__(name: str) -> object:
    """``from core.agent import Agent`` keeps working (core.agent was the loop's module) without loading the loop
    whenever any module of this package is imported."""
    if name == "Agent":
        from core.agent.loop import Agent

        return Agent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
