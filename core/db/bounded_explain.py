"""EXPLAIN whose output the database cuts, so no plan can fill pgbot's memory.

The planner computes immutable functions of constants and prints the value in the plan:
``EXPLAIN VERBOSE SELECT repeat('x', 100000000)`` is one 100 MB line, and a single row always arrives whole
(``fetch`` row by row does not help). Refusing "amplifiers" by name cannot be complete (eight nested
``replace()`` calls make 10^8 characters from 80 bytes of SQL), so the output is bounded instead: EXPLAIN runs
inside a ``DO`` block (no function is created) that cuts each line to N characters, keeps at most M lines and
a byte budget, and hands the result back through a transaction-local setting. The plan is still built by the
server, under ``statement_timeout``, as before; only what reaches Python is bounded.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import asyncpg

from core.errors import PgbotError
from core.messages import CutText

# A FORMAT JSON plan is parsed whole, so it is refused past this: a plan of 1,000 partitions is ~3 MB.
MAX_PLAN_BYTES = 8 * 1024 * 1024
_SETTING = "pgbot.explain"


@dataclass(frozen=True, slots=True)
class PlanLines:
    """EXPLAIN's rows as the database cut them: a line over the limit is a CutText that knows its length."""

    lines: tuple[str, ...]
    more: bool  # lines past ``max_lines`` or the byte budget exist


class PlanTooLargeError(PgbotError):
    """A plan too large to fetch whole (a constant the planner computed, such as ``repeat(…)``, is in it)."""


def _tag(sql: str) -> str:
    while True:
        tag = f"$pgbot_{secrets.token_hex(6)}$"
        if tag not in sql:
            return tag


def _do_block(explain_sql: str, *, max_lines: int, max_chars: int, max_bytes: int) -> str:
    """The DO block that runs ``explain_sql`` and stores its cut output in :data:`_SETTING` (as JSON)."""
    inner = _tag(explain_sql)
    outer = _tag(explain_sql + inner)
    return (
        f"/* pgbot */ DO {outer}\n"
        "DECLARE line text; n int := 0; kept bigint := 0; lines text[] := '{}'; lengths bigint[] := '{}'; "
        "more boolean := false;\n"
        f"BEGIN\n  FOR line IN EXECUTE {inner}{explain_sql}{inner} LOOP\n"
        "    n := n + 1;\n"
        f"    IF n > {int(max_lines)} OR kept + least(octet_length(line), {int(max_chars)} * 4) > {int(max_bytes)} "
        "THEN more := true; CONTINUE; END IF;\n"
        f"    lines := lines || left(line, {int(max_chars)}); lengths := lengths || length(line)::bigint;\n"
        f"    kept := kept + octet_length(left(line, {int(max_chars)}));\n"
        "  END LOOP;\n"
        f"  PERFORM set_config('{_SETTING}', json_build_object('lines', lines, 'lengths', lengths, "
        "'more', more)::text, true);\n"
        f"END {outer}"
    )


async def explain_lines(conn: asyncpg.Connection, explain_sql: str, *, max_lines: int, max_chars: int,
                        max_bytes: int = MAX_PLAN_BYTES) -> PlanLines:
    """Run ``explain_sql`` (an EXPLAIN statement) on the open transaction; each line cut to ``max_chars``."""
    await conn.execute(_do_block(explain_sql, max_lines=max_lines, max_chars=max_chars, max_bytes=max_bytes))
    found = json.loads(await conn.fetchval(f"SELECT current_setting('{_SETTING}')"))
    lines = tuple(CutText(line, full_length=length) if length > len(line) else line
                  for line, length in zip(found["lines"], found["lengths"], strict=True))
    return PlanLines(lines=lines, more=bool(found["more"]))


async def explain_document(conn: asyncpg.Connection, explain_sql: str, *,
                           max_bytes: int = MAX_PLAN_BYTES) -> str:
    """The whole output of a one-row EXPLAIN (FORMAT JSON), or PlanTooLargeError past ``max_bytes``."""
    found = await explain_lines(conn, explain_sql, max_lines=1, max_chars=max_bytes, max_bytes=max_bytes)
    if found.more or not found.lines or isinstance(found.lines[0], CutText):
        raise PlanTooLargeError(
            f"The query plan is larger than {max_bytes // (1024 * 1024)} MB, so pgbot does not fetch it. The "
            "planner computes functions of constants (repeat, lpad, replace and the like) and prints their values in "
            "the plan, so a huge constant makes a huge plan. Use a smaller constant.")
    return found.lines[0]


async def explain_discarded(conn: asyncpg.Connection, explain_sql: str) -> None:
    """Run ``explain_sql`` for its errors only: the output stays in the database."""
    await conn.execute(_do_block(explain_sql, max_lines=0, max_chars=0, max_bytes=0))
