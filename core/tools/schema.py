"""Schema tools: what tables exist, and what one table looks like."""

from __future__ import annotations

from core.db.catalog import describe_table as describe
from core.db.catalog import list_tables as tables_of
from core.messages import ResultTable
from core.tools.registry import ToolContext, ToolKind, ToolOutput, tool


@tool(kind=ToolKind.READ, always=True)
async def list_tables(ctx: ToolContext, schema_name: str | None = None) -> ToolOutput:
    """List the tables and views you can read, with row estimates and comments.

    Args:
        schema_name: only this schema
    """
    schema = schema_name
    found = await tables_of(ctx.database, role=ctx.actor.role, schema=schema)
    table = ResultTable(
        columns=("table", "kind", "rows (est.)", "comment"),
        rows=tuple((t.qualified, _KINDS.get(t.kind, t.kind), t.row_estimate, t.comment or "") for t in found),
    )
    if not found:
        return ToolOutput(text="No readable tables" + (f" in schema {schema}." if schema else "."))
    text = "\n".join(
        f"{t.qualified} ({_KINDS.get(t.kind, t.kind)}, ~{t.row_estimate} rows)"
        + (f": {t.comment}" if t.comment else "")
        for t in found[:400]
    )
    if len(found) > 400:
        text += f"\n…and {len(found) - 400} more; pass a schema to narrow it."
    return ToolOutput(text=text, table=table)


@tool(kind=ToolKind.READ, always=True)
async def describe_table(ctx: ToolContext, table: str) -> ToolOutput:
    """Show a table's or view's columns, types, comments, keys and indexes.

    Args:
        table: table name, optionally schema-qualified
    """
    desc = await describe(ctx.database, role=ctx.actor.role, table=table)
    rendered = desc.render()
    rows = tuple((c.name, c.type, "yes" if c.nullable else "no", c.default or "", c.comment or "")
                 for c in desc.columns)
    return ToolOutput(
        text=rendered,
        table=ResultTable(columns=("column", "type", "nullable", "default", "comment"), rows=rows),
    )


_KINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}
