"""What people are told about an undo: why a kept change cannot be undone now, and which rows would be skipped.

Both the Undo click (core.agent.undo_actions) and the approved undo (core.undo.execute) check and word the
same things, so the undo executor needs nothing from the agent layer.
"""

from __future__ import annotations

import datetime as dt

from core.display import utc_text
from core.messages import ResultTable
from core.undo.inverse import Applied
from core.undo.store import UndoRecord

SHOWN_SKIPPED = 20  # skipped rows named in a message or the card's table; the rest are counted


def why_not_now(record: UndoRecord) -> str:
    """Why the change cannot be undone now (no kept rows, undone already, expired), or "" when it can."""
    if record.reason:
        return f"Change {record.action_id} cannot be undone: {record.reason}."
    if record.undone_at is not None:
        return f"Change {record.action_id} was already undone (approved by {record.undone_by} at " \
               f"{utc_text(record.undone_at.timestamp())})."
    if record.valid_until <= dt.datetime.now(dt.UTC) or not record.keys:
        return (f"The undo of change {record.action_id} expired at {utc_text(record.valid_until.timestamp())}; "
                "pgbot no longer keeps its rows ([undo] valid_for_s).")
    return ""


def skipped_lines(applied: Applied) -> str:
    if not applied.skipped:
        return ""
    count = len(applied.skipped)
    shown = ", ".join(f"{s.key} ({s.why})" for s in applied.skipped[:SHOWN_SKIPPED])
    more = f", and {count - SHOWN_SKIPPED} more" if count > SHOWN_SKIPPED else ""
    return f"Skipped {count} row{'s' if count != 1 else ''} changed since the change: {shown}{more}."


def skipped_table(applied: Applied) -> ResultTable | None:
    if not applied.skipped:
        return None
    return ResultTable(columns=("skipped row", "why"),
                       rows=tuple((s.key, s.why) for s in applied.skipped[:SHOWN_SKIPPED]))
