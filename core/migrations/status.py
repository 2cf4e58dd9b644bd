"""``migrate status`` in words, for the command line and the chat tool alike."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence

from core.display import utc_text
from core.migrations.files import Draft, Folder
from core.migrations.runner import MigrationState, StatusLine, blocking_problems

_LOUD = (MigrationState.CHANGED, MigrationState.MISSING)


def _stamp(value: dt.datetime | float) -> str:
    return utc_text(value.timestamp() if isinstance(value, dt.datetime) else value)


def status_lines(name: str, folder: Folder, lines: Sequence[StatusLine], drafts: Sequence[Draft], *,
                 outcomes: Mapping[str, str], expiry_s: float, now: float | None = None) -> list[str]:
    """One line per migration (applied, pending, CHANGED AFTER APPLY, FILE MISSING), then drafts from chat."""
    now = time.time() if now is None else now
    out = [f"Migrations of '{name}' in {folder.path}:"]
    if not lines and not drafts:
        out.append("  (none yet)")
    for line in lines:
        state = line.state.value.upper() if line.state in _LOUD else line.state.value
        extra = f"  {_stamp(line.applied.applied_at)} by {line.applied.applied_by}" if line.applied else ""
        out.append(f"  {line.label:<40} {state}{extra}")
    for draft in drafts:
        label = f"{draft.version:04d}_{draft.name}"
        outcome = outcomes.get(draft.action_id, "requested")
        if not outcome.startswith("requested"):
            state = f"draft from chat, {outcome}: never applied; removed at the next proposal"
        elif now > draft.created_at + expiry_s:
            state = "draft from chat, approval expired: never applied; removed at the next proposal"
        else:
            state = (f"draft from chat awaiting approval (action {draft.action_id}, until "
                     f"{_stamp(draft.created_at + expiry_s)}); `migrate up` does not apply drafts")
        out.append(f"  {label:<40} {state}")
    pending = sum(1 for line in lines if line.state is MigrationState.PENDING)
    out.append(f"{pending} pending.")
    out += [f"Problem: {p}" for p in blocking_problems(lines)]
    out += [f"Problem: {line.label} is recorded as applied but its files are not in {folder.path}; it cannot be "
            "rolled back until they are restored." for line in lines if line.state is MigrationState.MISSING]
    out += [f"Ignored: {name}" for name in folder.ignored]
    return out
