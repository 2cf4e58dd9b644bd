"""An Undo click (or ``/undo [id]``): the inverse of a kept change becomes a pending change of its own.

Checked in order, refusing at the first that fails: the id names a change whose rows pgbot kept (else why
not: a schema change, over the bound, unknown); the click comes from that change's thread; it was not
undone already and has not expired; the clicker maps to a role on that database that can read the table.
Then the pending undo is claimed by compare-and-set in ``pgbot.undo`` (two clicks make one pending undo; a
rejected, expired or failed one frees the change for a new click), previewed rolled back (how many rows
would come back, which changed since and would be skipped), and submitted to :class:`Approvals` like any
change: same approvers, no self-approval in chat, audited, run once.

Roles: the undo runs as the original change's role (it can touch only what the change could); its requester
must map to a role on the database that can read the table, and is re-checked at approval like any requester.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import TYPE_CHECKING

import asyncpg

from core.approvals.audit import AuditLog
from core.approvals.decisions import role_label
from core.approvals.pending import PendingAction, action_hash, new_action_id
from core.db.base import PostgresDatabase
from core.errors import GuardError, PgbotError
from core.messages import Reply, ReplyKind
from core.permissions import resolve_role
from core.undo import store
from core.undo.inverse import Applied, apply, shown_sql
from core.undo.keep import REQUESTER_ROLE, UNDO_OPERATION
from core.undo.store import UndoRecord
from core.undo.wording import skipped_lines, skipped_table, why_not_now

if TYPE_CHECKING:
    from core.agent.host import CommandHost as Agent  # the agent as actions see it; the loop imports this
    from core.tools.registry import ToolContext

_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
CLAIM_GRACE_S = 60.0  # a claim whose pending undo is not in the store yet is still being prepared
UNKNOWN = "There is no change with that id to undo (ids are in each change's outcome message)."
ELSEWHERE = "That Undo button belongs to another conversation, so pgbot ignored it."


def _info(text: str, database: str | None = None) -> Reply:
    return Reply(kind=ReplyKind.INFO, text=text, database=database)


async def request_undo(agent: Agent, *, action_id: str, identity: str, groups: tuple[str, ...],
                       thread_key: str | None) -> Reply:
    """The Undo click of ``identity``; ``thread_key``: where the button is (another thread's is refused)."""
    if agent.approvals is None:
        raise PgbotError("Changes are not enabled in this pgbot.")
    if not _ID_RE.fullmatch(action_id or ""):
        raise PgbotError(UNKNOWN)
    found = await _find(agent, action_id)
    if found is None:
        return await _why_none(agent, action_id)
    db, record = found
    if thread_key is not None and record.thread_key != thread_key:
        raise PgbotError(ELSEWHERE)
    refusal = why_not_now(record)
    if refusal:
        return _info(refusal, db.name)
    actor = resolve_role(database=db.name, settings=db.settings, identity=identity, groups=groups)
    if not await _can_read(db, actor.role, record):
        raise PgbotError(f"You ({identity}, {role_label(actor.role)}) cannot read {record.qualified}, so you cannot "
                         "ask to undo a change to it.")
    undo_id = new_action_id()
    busy = await _claim(agent, db, record, undo_id)
    if busy is not None:
        return busy
    try:
        reply = await _submit(agent, db, record, undo_id=undo_id, identity=identity, role=actor.role, groups=groups)
    except BaseException:
        await store.claim(db, record.action_id, new=None, expected=undo_id)
        raise
    if reply.kind is not ReplyKind.APPROVAL:
        await store.claim(db, record.action_id, new=None, expected=undo_id)
    return reply


async def undo_command(agent: Agent, ctx: ToolContext, arg: str) -> Reply:
    """``/undo [id]``: the thread's newest undoable change when no id is given."""
    action_id = arg.split()[0] if arg.strip() else await store.latest(ctx.database, ctx.thread_key)
    if action_id is None:
        return _info("There is no change in this thread that pgbot can undo (only approved INSERT, UPDATE and "
                     "DELETE changes within their undo time can be).", ctx.database.name)
    return await request_undo(agent, action_id=action_id, identity=ctx.actor.identity, groups=ctx.actor.groups,
                              thread_key=ctx.thread_key)


async def _find(agent: Agent, action_id: str) -> tuple[PostgresDatabase, UndoRecord] | None:
    for name in agent.databases.names:
        record = await store.load(agent.databases.get(name), action_id)
        if record is not None:
            return agent.databases.postgres(name), record
    return None


async def _why_none(agent: Agent, action_id: str) -> Reply:
    """No kept rows: say why (a schema change, a change that has not run), else the id is unknown."""
    audit = AuditLog(agent.databases)
    for name in agent.databases.names:
        rows = await audit.rows(database=name, action_id=action_id, limit=10)
        if not rows:
            continue
        try:
            kind = agent.classify_sql(rows[-1].sql).kind
        except GuardError:
            kind = None
        if kind in ("ddl", "admin"):
            return _info(f"Change {action_id} changed the schema; pgbot does not undo schema or admin changes. "
                         "Migrations have their down files: pgbot migrate down.", name)
        if not any(r.event == "executed" for r in rows):
            return _info(f"Change {action_id} has not run, so there is nothing to undo.", name)
        return _info(f"pgbot kept no rows for change {action_id}, so it cannot be undone.", name)
    raise PgbotError(UNKNOWN)


async def _can_read(db: PostgresDatabase, role: str | None, record: UndoRecord) -> bool:
    async def work(conn: asyncpg.Connection) -> bool:
        return bool(await conn.fetchval("SELECT pg_catalog.has_table_privilege($1::oid, 'SELECT')", record.relation))

    return await db.run(work, role=role, read_only=True)


async def _claim(agent: Agent, db: PostgresDatabase, record: UndoRecord, undo_id: str) -> Reply | None:
    """None when this click may create the pending undo, else what the clicker is told."""
    assert agent.approvals is not None
    expected = record.undo_action_id
    if expected is not None:
        standing = await agent.approvals.standing(expected)
        if standing == "pending":
            return _info(f"An undo of change {record.action_id} already waits for approval: change {expected}.",
                         db.name)
        if standing == "running":
            return _info(f"Change {record.action_id} is being undone (change {expected}).", db.name)
        claimed = record.undo_claimed_at
        if standing == "missing" and claimed is not None and (
                dt.datetime.now(dt.UTC) - claimed).total_seconds() < CLAIM_GRACE_S:
            return _info(f"An undo of change {record.action_id} is being prepared (change {expected}).", db.name)
    if not await store.claim(db, record.action_id, new=undo_id, expected=expected):
        return _info(f"Someone pressed Undo on change {record.action_id} at the same moment; that undo goes to "
                     "approval.", db.name)
    return None


async def _submit(agent: Agent, db: PostgresDatabase, record: UndoRecord, *, undo_id: str, identity: str,
                  role: str | None, groups: tuple[str, ...]) -> Reply:

    async def tried(conn: asyncpg.Connection) -> Applied:
        return await apply(conn, record)

    applied = await db.run(tried, role=record.role, read_only=False, rollback=True, limits=db.change_limits,
                           statement=f"undo of change {record.action_id}")
    total = len(record.keys)
    skipped = skipped_lines(applied)
    if applied.restored == 0:
        return _info(f"Nothing to undo: all {total} row{'s' if total != 1 else ''} of change {record.action_id} "
                     f"changed since, so none would be put back.\n{skipped}", db.name)
    sql = shown_sql(record, undo_id=undo_id)
    params = {"of": record.action_id, "rows": record.digest(), REQUESTER_ROLE: role or ""}
    now = time.time()
    expires = min(now + agent.settings.approvals.expiry_s, record.valid_until.timestamp())
    action = PendingAction(
        id=undo_id, database=db.name, thread_key=record.thread_key, requested_by=identity, role=record.role,
        requester_groups=groups, sql=sql, sql_hash=action_hash(sql, UNDO_OPERATION, params), kind="write",
        statement_type="Undo", summary=f"UNDO of change {record.action_id}: {applied.restored} of {total} rows on "
                                       f"{record.qualified}",
        preview=skipped_table(applied), tables=(record.qualified,), operation=UNDO_OPERATION, params=params,
        created_at=now, expires_at=expires,
    )
    prompt = await agent.submit_change(action)
    text = (f"Undo of change {record.action_id} ({record.kind.upper()} on {record.qualified}, requested by "
            f"{record.requested_by}): it would put back {applied.restored} of {total} row{'s' if total != 1 else ''} "
            f"(tried as {role_label(record.role)}, the change's own role, in a transaction that was rolled back).")
    if skipped:
        text += "\n" + skipped
    text += f"\nNothing has run yet: change {undo_id} waits for Approve or Reject."
    return Reply(kind=ReplyKind.APPROVAL, text=text, sql=(prompt.sql,), table=prompt.preview, approval=prompt,
                 database=db.name)
