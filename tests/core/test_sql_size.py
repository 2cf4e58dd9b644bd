"""Issue 13, finding 6: SQL too long or too deep for the parser gets a clear refusal, never a crash.

libpg_query overflows the C stack (a segfault that kills the bot) on left-deep trees of ~15,000+ levels.
The fuzz runs in a subprocess, so a crash shows up as its exit status instead of taking pytest down; the
guard's limit is raised to 1,000,000 characters there, so the depth estimate alone must stop every crasher.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.errors import GuardError
from core.sqlguard import MAX_DEPTH, SqlGuard, check_size, depth_estimate
from tests.helpers import REPO_ROOT

# Each shape at a size that crashed pglast (measured by experiment: see MAX_DEPTH in core/sqlguard.py).
FUZZ = r'''
import json, random, sys
from core.errors import GuardError
from core.sqlguard import SqlGuard
from core.diagnostics.query_shape import query_shape

n = 30_000
shapes = {
    "plus": "SELECT " + "+".join(["1"] * n),
    "concat": "SELECT " + "||".join(["'a'"] * n),
    "union": " UNION ".join(["SELECT 1"] * 20_000),
    "cast": "SELECT 1" + "::int" * 40_000,
    "join": "SELECT * FROM t0 " + " ".join(f"JOIN t{i} ON true" for i in range(1, 30_000)),
    "is_null": "SELECT true" + " IS NULL" * n,
    "collate": "SELECT 'a'" + ' COLLATE "C"' * 60_000,
    "at_time_zone": "SELECT now()" + " AT TIME ZONE 'UTC'" * n,
    "parens": "SELECT " + "(" * n + "1" + ")" * n,
    "subqueries": "SELECT " + "(SELECT " * n + "1" + ")" * n,
    "case": "SELECT " + "CASE WHEN true THEN " * n + "1" + " END" * n,
    "functions": "SELECT " + "abs(" * n + "1" + ")" * n,
    "in_list": "SELECT 1 WHERE 1 IN (" + ",".join(["1"] * 50_000) + ")",
    "array": "SELECT ARRAY[" + ",".join(["1"] * 50_000) + "]",
    "unterminated": "SELECT '" + "x" * 50_000,
}
rng = random.Random(13)
pieces = ["+", "-", "*", "(", ")", "SELECT", "1", "x", "::int", "||", "AND", "OR", "CASE", "WHEN", "THEN", "END",
          "IS NULL", "UNION", "JOIN", ",", "'s'", "ARRAY[", "]", "NOT", "COLLATE \"C\""]
for i in range(20):
    shapes[f"random{i}"] = " ".join(rng.choice(pieces) for _ in range(rng.choice([10, 1_000, 30_000])))
guard = SqlGuard(max_sql_chars=1_000_000)
out = {}
for name, sql in shapes.items():
    try:
        kind = guard.classify(sql).kind.value
        query_shape(sql)  # index advice parses what the guard let through
        out[name] = "ok:" + kind
    except GuardError as exc:
        out[name] = "refused:" + exc.user_message
print(json.dumps(out))
'''


def test_long_and_deep_sql_is_refused_in_a_subprocess_that_exits_cleanly() -> None:
    done = subprocess.run([sys.executable, "-c", FUZZ], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("plus", "concat", "union", "cast", "join", "is_null", "collate", "at_time_zone"):
        assert results[name].startswith("refused:") and "nested too deeply" in results[name], (name, results[name])
    for name in ("parens", "subqueries", "case", "functions", "unterminated"):
        assert results[name].startswith("refused:"), (name, results[name])
    assert results["in_list"] == "ok:read" and results["array"] == "ok:read"  # flat, however long


def test_the_configured_length_is_refused_first_with_the_limit_named() -> None:
    with pytest.raises(GuardError, match=r"60,006 characters long; pgbot accepts at most 20,000 \(\[limits\] "
                                         r"max_sql_chars\)"):
        SqlGuard().classify("SELECT " + "+".join(["1"] * 30_000))
    SqlGuard().classify("SELECT " + " + ".join(["1"] * 3_000))  # 12 KB of a legitimate long expression


def test_depth_estimate_bounds_the_tree_and_keeps_flat_lists_cheap() -> None:
    assert depth_estimate("SELECT a, b FROM t WHERE x IN (1, 2, 3) AND y = 'z' OR w") == 6
    assert depth_estimate("SELECT ((((1))))") == 5
    assert depth_estimate("VALUES " + ", ".join(f"({i}, 'x')" for i in range(5_000))) == 2
    with pytest.raises(GuardError, match="nested too deeply"):
        check_size("SELECT 1" + "::int" * (MAX_DEPTH + 1), max_chars=1_000_000)
