"""The LLM boundary: chat turns in, a completion (text and/or tool calls) out.

``LlmClient`` is the only thing the agent knows about models. ``OpenAIClient`` implements it with the
official ``openai`` SDK; ``ScriptedLlm`` (in ``core.llm.memory``) implements it for unit tests of the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(BaseModel):
    """A tool call as the model sent it; ``arguments`` stays raw JSON text so bad JSON reaches the loop."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: str = "{}"


class ReadScope(BaseModel):
    """The access a history turn was produced under: a database and the role on it (None: the login role).

    Same role name on two databases is not the same access, so both are part of the scope."""

    model_config = ConfigDict(frozen=True)

    database: str
    role: str | None = None


class ChatTurn(BaseModel):
    """One entry of the conversation sent to the model (OpenAI chat format, minus SDK types).

    ``read_as`` is kept in the thread's history and never sent to the model: every scope whose results the
    turn's text may draw on (a turn that switched database carries both). Empty means unknown (history
    stored before scopes existed), which every reader treats as another person's (``core.threads.history_scope``).
    """

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    read_as: tuple[ReadScope, ...] = ()


class ToolSpec(BaseModel):
    """What the model is told about one tool."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    parameters: dict[str, object] = Field(default_factory=dict)

    def parameter_names(self) -> tuple[str, ...]:
        """The argument names its JSON schema declares (``properties``)."""
        properties = self.parameters.get("properties")
        return tuple(properties) if isinstance(properties, dict) else ()


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens the server reused from its cache, when it says so


class FinishReason:
    """``finish_reason`` values pgbot acts on."""

    LENGTH = "length"  # stopped at max_tokens


class Completion(BaseModel):
    """The model's reply: final text, tool calls, or both."""

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str | None = None  # as the server said: "stop", "tool_calls", "length", ...
    calls_from_text: bool = False  # the tool calls were recovered from text the model wrote (core.llm.textcalls)


class LlmClient(Protocol):
    """Anything that can complete a chat with tools."""

    async def complete(self, messages: Sequence[ChatTurn], tools: Sequence[ToolSpec]) -> Completion: ...

    async def aclose(self) -> None: ...
