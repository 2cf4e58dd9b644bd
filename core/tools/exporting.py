"""The guard-checked CSV export the ``export_csv`` tool and ``/export`` share: a read, as the user, streamed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.db.export import ExportResult, export_csv
from core.errors import GuardError

if TYPE_CHECKING:
    from core.tools.registry import ToolContext


EXPORTABLE = frozenset({"SelectStmt"})  # SELECT, WITH … SELECT, VALUES, TABLE: what COPY (query) accepts


async def export_for(ctx: ToolContext, sql: str) -> ExportResult:
    """Guard-check ``sql`` as a read, then export it as the conversation's user (tool and command share it)."""
    checked = ctx.guard.check_read(sql, allowed_functions=ctx.database.settings.allowed_functions)
    if checked.statement_type not in EXPORTABLE:
        raise GuardError("Only queries that return rows (SELECT, WITH … SELECT, VALUES, TABLE) can be exported.")
    limits = ctx.settings.limits
    result = await export_csv(ctx.postgres(), checked=checked, role=ctx.actor.role, directory=limits.export_dir,
                              max_bytes=limits.export_max_bytes)
    ctx.log.info("export_done", rows=result.rows, bytes=result.bytes, ms=round(result.duration_ms, 1))
    return result
