"""pgbot's core: the platform-independent agent. Adapters and the CLI use only what ``__all__`` lists."""

from core.agent import Agent
from core.config import Settings, load_settings
from core.context import ContextStore, MemoryContextStore, RedisContextStore
from core.errors import (
    AccessDeniedError,
    ApprovalError,
    ConfigError,
    DatabaseError,
    GuardError,
    LlmError,
    ModelHint,
    PgbotError,
)
from core.llm.base import ChatTurn, Completion, LlmClient, ToolCall, ToolSpec
from core.messages import ApprovalPrompt, Cell, Message, Reply, ReplyKind, ResultTable, ScheduleCard, ScheduleChange
from core.render import render_error
from core.schedules import Destination
from core.tools.registry import Tool, ToolContext, ToolKind, ToolOutput, tool

__all__ = [
    "AccessDeniedError",
    "Agent",
    "ApprovalError",
    "ApprovalPrompt",
    "Cell",
    "ChatTurn",
    "Completion",
    "ConfigError",
    "ContextStore",
    "DatabaseError",
    "Destination",
    "GuardError",
    "LlmClient",
    "LlmError",
    "MemoryContextStore",
    "Message",
    "ModelHint",
    "PgbotError",
    "RedisContextStore",
    "Reply",
    "ReplyKind",
    "ResultTable",
    "ScheduleCard",
    "ScheduleChange",
    "Settings",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolKind",
    "ToolOutput",
    "ToolSpec",
    "load_settings",
    "render_error",
    "tool",
]
