"""Reply → terminal: rich tables and highlighted SQL for people; CSV and JSON for scripts."""

from __future__ import annotations

import csv
import io
import json

from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table

from core import Reply, ReplyKind, ResultTable

STYLE = {
    ReplyKind.ERROR: "bold red",
    ReplyKind.APPROVAL: "bold yellow",
    ReplyKind.OUTCOME: "bold green",
    ReplyKind.INFO: "cyan",
}


def render_reply(console: Console, reply: Reply, *, max_rows: int = 100) -> None:
    """Print one reply: the text, the SQL that ran, then the table."""
    if reply.text:
        console.print(reply.text, style=STYLE.get(reply.kind, ""), markup=False, highlight=False)
    for statement in reply.sql:
        console.print(Syntax(statement, "sql", theme="ansi_dark", word_wrap=True))
    if reply.approval is not None:
        a = reply.approval
        console.print(Panel(
            f"{a.summary}\nDatabase: {a.database}   Role: {a.role or '(login role)'}   Requested by: {a.requested_by}",
            title=f"Change waiting for approval ({a.action_id})", border_style="yellow",
        ))
    if reply.table is not None and reply.table.columns:
        console.print(render_table(reply.table, max_rows=max_rows))
    for card in reply.schedules:
        state = "resume" if card.paused else "pause"
        console.print(f"• {card.summary}  (/schedule {state}|delete {card.schedule_id})", markup=False,
                      highlight=False)
    if reply.answer_id is not None:
        console.print("Rate this answer with /good or /bad.", style="dim", markup=False, highlight=False)


def render_table(table: ResultTable, *, max_rows: int = 100) -> Table:
    out = Table(show_lines=False, header_style="bold")
    for column in table.columns:
        out.add_column(column, overflow="fold")
    for row in table.rows[:max_rows]:
        out.add_row(*("NULL" if v is None else str(v) for v in row))
    notes = []
    if table.row_count > max_rows:
        notes.append(f"{table.row_count - max_rows} more rows not shown")
    if table.truncated:
        notes.append(f"result cut at {table.row_cap} rows; more exist")
    if notes:
        out.caption = "; ".join(notes)
    return out


def reply_as_csv(reply: Reply) -> str:
    buffer = io.StringIO()
    if reply.table is not None:
        writer = csv.writer(buffer)
        writer.writerow(reply.table.columns)
        writer.writerows(["" if v is None else v for v in row] for row in reply.table.rows)
    return buffer.getvalue()


def reply_as_json(reply: Reply) -> str:
    """One object: answer, sql (statements run, in order), columns, rows, truncated, pending."""
    table = reply.table
    payload: dict[str, object] = {
        "answer": reply.text,
        "kind": reply.kind.value,
        "database": reply.database,
        "sql": list(reply.sql),
        "columns": list(table.columns) if table else [],
        "rows": [list(r) for r in table.rows] if table else [],
        "truncated": table.truncated if table else False,
        "pending": None,
    }
    if reply.approval is not None:
        payload["pending"] = {
            "action_id": reply.approval.action_id,
            "sql": reply.approval.sql,
            "summary": reply.approval.summary,
            "expires_at": reply.approval.expires_at,
        }
    if reply.kind is ReplyKind.ERROR:
        payload["error"] = reply.text
    return json.dumps(payload, ensure_ascii=False, default=str)
