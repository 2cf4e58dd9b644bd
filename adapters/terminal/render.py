"""Reply → terminal: rich tables and SQL for people; CSV and JSON for scripts.

An answer prints answer → data → context, then its SQL: the text, the result (core.display's formatted
values, numbers right-aligned, the same 15-row / 6-column shortening as Slack and Discord; one row as
key: value lines), a dim note of what is not shown, a dim context line (database · role · rows · time ·
time zone), and the SQL pretty-printed and dimmed (a terminal is where people read SQL, so it is always
shown). An export names its file: the terminal runs on the host that wrote it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from core import Reply, ReplyKind, ResultTable, context_line, display_table, pretty_sql
from core.display import CHAT_ROWS, DisplayTable

STYLE = {
    ReplyKind.ERROR: "bold red",
    ReplyKind.APPROVAL: "bold yellow",
    ReplyKind.OUTCOME: "bold green",
    ReplyKind.INFO: "cyan",
}


def render_reply(console: Console, reply: Reply, *, max_rows: int = CHAT_ROWS) -> None:
    """Print one reply: the text, the result, what was left out, the context line, then the SQL (dim)."""
    if reply.text:
        console.print(reply.text, style=STYLE.get(reply.kind, ""), markup=False, highlight=False)
    if reply.choices:  # a clarifying question's answers: type one (chat adapters show buttons)
        console.print("Answer with one of: " + " · ".join(reply.choices), style="dim", markup=False, highlight=False)
    if reply.approval is not None:
        _approval(console, reply)
        return
    shown: DisplayTable | None = None
    if reply.table is not None and reply.table.columns:
        shown = display_table(reply.table, max_rows=max_rows, width=max(console.width - 10, 20))
        console.print(render_shown(shown))
        note = shown.note(where="(/export writes every row to a CSV file)")
        if shown.more_exist and "export" not in note:
            note = " · ".join(n for n in (note, "more rows exist: /export writes every row to a CSV file") if n)
        if note:
            console.print(note, style="dim", markup=False, highlight=False)
    if reply.export is not None:
        console.print(f"Saved to {reply.export.path}", style="green", markup=False, highlight=False)
    if reply.database and reply.kind in (ReplyKind.ANSWER, ReplyKind.RESULT):
        line = context_line(reply, shown)
        if line:
            console.print(line, style="dim", markup=False, highlight=False)
    for statement in reply.sql:
        console.print(Text(pretty_sql(statement), style="dim"))
    for card in reply.schedules:
        state = "resume" if card.paused else "pause"
        console.print(f"• {card.summary}  (/schedule {state}|delete {card.schedule_id})", markup=False,
                      highlight=False)
    if reply.answer_id is not None:
        console.print("Rate this answer with /good or /bad.", style="dim", markup=False, highlight=False)
    undo_hint(console, reply)


def undo_hint(console: Console, reply: Reply) -> None:
    """The terminal's Undo button: the command that asks for the undo of this change (core.undo)."""
    if reply.undo_id:
        console.print(f"To undo it: /undo {reply.undo_id}", style="dim", markup=False, highlight=False)


def _approval(console: Console, reply: Reply) -> None:
    a = reply.approval
    assert a is not None
    for statement in reply.sql:
        console.print(Syntax(statement, "sql", theme="ansi_dark", word_wrap=True))
    notes = "".join(f"\nNote: {note}" for note in a.notes)
    console.print(Panel(
        f"{a.summary}\nDatabase: {a.database}   Role: {a.role or '(login role)'}   Requested by: {a.requested_by}"
        f"{notes}",
        title=f"Change waiting for approval ({a.action_id})", border_style="yellow",
    ))
    if reply.table is not None and reply.table.columns:
        console.print(render_table(reply.table))


def render_shown(shown: DisplayTable) -> Table:
    """A result as a rich table; a single row as key: value lines."""
    if shown.one_row:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column(overflow="fold")
        for name, value in zip(shown.columns, shown.rows[0], strict=True):
            grid.add_row(Text(name), Text(value))
        return grid
    out = Table(show_lines=False, header_style="bold")
    for name, right in zip(shown.columns, shown.right, strict=True):
        out.add_column(Text(name), justify="right" if right else "left", overflow="fold")
    for row in shown.rows:
        out.add_row(*(Text(v) for v in row))
    return out


def render_table(table: ResultTable, *, max_rows: int = CHAT_ROWS) -> Table:
    """Any result table, formatted for people and shortened like chat (approval previews use it)."""
    return render_shown(display_table(table, max_rows=max_rows))


def reply_as_csv(reply: Reply) -> str:
    buffer = io.StringIO()
    if reply.table is not None:
        writer = csv.writer(buffer)
        writer.writerow(reply.table.columns)
        writer.writerows(["" if v is None else v for v in row] for row in reply.table.rows)
    return buffer.getvalue()


def reply_as_json(reply: Reply, *, chart_path: Path | None = None) -> str:
    """One object: answer, sql (statements run, in order), columns, rows, truncated, pending; and chart
    (its file, kind, title and notes) when the answer drew one."""
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
    if reply.chart is not None:
        payload["chart"] = {"path": str(chart_path) if chart_path else None, "kind": reply.chart.kind,
                            "title": reply.chart.title, "notes": list(reply.chart.notes)}
    if reply.kind is ReplyKind.ERROR:
        payload["error"] = reply.text
    return json.dumps(payload, ensure_ascii=False, default=str)
