"""Answers backed by the database: which prose replies of the model are not answers, and what to tell it.

Small models write results they never fetched ("The final answer is: **12**"), imitate a tool's output
(``<tool_response>…``) instead of calling it, write a tool call too broken to repair, or stop in prose
after a Postgres error. Before a prose reply
is shown, the agent asks :func:`find_problem`; a reply with a problem goes back to the model with a
nudge saying why (once per problem, at most :data:`MAX_NUDGES` per turn), and a model that still answers
without a result behind it gets :func:`refusal` shown instead: the user never sees an invented number as
the answer.

Numbers count as backed when they appear in the question, the thread's earlier turns or this turn's tool
results, or when a query succeeded in this turn (its result may be summed, rounded, turned into a share).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Literal

from core.llm.base import ToolCall
from core.llm.textcalls import imitates_tool_output, looks_like_a_call

MAX_NUDGES = 2
Outcome = Literal["answer", "explain", "withhold"]
READ_TOOL = "run_query"
# A number as written in prose or a table: 1,234 / 12.50 / 7; not part of a word (v2, t1) or a list marker.
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
_LIST_MARKER = re.compile(r"^\s*\d+[.)]\s", re.M)


class Problem(enum.Enum):
    IMITATION = "imitation"  # the reply poses as a tool's output
    BROKEN_CALL = "broken_call"  # a tool call written as text that could not be read, even repaired
    AFTER_ERROR = "after_error"  # the last query failed (QueryFailed) and the model answered in prose
    UNGROUNDED = "ungrounded"  # numbers that no query, tool result or earlier turn produced


NUDGES: dict[Problem, str] = {
    Problem.IMITATION: (
        "pgbot: your reply contains text posing as a tool's result (for example <tool_response>). Tools run "
        f"only when you call them, so that result is made up. Call {READ_TOOL} (or the tool you meant) and answer "
        "from the real result."
    ),
    Problem.BROKEN_CALL: (
        "pgbot: your reply looks like a tool call, but it could not be read, so nothing ran. Call the tool again "
        "with its arguments as one valid JSON object (one SQL statement as a plain JSON string)."
    ),
    Problem.AFTER_ERROR: (
        "pgbot: your last query failed (the error is above), so no result backs an answer yet. Fix the SQL "
        f"and call {READ_TOOL} again. If the question cannot be answered from this database, say why, without "
        "numbers."
    ),
    Problem.UNGROUNDED: (
        "pgbot: no query ran in this turn, so the numbers in your reply do not come from the database and were "
        f"not shown. Call {READ_TOOL} with the SQL that answers the question, then answer from its result."
    ),
}

_REFUSALS: dict[Problem, str] = {
    Problem.IMITATION: "the model wrote a made-up tool result instead of running a query",
    Problem.BROKEN_CALL: "the model's tool call could not be read",
    Problem.AFTER_ERROR: "the query failed and the model answered without a result",
    Problem.UNGROUNDED: "the model answered without running a query",
}


def find_problem(answer: str, *, sources: Iterable[str], ran_sql: bool, last_failed: bool,
                 tools: set[str]) -> Problem | None:
    """Why ``answer`` cannot be shown as it is; None when it can.

    ``sources``: the question, earlier turns and this turn's tool results; ``ran_sql``: a query succeeded
    in this turn; ``last_failed``: the turn's last tool call was a query that failed; ``tools``: the names
    offered to the model.
    """
    if imitates_tool_output(answer):
        return Problem.IMITATION
    if looks_like_a_call(answer, tools):
        return Problem.BROKEN_CALL
    if last_failed:
        return Problem.AFTER_ERROR
    if not ran_sql and unbacked_numbers(answer, sources):
        return Problem.UNGROUNDED
    return None


def after_nudges(problem: Problem, answer: str, *, sources: Iterable[str], ran_sql: bool) -> Outcome:
    """What to show once the nudges are spent: made-up results never; after a failed query, the answer when
    an earlier query of the turn succeeded, else the model's explanation if it has no unbacked numbers."""
    if problem is not Problem.AFTER_ERROR:
        return "withhold"
    if ran_sql:
        return "answer"
    return "withhold" if unbacked_numbers(answer, sources) else "explain"


def refusal(problem: Problem) -> str:
    return (f"I could not get an answer from the database for this: {_REFUSALS[problem]}, so its reply is not "
            "shown. Try asking again, perhaps naming the table or columns you mean.")


def unbacked_numbers(text: str, sources: Iterable[str]) -> list[str]:
    """Numbers in ``text`` that appear in none of ``sources`` (list markers such as "1." are not claims)."""
    backed = {n for source in sources for n in _numbers(source)}
    return [n for n in _numbers(_LIST_MARKER.sub(" ", text)) if n not in backed]


def repeats_earlier_sql(calls: Sequence[ToolCall], ran: Sequence[str]) -> bool:
    """Whether every call re-runs a query that already succeeded in this turn: a model that shows the SQL it
    ran beside its answer (a ```sql block, read as a call) is answering, not asking for the query again."""
    done = {_same_sql(sql) for sql in ran}
    return bool(calls) and all(call.name == READ_TOOL and _call_sql(call) in done for call in calls)


def _numbers(text: str) -> set[str]:
    found = set()
    for raw in _NUMBER.findall(text):
        plain = raw.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", raw) else raw.replace(",", ".")
        try:
            found.add(str(Decimal(plain).normalize()))
        except InvalidOperation:
            found.add(raw)
    return found


def _same_sql(sql: str) -> str:
    return " ".join(sql.split()).rstrip(";").strip()


def _call_sql(call: ToolCall) -> str | None:
    try:
        args = json.loads(call.arguments)
    except (ValueError, RecursionError):
        return None
    sql = args.get("sql") if isinstance(args, dict) else None
    return _same_sql(sql) if isinstance(sql, str) else None
