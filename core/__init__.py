"""pgbot's core: the platform-independent agent. Adapters and the CLI use only what ``__all__`` lists."""

from core.agent.edit_actions import EditSource, editable_sql
from core.agent.loop import Agent
from core.agent.render import render_error
from core.charts import can_chart
from core.config import Settings, load_settings
from core.display import NULL_SHOWN, DisplayTable, context_line, display_table
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
from core.messages import (
    ApprovalPrompt,
    Cell,
    ChartImage,
    Message,
    Reply,
    ReplyKind,
    ResultTable,
    ScheduleCard,
    ScheduleChange,
)
from core.pretty_sql import pretty_sql
from core.schedules import Destination
from core.threads.context import ContextStore, MemoryContextStore, RedisContextStore
from core.tools.registry import Tool, ToolContext, ToolKind, ToolOutput, tool

__all__ = [
    "NULL_SHOWN",
    "AccessDeniedError",
    "Agent",
    "ApprovalError",
    "ApprovalPrompt",
    "Cell",
    "ChartImage",
    "ChatTurn",
    "Completion",
    "ConfigError",
    "ContextStore",
    "DatabaseError",
    "Destination",
    "DisplayTable",
    "EditSource",
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
    "can_chart",
    "context_line",
    "display_table",
    "editable_sql",
    "load_settings",
    "pretty_sql",
    "render_error",
    "tool",
]
