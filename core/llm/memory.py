"""``ScriptedLlm``: an in-memory ``LlmClient`` for unit tests of the agent loop.

It answers with the completions a test queued, in order, and records every call so the test can check
the prompt the agent built. End-to-end tests still go over real HTTP (``tests/llm_server.py``).
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from core.llm.base import ChatTurn, Completion, ToolCall, ToolSpec

_ids = itertools.count(1)  # default call ids stay unique across a whole conversation
Responder = Callable[[Sequence[ChatTurn], Sequence[ToolSpec]], Completion]
Scripted = Completion | str | ToolCall | BaseException | Responder


class ScriptExhaustedError(AssertionError):
    """The agent asked for more completions than the test scripted (not a PgbotError on purpose)."""


@dataclass(frozen=True)
class LlmCall:
    """One ``complete`` call as the agent made it."""

    messages: tuple[ChatTurn, ...]
    tools: tuple[ToolSpec, ...]

    @property
    def tool_names(self) -> list[str]:
        return [t.name for t in self.tools]

    @property
    def last(self) -> ChatTurn:
        return self.messages[-1]


def answer(text: str) -> Completion:
    """A final prose answer."""
    return Completion(content=text)


def call(
    name: str,
    arguments: Mapping[str, object] | str | None = None,
    *,
    call_id: str | None = None,
    content: str | None = None,
) -> Completion:
    """A completion with one tool call; a ``str`` for arguments is sent raw (to script bad JSON)."""
    return calls((name, arguments), call_id=call_id, content=content)


def calls(
    *items: tuple[str, Mapping[str, object] | str | None],
    call_id: str | None = None,
    content: str | None = None,
) -> Completion:
    """A completion with several tool calls in one step.

    Ids: ``call_id`` for a single call, ``<call_id>_<n>`` for several, else a unique ``call_<n>``.
    """
    tool_calls = []
    for n, (name, arguments) in enumerate(items, start=1):
        raw = arguments if isinstance(arguments, str) else json.dumps(dict(arguments or {}))
        single = bool(call_id) and len(items) == 1
        ident = call_id if single and call_id else f"{call_id}_{n}" if call_id else f"call_{next(_ids)}"
        tool_calls.append(ToolCall(id=ident, name=name, arguments=raw))
    return Completion(content=content, tool_calls=tuple(tool_calls))


class ScriptedLlm:
    """Replies from a queue. Entries: a Completion; a str (prose answer); a ToolCall (one call); an
    exception instance (raised, e.g. ``LlmUnavailableError()``); or a callable ``(messages, tools) ->
    Completion`` for replies that depend on the prompt. An empty queue raises ScriptExhaustedError,
    unless a ``fallback`` callable is set.
    """

    def __init__(self, *replies: Scripted, fallback: Responder | None = None) -> None:
        self._queue: deque[Scripted] = deque(replies)
        self.fallback = fallback
        self.calls: list[LlmCall] = []
        self.closed = False

    def script(self, *replies: Scripted) -> None:
        self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """How many scripted replies are still unused (tests assert 0 at the end)."""
        return len(self._queue)

    async def complete(self, messages: Sequence[ChatTurn], tools: Sequence[ToolSpec]) -> Completion:
        self.calls.append(LlmCall(messages=tuple(messages), tools=tuple(tools)))
        if self._queue:
            item = self._queue.popleft()
        elif self.fallback is not None:
            item = self.fallback
        else:
            raise ScriptExhaustedError(
                f"ScriptedLlm: call {len(self.calls)} has no scripted completion "
                f"(last turn: {messages[-1].role if messages else 'none'})"
            )
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, str):
            return Completion(content=item)
        if isinstance(item, ToolCall):
            return Completion(tool_calls=(item,))
        if isinstance(item, Completion):
            return item
        return item(messages, tools)

    async def aclose(self) -> None:
        self.closed = True
