"""The catalog lookup behind the read path's function check leaves out only operators it could never refuse."""

from __future__ import annotations

import asyncpg
import pytest

from core.db.functions import (
    _RUNS_QUERIES,
    _SYSTEM_SCHEMAS,
    LOOKUP_SQL,
    AllowedFunctions,
    _problem,
    _Proc,
    check_functions,
)
from core.errors import GuardError
from core.sqlguard import SqlGuard

OPERATORS = ["=", "<", "<>", "%", "||", "~~", "@@", "+", "->>"]


async def test_lookup_drops_only_builtin_operators_that_are_always_allowed(fresh_db: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("""
            CREATE FUNCTION public.noisy_eq(a int, b int) RETURNS bool LANGUAGE sql VOLATILE AS $$ SELECT a = b $$;
            CREATE OPERATOR public.= (LEFTARG = int, RIGHTARG = int, FUNCTION = public.noisy_eq);
        """)
        # Empty schema/name lists switch the filter off: the whole lookup, as before the filter.
        every = {_Proc(**dict(row)) for row in await conn.fetch(LOOKUP_SQL, ["count"], OPERATORS, [], [])}
        kept = {_Proc(**dict(row)) for row in await conn.fetch(LOOKUP_SQL, ["count"], OPERATORS,
                                                                _SYSTEM_SCHEMAS, _RUNS_QUERIES)}
        dropped = every - kept
        assert kept <= every and len(dropped) > 10 * len(kept)  # `=` alone has ~60 built-in functions
        assert all(p.kind == "o" for p in dropped)  # functions by name are all kept (arity, shadowing advice)
        assert {p.name for p in kept if p.kind == "f"} == {p.name for p in every if p.kind == "f"} == {"count"}
        assert all(_problem(p, AllowedFunctions([])) is None for p in dropped)
        assert any(p.schema == "public" and p.name == "noisy_eq" for p in kept)
        # ... so the decision is the same: the user's operator is still refused.
        classification = SqlGuard().check_read("SELECT 1 = 1")
        async with conn.transaction(readonly=True):
            with pytest.raises(GuardError, match=r"Operator = is not allowed .* public\.noisy_eq"):
                await check_functions(conn, classification, allowed=AllowedFunctions([]), database="db")
    finally:
        await conn.close()
