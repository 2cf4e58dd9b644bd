"""Whether the chat connection is up, as the running adapter reports it, for /readyz.

Core knows no chat SDK, so the adapter's runner registers a plain callable (``report_chat``) that answers
"connected?" from its SDK's own state. ``expect_chat`` is called first by whoever starts the runner, so a
bot that has not connected yet is "not ready" rather than ready by omission.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

import structlog

ChatCheck = Callable[[], bool | Awaitable[bool]]
CHECK_TIMEOUT_S = 5.0

log = structlog.get_logger(__name__)


class Health:
    def __init__(self) -> None:
        self._chats: dict[str, ChatCheck | None] = {}

    def expect_chat(self, platform: str) -> None:
        """A chat connection for ``platform`` is required; until its runner reports, it counts as down."""
        self._chats.setdefault(platform, None)

    def report_chat(self, platform: str, check: ChatCheck) -> None:
        """The runner's "are we connected?" callable (sync or async; must be cheap and never raise secrets)."""
        self._chats[platform] = check

    async def problems(self) -> list[str]:
        """One line per chat connection that is not up."""
        lines = []
        for platform, check in self._chats.items():
            if check is None:
                lines.append(f"{platform}: not connected yet")
                continue
            try:
                answer = check()
                ok = await asyncio.wait_for(answer, CHECK_TIMEOUT_S) if inspect.isawaitable(answer) else answer
            except TimeoutError:
                lines.append(f"{platform}: connection check gave no answer within {CHECK_TIMEOUT_S:g} s")
                continue
            except Exception as exc:  # noqa: BLE001 - any SDK failure means "not ready"; logged, not shown
                log.warning("chat_check_failed", platform=platform, error=type(exc).__name__)
                lines.append(f"{platform}: connection check failed ({type(exc).__name__})")
                continue
            if not ok:
                lines.append(f"{platform}: not connected")
        return lines
