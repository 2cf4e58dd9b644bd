"""One exception root, split by audience.

Every error a user may see derives from :class:`PgbotError` and carries a ``user_message`` that is safe
to post in chat (no secrets, no tracebacks). Hints meant for the model are a separate type,
:class:`ModelHint`, which users never see: the agent feeds it back so the model can correct itself.

    PgbotError
    ├── ConfigError            bad or missing config (file, key)
    ├── UnknownDatabaseError   a database name the config does not define
    ├── NotPostgresError       work only a PostgreSQL server does, asked of a database that is not one (tests)
    ├── AccessDeniedError      chat user mapped to no database role
    ├── GuardError             SQL refused by the guard (writes on the read path, several statements, ...)
    ├── DatabaseError          anything Postgres or the connection said
    │   ├── DatabaseUnavailableError   cannot connect / pool closed
    │   ├── QueryTimeoutError          statement_timeout or lock_timeout hit
    │   └── PermissionDeniedError      Postgres refused the role (insufficient privilege)
    ├── PlanTooLargeError      a plan too large to fetch whole (in core.db.bounded_explain, beside its reader)
    ├── LlmError               the model endpoint failed
    │   ├── LlmUnavailableError        connection refused, timeout, 5xx after retries
    │   ├── LlmAuthError               401 / 403
    │   ├── LlmRateLimitError          429 after retries
    │   ├── LlmResponseError           a reply that is not a usable completion
    │   └── LlmLengthError             the reply stopped at [llm] max_tokens before it was usable
    ├── ContextUnavailableError   the thread store (Redis) cannot be reached: context, turns, events
    ├── FeedbackUnavailableError  an answer's record for 👍/👎 cannot be stored or read
    ├── ApprovalError          approval refused: not allowed, expired, decided, forged, altered
    │   └── ApprovalStoreUnavailableError   the approval store (Redis) cannot be reached: nothing runs
    ├── MigrationFileError     the migrations folder has a problem (duplicate version, bad name, file exists)
    ├── IndexRequestError      a requested index names a missing table or column, or is malformed
    ├── BackupError            a backup or restore refused or failed (folder, client version, bad dump)
    ├── ScheduleError          a schedule refused (time not understood, too frequent, not yours) or unknown
    ├── BusyError              more work than the configured limits allow right now
    ├── SecurityError          a statement left the session under another identity: result discarded
    ├── ChartError             a result that cannot be drawn (no numeric column, one row), or no matplotlib
    └── QuotaError             a rate limit or the workspace's daily token budget was hit

    ModelHint                  not a PgbotError: text for the model, never shown to users
    ├── QueryFailed            Postgres could not parse, plan or run the model's query: rewrite the SQL
    └── HandOff                a call that belongs to another tool (a change sent to the read tool)

Every class is defined here except where the tree names a module; a test (tests/core/test_errors_tree.py)
checks that every subclass in core is drawn, under its real parent.

A tool turns the guard's refusal into the model's ``Refused: …`` hint in one way: :func:`refused_as_hint`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class PgbotError(Exception):
    """Base of every error whose ``user_message`` may be shown in chat."""

    default_message = "Something went wrong."

    def __init__(self, user_message: str | None = None) -> None:
        self.user_message = user_message or self.default_message
        super().__init__(self.user_message)


class ConfigError(PgbotError):
    """The config file or environment is invalid; ``problems`` holds one line per problem."""

    default_message = "The configuration is invalid."

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class UnknownDatabaseError(PgbotError):
    default_message = "That database is not configured."


class NotPostgresError(PgbotError):
    """Work only a PostgreSQL server does (a change, an export, a diagnosis) asked of a database that is not
    one: a configuration of tests (MemoryDatabase), never a user's mistake."""

    default_message = "This needs a PostgreSQL server, and this database is not one."


class AccessDeniedError(PgbotError):
    default_message = "You are not mapped to a database role here, so pgbot cannot run anything for you."


class GuardError(PgbotError):
    default_message = "That SQL was refused."


class DatabaseError(PgbotError):
    """``position``: Postgres's 1-based offset into ``query`` (None: into the statement sent), ``sqlstate``:
    its error code (all optional; they help the model find its mistake)."""

    default_message = "The database reported an error."

    def __init__(self, user_message: str | None = None, *, position: int | None = None,
                 query: str | None = None, sqlstate: str | None = None) -> None:
        super().__init__(user_message)
        self.position = position
        self.query = query
        self.sqlstate = sqlstate


class DatabaseUnavailableError(DatabaseError):
    default_message = "The database cannot be reached right now."


class QueryTimeoutError(DatabaseError):
    default_message = "The query took too long and was cancelled."


class PermissionDeniedError(DatabaseError):
    default_message = "Postgres refused: your database role lacks the privilege."


class LlmError(PgbotError):
    default_message = "The language model endpoint failed."


class LlmUnavailableError(LlmError):
    default_message = "The language model endpoint cannot be reached."


class LlmAuthError(LlmError):
    default_message = "The language model endpoint rejected the API key (check llm.api_key)."


class LlmRateLimitError(LlmError):
    default_message = "The language model endpoint is rate limiting pgbot; try again shortly."


class LlmResponseError(LlmError):
    default_message = "The language model sent a reply pgbot could not use."


class LlmLengthError(LlmError):
    default_message = "The model stopped at the max_tokens limit before answering."


class ApprovalError(PgbotError):
    default_message = "That approval cannot be carried out."


class ApprovalStoreUnavailableError(ApprovalError):
    default_message = (
        "pgbot cannot reach its approval store (Redis) right now, so nothing was run. "
        "Try again once it is back."
    )


class ContextUnavailableError(PgbotError):
    default_message = "pgbot's context store (Redis) cannot be reached; try again in a moment."


class FeedbackUnavailableError(PgbotError):
    default_message = "pgbot could not store your feedback right now; try again in a moment."


class MigrationFileError(PgbotError):
    default_message = "The migrations folder has a problem."


class IndexRequestError(PgbotError):
    """The requested index names a table or columns that do not exist, or is malformed."""


class BackupError(PgbotError):
    default_message = "The backup or restore could not be carried out."


class SecurityError(PgbotError):
    """A statement changed the session's role or user; its result was discarded and the connection closed."""

    default_message = ("pgbot stopped this statement: it changed the database role it runs as. The result was "
                       "discarded, the connection closed and the attempt recorded in the audit log.")


class ChartError(PgbotError):
    default_message = "This result cannot be drawn as a chart."


class ScheduleError(PgbotError):
    default_message = "That schedule cannot be created or changed."


class BusyError(PgbotError):
    default_message = "pgbot is busy with other requests; your message is not lost, try again in a moment."


class QuotaError(PgbotError):
    """``limit`` says which one: "user", "channel" or "budget" (a metrics label)."""

    default_message = "You have reached a usage limit; try again later."

    def __init__(self, user_message: str | None = None, *, limit: str = "user") -> None:
        self.limit = limit
        super().__init__(user_message)


class ModelHint(Exception):
    """A problem the model can fix (bad SQL, unknown table); fed back as the tool's result."""

    def __init__(self, hint: str) -> None:
        self.hint = hint
        super().__init__(hint)


class QueryFailed(ModelHint):
    """The model's query did not parse, plan or run: a result is still owed, so prose is not an answer yet."""


class HandOff(ModelHint):
    """A call that belongs to another tool, e.g. an UPDATE sent to the read tool.

    The agent passes ``arguments`` to ``tool`` when that tool is available and puts ``note`` before its
    output; otherwise (or where nothing knows about hand-offs) it is an ordinary hint: ``hint``.
    """

    def __init__(self, *, tool: str, arguments: dict[str, object], note: str, hint: str) -> None:
        super().__init__(hint)
        self.tool = tool
        self.arguments = arguments
        self.note = note


@contextmanager
def refused_as_hint(*, context: str = "", advice: str = "") -> Iterator[None]:
    """A :class:`GuardError` inside becomes ``ModelHint("Refused<context>: <reason> <advice>")``: the model
    rewrites SQL the guard refused; the user sees only the model's next try.

    Args:
        context: after "Refused", e.g. " (up migration)"
        advice: a sentence after the reason, e.g. what the tool accepts instead
    """
    try:
        yield
    except GuardError as exc:
        raise ModelHint(f"Refused{context}: {exc.user_message}" + (f" {advice}" if advice else "")) from None
