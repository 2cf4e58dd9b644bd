"""``pgbot audit``: print the audit trail (``pgbot.audit`` in each configured database)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sys

from rich.console import Console
from rich.table import Table

from core.approvals.audit import AuditLog, AuditRow
from core.config import Settings
from core.db.registry import DatabaseRegistry
from core.display import utc_text
from core.errors import PgbotError

_SPAN_RE = re.compile(r"(\d+)\s*([smhdw])")
_SPANS_RE = re.compile(r"(?:\d+[smhdw])+")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TABLE_COLUMNS = ("at", "event", "database", "action_id", "requested_by", "decided_by", "role", "rows_affected",
                  "duration_ms", "result", "sql")


def parse_since(value: str | None, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """``7d``, ``24h``, ``30m``, ``2w`` (a span back from now) or an ISO date/time (UTC when no zone)."""
    if not value:
        return None
    now = now or dt.datetime.now(dt.UTC)
    text = value.strip().lower()
    if _SPANS_RE.fullmatch(text.replace(" ", "")):
        spans = _SPAN_RE.findall(text)
        return now - sum((dt.timedelta(**{_UNITS[unit]: int(n)}) for n, unit in spans), dt.timedelta())
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise PgbotError(f"--since {value!r}: use an ISO date or time (2024-05-01, 2024-05-01T12:00) "
                         "or a span like 24h, 7d, 2w.") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


async def audit_main(settings: Settings, *, database: str | None, since: str | None, limit: int, fmt: str) -> int:
    """Print audit rows newest first; 0 on success, 1 if some database could not be read."""
    start = parse_since(since)
    if limit < 1:
        raise PgbotError("--limit must be at least 1.")
    databases = DatabaseRegistry(settings)
    if database is not None:
        databases.get(database)  # UnknownDatabaseError names the configured ones
    names = [database] if database else databases.names
    if not names:
        raise PgbotError("No database is configured. Add a [databases.NAME] section to pgbot.toml.")
    audit = AuditLog(databases)
    rows: list[AuditRow] = []
    failed = False
    try:
        for name in names:
            try:
                rows.extend(await audit.rows(database=name, since=start, limit=limit))
            except PgbotError as exc:
                if database is not None:
                    raise
                failed = True
                print(f"pgbot: {name}: {exc.user_message}", file=sys.stderr)
    finally:
        await databases.aclose()
    rows.sort(key=lambda r: (r.at, r.id), reverse=True)
    sys.stdout.write(format_rows(rows[:limit], fmt=fmt))
    return 1 if failed else 0


def format_rows(rows: list[AuditRow], *, fmt: str) -> str:
    if fmt == "json":
        return json.dumps([_jsonable(r) for r in rows], indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        columns = list(rows[0].as_dict()) if rows else list(_TABLE_COLUMNS)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else _text(v) for v in row.as_dict().values()])
        return out.getvalue()
    if not rows:
        return "No audit rows" + " (nothing requested yet, or none in that period).\n"
    table = Table(show_lines=False)
    for column in _TABLE_COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        values = row.as_dict()
        values["sql"] = " ".join(str(values["sql"]).split())[:200]
        table.add_row(*("" if values[c] is None else _text(values[c]) for c in _TABLE_COLUMNS))
    buffer = io.StringIO()
    Console(file=buffer, width=200, force_terminal=False).print(table)
    return buffer.getvalue()


def _text(value: object) -> str:
    if isinstance(value, dt.datetime):
        return utc_text(value.timestamp())
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _jsonable(row: AuditRow) -> dict[str, object]:
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.as_dict().items()}
