"""core.undo.statement: what a change targets, and RETURNING added without changing anything else (pglast)."""

from __future__ import annotations

import pytest

from core.undo.statement import Target, rows_before, target_of, with_returning


def target(sql: str) -> Target:
    found = target_of(sql)
    assert isinstance(found, Target), found
    return found


@pytest.mark.parametrize("sql", [
    "UPDATE items SET qty = 1 WHERE id = 2",
    "UPDATE items SET qty = 1 WHERE id = 2;",
    "UPDATE items SET qty = 1 WHERE id = 2 -- a trailing comment",
    "DELETE FROM public.items AS i USING other o WHERE i.id = o.id /* why */",
    "INSERT INTO items (id, name) VALUES (1, 'a; -- not a comment') ON CONFLICT DO NOTHING",
    "WITH c AS (SELECT 1 AS id) DELETE FROM items WHERE id IN (SELECT id FROM c)",
])
def test_the_statement_that_runs_is_the_approved_text_plus_returning(sql: str) -> None:
    found = target(sql)
    ran = with_returning(sql, found, ("id",))
    assert ran is not None and ran.startswith(sql.rstrip().rstrip(";"))
    assert ran[len(sql.rstrip().rstrip(";")):].startswith("\nRETURNING pg_catalog.row_to_json(")


def test_returning_that_would_be_swallowed_or_split_is_refused() -> None:
    sql = "UPDATE items SET qty = 1 WHERE id = 2; -- done"
    assert with_returning(sql, target(sql), ("id",)) is None


def test_the_target_and_its_reference() -> None:
    found = target('UPDATE "Sales"."Items" AS s SET qty = 1, (a, b) = (1, 2) FROM x WHERE s.id = x.id')
    assert (found.kind, found.name, found.ref, found.set_columns) == (
        "update", '"Sales"."Items"', "s", ("qty", "a", "b"))
    select = rows_before(found, ("id", "day"), limit=11)
    assert select.endswith("LIMIT 11 FOR UPDATE OF s") and "FROM \"Sales\".\"Items\" AS s, x" in select


@pytest.mark.parametrize(("sql", "why"), [
    ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "MERGE cannot be undone"),
    ("UPDATE t SET a = 1 RETURNING *", "RETURNING clause of its own"),
    ("WITH d AS (DELETE FROM z RETURNING *) DELETE FROM t", "WITH part changes data too"),
    ("INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 1", "ON CONFLICT DO UPDATE"),
    ("CREATE TABLE t (id int)", "only INSERT, UPDATE and DELETE"),
    ("not sql at all", "could not read"),
])
def test_what_cannot_be_undone_says_why(sql: str, why: str) -> None:
    found = target_of(sql)
    assert isinstance(found, str) and why in found
