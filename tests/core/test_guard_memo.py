"""SqlGuard parses and walks a statement once: the same text again gets the same verdict without pglast."""

from __future__ import annotations

import pytest
from pglast import parse_sql

from core import sqlguard
from core.errors import GuardError
from core.sqlguard import SqlGuard, StatementKind

SQL = "SELECT count(*) AS shipped FROM orders WHERE status = 'shipped'"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text handed to pglast's parser, through the guard."""
    seen: list[str] = []

    def counting(sql: str) -> object:
        seen.append(sql)
        return parse_sql(sql)

    monkeypatch.setattr(sqlguard, "parse_sql", counting)
    return seen


def test_same_text_is_parsed_once_with_the_same_verdict(parses: list[str]) -> None:
    guard = SqlGuard()
    first = guard.check_read(SQL)
    again = guard.check_read(SQL)
    assert again == first and again.sql == SQL and parses == [SQL]  # a fresh CheckedSql, the kept verdict
    assert first == SqlGuard().check_read(SQL)  # a fresh guard (a fresh parse) agrees
    guard.check_read(SQL, allowed_functions=["similarity"])  # another policy: another verdict, parsed again
    assert parses == [SQL, SQL, SQL]


def test_refusals_stay_refusals_and_parse_errors_are_not_kept(parses: list[str]) -> None:
    guard = SqlGuard()
    for _ in range(2):
        with pytest.raises(GuardError, match="changes data"):
            guard.check_read("DELETE FROM orders")
        with pytest.raises(GuardError, match="could not parse"):
            guard.check_read("SELEC 1")
    assert parses.count("DELETE FROM orders") == 1 and parses.count("SELEC 1") == 2
    assert guard.classify("DELETE FROM orders").kind is StatementKind.WRITE


def test_memo_is_bounded_and_a_lower_size_limit_still_refuses(parses: list[str]) -> None:
    guard = SqlGuard()
    for n in range(sqlguard.SEEN_MAX + 10):
        guard.classify(f"SELECT {n}")
    assert len(guard._seen) == sqlguard.SEEN_MAX
    guard.classify("SELECT 0")  # the oldest went first: parsed again
    assert parses.count("SELECT 0") == 2
    long_sql = f"SELECT '{'x' * sqlguard.SEEN_MAX_CHARS}'"
    guard.classify(long_sql)
    guard.classify(long_sql)
    assert parses.count(long_sql) == 2  # long texts are not kept
    guard.classify(SQL)
    guard.max_sql_chars = 10
    with pytest.raises(GuardError, match="at most 10"):
        guard.classify(SQL)
