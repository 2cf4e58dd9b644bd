"""Changes wait for a person: a :class:`PendingAction` is stored, shown with Approve/Reject, and run once.

:meth:`Approvals.decide` applies the rules in order and refuses at the first that fails, running nothing:

1. the id is known (forged, unknown and long-gone ids all read "unknown or expired");
2. the action is still undecided (later clicks are told who decided what, and when);
3. it has not expired (the first click after expiry records "expired" once);
4. the decider may approve on that database (approvers by user or role; self-approval is a switch, off by
   default); the requester may always reject their own request;
5. the SQL is the SQL that was shown: its SHA-256 matches the stored hash *and* the ``requested`` audit row
   in Postgres (which Redis cannot rewrite), and the requester still maps to the stored role (with their
   platform groups as the adapter sees them now, else as stored with the request);
6. the decision is claimed atomically in the store *before* anything runs, so exactly one click wins.

The approved statement then runs once, as the requester's role, and its ``executed`` audit row commits in
the same transaction. Every decision is audited and appended to the thread's history for follow-ups.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import asyncpg
import structlog
from pydantic import ValidationError

from core.approvals.audit import AuditLog
from core.approvals.executors import ActionExecutor, ExecutionContext, ExecutionOutcome, ProgressSink
from core.approvals.pending import SQL_OPERATION, PendingAction
from core.approvals.store import ActionStatus, ApprovalStore, Decision
from core.card_state import CardState, CardStatus
from core.cards import approvers_of
from core.db.audit_rows import AuditEvent, AuditRecord, log_entry
from core.db.base import PostgresDatabase
from core.db.postgres import (
    SQL_TAG,
    describe_connect_error,
    quote_ident,
    rows_from_status,
    translate_pg_error,
)
from core.display import utc_text
from core.errors import AccessDeniedError, ApprovalStoreUnavailableError, DatabaseUnavailableError, PgbotError
from core.llm.base import ChatTurn, ReadScope
from core.messages import ApprovalPrompt, Reply, ReplyKind
from core.permissions import (
    Actor,
    GroupLookup,
    approvers_configured,
    how_to_add_approvers,
    may_approve,
    operator_approves,
    resolve_role,
)
from core.sql_secrets import MASK
from core.undo.capture import Captured
from core.undo.keep import prepare_undo, requester_role, undo_line

if TYPE_CHECKING:
    from core.config import Settings
    from core.db.registry import DatabaseRegistry
    from core.threads.context import ContextStore

log = structlog.get_logger(__name__)

Started = Callable[[], Awaitable[None]]
"""Awaited once an approval has won its claim, before the change runs (the card says "running" at once)."""

_ID_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
UNKNOWN = "Unknown or expired action: there is no pending change with that id. Nothing was run."
ALTERED = ("Refused: the SQL of this change is not the SQL that was shown for approval (it was altered "
           "after the request). Nothing was run; ask for the change again.")


def role_label(role: str | None) -> str:
    return f"role {role}" if role else "the bot's login role"


class Approvals:
    """Submit proposed changes and carry out decisions on them; platform-independent."""

    def __init__(
        self, *, settings: Settings, databases: DatabaseRegistry, store: ApprovalStore, audit: AuditLog,
        context: ContextStore | None = None, clock: Callable[[], float] = time.time,
        executors: Mapping[str, ActionExecutor] | None = None,
    ) -> None:
        self._settings = settings
        self._executors = dict(executors or {})
        self._databases = databases
        self._store = store
        self._audit = audit
        self._context = context
        self._clock = clock

    async def submit(self, action: PendingAction) -> ApprovalPrompt:
        """Audit the request, then store it; if either fails nothing is offered for approval."""
        self._check_runnable(action, subject="change", consequence="it was not stored")
        await self._audit.record(action.audit(AuditEvent.REQUESTED))
        remaining = max(action.expires_at - self._clock(), 0.0)
        try:
            await self._store.put(
                action.id, action.model_dump_json(),
                ttl_s=int(remaining) + self._settings.approvals.keep_decided_s + 1,
            )
        except ApprovalStoreUnavailableError:
            await self._audit_quietly(action.audit(AuditEvent.FAILED, result="approval store unavailable"))
            raise
        settings = self._databases.get(action.database).settings
        return action.prompt(notes=self._card_notes(action),
                             approvers=approvers_of(settings, requested_by=action.requested_by))

    def _card_notes(self, action: PendingAction) -> tuple[str, ...]:
        """Told on the card: nobody can approve it here yet (and how to change that), passwords masked."""
        settings = self._databases.get(action.database).settings
        notes = []
        if not approvers_configured(settings) and not operator_approves(settings, action.requested_by):
            notes.append(f"Nobody can approve this from chat yet: no approvers are configured for "
                         f"'{action.database}'. To allow it, {how_to_add_approvers(action.database)} "
                         "(approving your own change also needs allow_self_approval = true).")
        if action.shown_sql != action.sql:
            notes.append(f"Passwords in this statement are shown as {MASK}; the statement that runs has them.")
        if action.undo_blocked:
            notes.append(f"This change cannot be undone: {action.undo_blocked}.")
        return tuple(notes)

    def _check_runnable(self, action: PendingAction, *, subject: str, consequence: str) -> None:
        """Before anything is audited: the hash matches what is shown, and someone here can carry it out."""
        if action.expected_hash() != action.sql_hash:
            raise PgbotError(f"This {subject}'s SQL does not match its hash; {consequence}.")
        if action.operation != SQL_OPERATION and action.operation not in self._executors:
            raise PgbotError(f"This pgbot cannot carry out '{action.operation}' actions; {consequence}.")

    async def decide(
        self, *, action_id: str, decided_by: str, approve: bool, progress: ProgressSink | None = None,
        decider_groups: tuple[str, ...] = (), current_groups: GroupLookup | None = None,
        started: Started | None = None,
    ) -> Reply:
        """Apply the rules (module docstring) and return the outcome; never runs anything twice.

        The outcome's ``card`` says where the approval card now stands (None: a refusal, which changes nothing
        and is for the clicker alone). ``started`` is awaited once an approval has won the claim, before the
        change runs, so the card can say "running" at once;
        ``progress`` receives progress lines from long approved work (backups, index builds);
        ``decider_groups`` are the clicker's platform groups, for approvers by database role;
        ``current_groups`` looks up the requester's groups now, so a revoked group is noticed."""
        if not _ID_RE.fullmatch(action_id or ""):
            log.warning("approval_refused", reason="malformed id", decided_by=decided_by)
            return _error(UNKNOWN)
        try:
            return await self._decide(action_id, decided_by=decided_by, approve=approve, progress=progress,
                                      decider_groups=tuple(decider_groups), current_groups=current_groups,
                                      started=started)
        except ApprovalStoreUnavailableError as exc:
            log.warning("approval_store_unavailable", action_id=action_id, decided_by=decided_by)
            return _error(exc.user_message)

    async def _decide(
        self, action_id: str, *, decided_by: str, approve: bool, progress: ProgressSink | None,
        decider_groups: tuple[str, ...], current_groups: GroupLookup | None, started: Started | None,
    ) -> Reply:
        stored = await self._store.get(action_id)
        if stored is None:
            log.info("approval_refused", action_id=action_id, reason="unknown", decided_by=decided_by)
            return _error(UNKNOWN)
        action = _parse(stored.payload)
        if action is None or action.id != action_id:
            log.error("approval_refused", action_id=action_id, reason="stored action unreadable")
            await self._store.claim(action_id, self._decision(ActionStatus.FAILED, decided_by,
                                                               result="stored action unreadable"))
            return _error(ALTERED)
        if stored.decision is not None:
            return _error(already(stored.decision), action, card=standing_card(stored.decision, action))
        if self._clock() >= action.expires_at:
            return await self._expire(action, decided_by)
        if action.database not in self._databases.names:
            return _error(f"Database '{action.database}' is no longer configured; nothing was run.", action)
        reason = self._refusal(action, decided_by=decided_by, approve=approve, groups=decider_groups)
        if reason is not None:
            log.warning("approval_refused", action_id=action.id, decided_by=decided_by, reason=reason)
            verb = "approve" if approve else "reject"
            return _error(f"You ({decided_by}) cannot {verb} this change: {reason}. Nothing was run.", action,
                          mentions=(decided_by,))
        requester_groups = action.requester_groups
        if approve and current_groups is not None and self._databases.get(action.database).settings.roles is not None:
            try:
                found = await current_groups(action.requested_by)
            except PgbotError as exc:  # transient: nothing is claimed, the click can be repeated
                log.warning("approval_refused", action_id=action.id, reason="groups lookup failed",
                            error=exc.user_message)
                return _error(f"Could not check {action.requested_by}'s current roles ({exc.user_message}); "
                              "nothing was run. Try again in a moment.", action, mentions=(action.requested_by,))
            if found is not None:
                requester_groups = tuple(found)
        problem, altered = await self._verify(action, requester_groups)
        if problem is not None:
            claim = await self._store.claim(action.id, self._decision(ActionStatus.FAILED, decided_by,
                                                                      result=problem))
            if claim.won:
                await self._audit_quietly(action.audit(AuditEvent.FAILED, decided_by=decided_by, result=problem))
            log.warning("approval_refused", action_id=action.id, decided_by=decided_by, reason=problem)
            card = CardState(status=CardStatus.FAILED, at=self._clock(), detail=f"refused: {problem}") \
                if claim.won else None
            return _error(ALTERED if altered else f"Refused: {problem}. Nothing was run.", action, card=card,
                          mentions=(action.requested_by,))
        if not approve:
            return await self._reject(action, decided_by)
        return await self._approve(action, decided_by, progress, started)

    def _refusal(
        self, action: PendingAction, *, decided_by: str, approve: bool, groups: tuple[str, ...]
    ) -> str | None:
        if not approve and decided_by == action.requested_by:
            return None  # withdrawing your own request is always allowed
        settings = self._databases.get(action.database).settings
        try:
            decider = resolve_role(database=action.database, settings=settings, identity=decided_by, groups=groups)
        except AccessDeniedError:  # an approver listed by identity (or group) need not be mapped to a role
            decider = Actor(identity=decided_by, role=None, database=action.database, groups=groups)
        return may_approve(settings=settings, approver=decider, requested_by=action.requested_by)

    async def _verify(self, action: PendingAction, requester_groups: tuple[str, ...]) -> tuple[str | None, bool]:
        """(why the stored action cannot run, whether it was altered); Redis is checked against Postgres."""
        if action.expected_hash() != action.sql_hash:
            return "the SQL was altered after it was shown (hash mismatch)", True
        row = await self._audit.requested(database=action.database, action_id=action.id)
        if row is None or (row.sql_hash, row.requested_by, row.role) != (
                action.sql_hash, action.requested_by, action.role):
            return "the SQL, requester or role differs from the audited request", True
        settings = self._databases.get(action.database).settings
        try:
            now = resolve_role(database=action.database, settings=settings, identity=action.requested_by,
                               groups=requester_groups)
        except AccessDeniedError:
            return f"{action.requested_by} no longer has access to '{action.database}'", False
        mapped = requester_role(action)
        if now.role != mapped:
            return (f"{action.requested_by} now maps to {role_label(now.role)}, not {role_label(mapped)} "
                    "as when the change was requested; ask for it again"), False
        return None, False

    async def standing(self, action_id: str) -> str:
        """Where an action stands, for callers that must not create a second one (core.undo): "pending",
        "running" (approved: running or done), "closed" (rejected, expired, failed) or "missing"."""
        stored = await self._store.get(action_id)
        action = _parse(stored.payload) if stored is not None else None
        if stored is None or action is None:
            return "missing"
        if stored.decision is not None:
            running = stored.decision.status in (ActionStatus.EXECUTING, ActionStatus.EXECUTED)
            return "running" if running else "closed"
        return "pending" if self._clock() < action.expires_at else "closed"

    async def _expire(self, action: PendingAction, decided_by: str, *, swept: bool = False) -> Reply:
        found = "found expired by pgbot's sweep" if swept else f"first click after expiry by {decided_by}"
        result = f"expired at {utc_text(action.expires_at)}; {found}"
        claim = await self._store.claim(action.id, self._decision(ActionStatus.EXPIRED, decided_by, result=result))
        if not claim.won:
            return _error(already(claim.standing) if claim.standing else UNKNOWN, action,
                          card=standing_card(claim.standing, action) if claim.standing else None)
        await self._audit_quietly(action.audit(AuditEvent.EXPIRED, decided_by=decided_by, result=result))
        return _error(f"This change expired at {utc_text(action.expires_at)} without a decision; nothing was run. "
                      "Ask for it again if it is still needed.", action,
                      card=CardState(status=CardStatus.EXPIRED, at=action.expires_at))

    async def expire_due(self, action_id: str) -> CardState | None:
        """For the adapters' sweep of cards they posted: expire an undecided action whose time has passed
        (claimed and audited like the first click after expiry) and return its card state; None when it is
        not due yet, already decided (that decider's replica updated the card), or gone."""
        if not _ID_RE.fullmatch(action_id or ""):
            return None
        stored = await self._store.get(action_id)
        if stored is None or stored.decision is not None:
            return None
        action = _parse(stored.payload)
        if action is None or action.id != action_id or self._clock() < action.expires_at:
            return None
        reply = await self._expire(action, "pgbot", swept=True)
        return reply.card if reply.card is not None and reply.card.status is CardStatus.EXPIRED else None

    async def _reject(self, action: PendingAction, decided_by: str) -> Reply:
        claim = await self._store.claim(action.id, self._decision(ActionStatus.REJECTED, decided_by))
        if not claim.won:
            return _error(already(claim.standing) if claim.standing else UNKNOWN, action)
        await self._audit_quietly(action.audit(AuditEvent.REJECTED, decided_by=decided_by))
        text = f"Change {action.id} was rejected by {decided_by}; nothing was run."
        await self._note(action, decided_by, "Reject", text)
        return Reply(kind=ReplyKind.OUTCOME, text=text, sql=(action.shown_sql,), database=action.database,
                     card=CardState(status=CardStatus.REJECTED, by=decided_by, at=self._clock()),
                     mentions=(decided_by,))

    async def run_as_operator(
        self, action: PendingAction, *, operator: str, progress: ProgressSink | None = None
    ) -> Reply:
        """The command line's path (``pgbot migrate up --yes``, ``pgbot backup create``): whoever holds the
        config file is trusted to confirm at the prompt, so the approver rules do not apply, but the action is
        audited (requested, approved by ``operator``, executed or failed) exactly like a chat approval."""
        self._check_runnable(action, subject="action", consequence="nothing was run")
        await self._audit.record(action.audit(AuditEvent.REQUESTED))
        await self._audit.record(action.audit(AuditEvent.APPROVED, decided_by=operator))
        return await self._carry_out(action, operator, progress)

    async def _approve(
        self, action: PendingAction, decided_by: str, progress: ProgressSink | None, started: Started | None
    ) -> Reply:
        claim = await self._store.claim(action.id, self._decision(ActionStatus.EXECUTING, decided_by))
        if not claim.won:
            return _error(already(claim.standing) if claim.standing else UNKNOWN, action,
                          card=standing_card(claim.standing, action) if claim.standing else None)
        try:
            await self._audit.record(action.audit(AuditEvent.APPROVED, decided_by=decided_by))
        except PgbotError as exc:
            problem = f"the audit trail could not be written ({exc.user_message})"
            await self._store.finish(action.id, self._decision(ActionStatus.FAILED, decided_by, result=problem))
            return _error(f"Approved by {decided_by}, but not run: {problem}.", action, mentions=(decided_by,),
                          card=CardState(status=CardStatus.FAILED, by=decided_by, at=self._clock(),
                                         detail=f"not run: {problem}"))
        if started is not None:
            try:
                await started()
            except Exception as exc:  # noqa: BLE001 - the card is a courtesy; the approved change still runs
                log.warning("card_update_failed", action_id=action.id, error=type(exc).__name__)
        return await self._carry_out(action, decided_by, progress)

    async def _carry_out(self, action: PendingAction, decided_by: str, progress: ProgressSink | None) -> Reply:
        """Run an approved action once and report the outcome to the store, the audit trail and the thread."""
        details = ""
        kept: Captured | None = None
        try:
            db = self._databases.postgres(action.database)  # approved work runs on the server itself
            if action.operation == SQL_OPERATION:
                status, duration_ms, kept = await self._execute(db, action, decided_by)
                rows = rows_from_status(status)
                details = undo_line(kept, action, valid_for_s=self._settings.undo.valid_for_s)
            else:
                outcome = await self._run_executor(db, action, decided_by, progress)
                status, duration_ms, rows, details = (outcome.status, outcome.duration_ms, outcome.rows_affected,
                                                      outcome.details)
        except PgbotError as exc:
            return await self._failed(action, decided_by, exc.user_message)
        except BaseException:
            # Unexpected: the claim stays, so it never runs again; record why for later clicks.
            await self._finish_quietly(action, self._decision(ActionStatus.FAILED, decided_by,
                                                              result="internal error while running"))
            raise
        decision = self._decision(ActionStatus.EXECUTED, decided_by, result=status, rows_affected=rows,
                                  duration_ms=duration_ms)
        saved = await self._finish_quietly(action, decision)
        text = (f"Change {action.id} was approved by {decided_by} and executed as {role_label(action.role)} on "
                f"'{action.database}': {status} ({duration_ms:.0f} ms).")
        if details:
            text += "\n" + details
        await self._note(action, decided_by, "Approve", text)
        if not saved:
            text += " (The outcome could not be saved to Redis; later clicks will see it as still running.)"
        card = CardState(status=CardStatus.APPLIED, by=decided_by, at=self._clock(), detail=status,
                         duration_ms=duration_ms)
        return Reply(kind=ReplyKind.OUTCOME, text=text, sql=(action.shown_sql,), database=action.database,
                     action_id=action.id, card=card, mentions=(decided_by,),
                     undo_id=action.id if action.operation == SQL_OPERATION and kept is not None and kept.images
                     else None)

    async def _run_executor(
        self, db: PostgresDatabase, action: PendingAction, decided_by: str, progress: ProgressSink | None
    ) -> ExecutionOutcome:
        """Non-SQL work (core.approvals.executors): the executor runs it; its ``executed`` row is written after."""
        run = self._executors.get(action.operation)
        if run is None:
            raise PgbotError(f"This pgbot cannot carry out '{action.operation}' actions.")
        outcome = await run(action, ExecutionContext(database=db, databases=self._databases,
                                                     decided_by=decided_by, progress=progress))
        await self._audit_quietly(action.audit(AuditEvent.EXECUTED, decided_by=decided_by, result=outcome.status,
                                               rows_affected=outcome.rows_affected,
                                               duration_ms=outcome.duration_ms))
        return outcome

    async def _execute(
        self, db: PostgresDatabase, action: PendingAction, decided_by: str
    ) -> tuple[str, float, Captured | None]:
        """Run the approved SQL once as the requester's role; its audit row (and the rows kept for an undo,
        core.undo) commit with it."""
        if action.outside_transaction:
            status, duration_ms = await run_outside_transaction(db, action.sql, role=action.role)
            rows = rows_from_status(status)
            await self._audit_quietly(action.audit(AuditEvent.EXECUTED, decided_by=decided_by, result=status,
                                                   rows_affected=rows, duration_ms=duration_ms))
            return status, duration_ms, None
        entry: list[AuditRecord] = []
        undo = await prepare_undo(db, action, self._settings.undo)

        async def work(conn: asyncpg.Connection) -> tuple[str, float, Captured | None]:
            started = time.perf_counter()
            kept = await undo.run(conn)
            status = kept.status
            duration_ms = (time.perf_counter() - started) * 1000
            await db.verify_identity(conn, role=action.role, sql=action.sql, main_login=True)  # before RESET ROLE
            await conn.execute("RESET ROLE")  # the audit table belongs to the login role, not the user's
            entry.append(action.audit(AuditEvent.EXECUTED, decided_by=decided_by, result=status,
                                      rows_affected=rows_from_status(status), duration_ms=duration_ms))
            await self._audit.insert_on(conn, entry[0])
            await undo.save(conn, kept)
            return status, duration_ms, kept if undo.keeps else None

        outcome = await db.run(work, role=action.role, read_only=False, limits=db.change_limits, verify=False,
                               main_login=True)  # the audit row, written as the main login, commits with it
        log_entry(entry[0])
        return outcome

    async def _failed(self, action: PendingAction, decided_by: str, message: str) -> Reply:
        await self._finish_quietly(action, self._decision(ActionStatus.FAILED, decided_by, result=message))
        await self._audit_quietly(action.audit(AuditEvent.FAILED, decided_by=decided_by, result=message))
        undone = "" if action.outside_transaction else " Its transaction was rolled back, so nothing changed."
        text = f"Change {action.id} was approved by {decided_by} but failed: {message}{undone}"
        await self._note(action, decided_by, "Approve", text)
        return _error(text, action, mentions=(decided_by,),
                      card=CardState(status=CardStatus.FAILED, by=decided_by, at=self._clock(), detail=message,
                                     nothing_changed=not action.outside_transaction))

    def _decision(self, status: ActionStatus, decided_by: str, **outcome: object) -> Decision:
        return Decision(status=status, decided_by=decided_by, decided_at=self._clock(), **outcome)  # type: ignore[arg-type]

    async def _finish_quietly(self, action: PendingAction, decision: Decision) -> bool:
        try:
            await self._store.finish(action.id, decision)
        except ApprovalStoreUnavailableError:
            log.error("approval_outcome_not_saved", action_id=action.id, status=decision.status.value)
            return False
        return True

    async def _audit_quietly(self, entry: AuditRecord) -> None:
        """Audit after the fact: a failure is logged loudly but cannot undo what already happened."""
        try:
            await self._audit.record(entry)
        except PgbotError as exc:
            log_entry(entry)
            log.error("audit_write_failed", action_id=entry.action_id, audit_event=entry.event.value,
                      error=exc.user_message)

    async def _note(self, action: PendingAction, decided_by: str, button: str, text: str) -> None:
        """Tell the thread's history, so a follow-up question knows what happened."""
        if self._context is None:
            return
        # The outcome (a database error can quote row values) was produced under the requester's role.
        read_as = (ReadScope(database=action.database, role=action.role),)
        turns = [ChatTurn(role="user", content=f"[{decided_by} pressed {button} on change {action.id}]",
                          read_as=read_as),
                 ChatTurn(role="assistant", content=text, read_as=read_as)]
        try:
            await self._context.append(action.thread_key, turns)
        except PgbotError as exc:
            log.warning("thread_note_failed", action_id=action.id, error=exc.user_message)

    async def aclose(self) -> None:
        await self._store.aclose()


def already(decision: Decision) -> str:
    """What a late click is told."""
    by, at = decision.decided_by, utc_text(decision.decided_at)
    match decision.status:
        case ActionStatus.EXECUTING:
            return (f"This change was already approved by {by} at {at} and is running (or was interrupted); "
                    "it will not run again.")
        case ActionStatus.EXECUTED:
            return f"This change was already approved by {by} at {at} and executed: {decision.result}."
        case ActionStatus.REJECTED:
            return f"This change was already rejected by {by} at {at}; nothing was run."
        case ActionStatus.EXPIRED:
            return f"This change expired without a decision ({decision.result}); nothing was run."
    return f"This change already failed at {at}: {decision.result}. It will not run again."


def _parse(payload: str) -> PendingAction | None:
    try:
        return PendingAction.model_validate_json(payload)
    except ValidationError:
        return None


def standing_card(decision: Decision, action: PendingAction) -> CardState | None:
    """A late click on a card that still shows buttons after it expired (the replica that expired it could not
    edit it) turns it to Expired. Other decisions were shown by the replica that took them: None."""
    if decision.status is ActionStatus.EXPIRED:
        return CardState(status=CardStatus.EXPIRED, at=action.expires_at)
    return None


def _error(
    text: str, action: PendingAction | None = None, *, card: CardState | None = None, mentions: tuple[str, ...] = ()
) -> Reply:
    if action is None:
        return Reply(kind=ReplyKind.ERROR, text=text)
    return Reply(kind=ReplyKind.ERROR, text=text, sql=(action.shown_sql,), database=action.database,
                 action_id=action.id, card=card, mentions=mentions)


async def run_outside_transaction(db: PostgresDatabase, sql: str, *, role: str | None) -> tuple[str, float]:
    """For statements Postgres refuses inside a transaction block: session-level role and limits, reset after."""
    limits = db.change_limits
    pool = await db.pool(role=role)
    started = time.perf_counter()
    try:
        async with pool.acquire(timeout=db.settings.connect_timeout_s) as conn:
            await conn.execute(f"SET statement_timeout = {int(limits.statement_timeout_ms)}; "
                               f"SET lock_timeout = {int(limits.lock_timeout_ms)}")
            try:
                if role:
                    await conn.execute(f"SET ROLE {quote_ident(role)}")
                status: str = await conn.execute(SQL_TAG + sql)
                await db.verify_identity(conn, role=role, sql=sql)
            finally:
                # The pool's own reset runs RESET ALL too; this makes the intent explicit and immediate.
                await conn.execute("RESET ROLE; RESET statement_timeout; RESET lock_timeout")
    except asyncpg.PostgresError as exc:
        raise translate_pg_error(exc, database=db.name) from exc
    except (OSError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise DatabaseUnavailableError(
            f"Database '{db.name}' connection failed: {describe_connect_error(exc)}"
        ) from exc
    return status, (time.perf_counter() - started) * 1000
