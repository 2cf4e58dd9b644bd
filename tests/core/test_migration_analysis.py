"""Migration files and statement analysis: pure logic (no database)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from core.errors import GuardError, MigrationFileError
from core.migrations import files
from core.migrations.analysis import analyse, is_irreversible
from core.sqlguard import SqlGuard

GUARD = SqlGuard()


def notes(sql: str) -> str:
    return "\n".join(analyse(sql, GUARD).describe())


@pytest.mark.parametrize(("sql", "expected"), [
    ("ALTER TABLE t ADD COLUMN c int", "does not rewrite the table (existing rows read NULL)"),
    ("ALTER TABLE t ADD COLUMN c timestamptz NOT NULL DEFAULT now()", "a constant default is stored once"),
    ("ALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid()", "volatile default (gen_random_uuid()) rewrites"),
    ("ALTER TABLE t ADD COLUMN id bigserial", "serial, identity or stored generated value rewrites every row"),
    ("ALTER TABLE t ADD COLUMN c int NOT NULL", "NOT NULL without a DEFAULT: this fails if t has rows"),
    ("ALTER TABLE t ALTER COLUMN c SET NOT NULL", "scans all of t for NULLs while holding the lock"),
    ("ALTER TABLE t ALTER COLUMN c TYPE bigint", "usually rewrites the table and its indexes"),
    ("ALTER TABLE t ADD CONSTRAINT k CHECK (c > 0)", "checked against every row of t"),
    ("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES u (id)", "SHARE ROW EXCLUSIVE lock on t, u"),
    ("CREATE INDEX i ON t (c)", "writes to it wait until the build ends"),
    ("CREATE INDEX CONCURRENTLY i ON t (c)", "without blocking writes"),
    ("ALTER TABLE t SET LOGGED", "Rewrites the table"),
    ("VACUUM FULL t", "Rewrites the whole table"),
    ("ALTER TABLE t RENAME COLUMN c TO d", "use the old name stop working"),
])
def test_each_statement_says_what_it_locks_and_rewrites(sql: str, expected: str) -> None:
    text = notes(sql)
    assert expected in text, text
    assert "Lock: " in text


@pytest.mark.parametrize(("sql", "flag"), [
    ("DROP TABLE orders", "⚠ DATA LOSS: drops table orders and all its data."),
    ("DROP TABLE a, s.b", "⚠ DATA LOSS: drops table s.b and all its data."),
    ("DROP SCHEMA old CASCADE", "CASCADE also drops every object that depends on old"),
    ("ALTER TABLE orders DROP COLUMN discount", "⚠ DATA LOSS: drops column orders.discount and its data."),
    ("TRUNCATE orders", "⚠ DATA LOSS: TRUNCATE empties table orders."),
    ("DELETE FROM orders", "⚠ DATA LOSS: deletes rows from orders (every row: there is no WHERE)."),
    ("ALTER TABLE orders ALTER COLUMN total TYPE int", "⚠ POSSIBLE DATA LOSS: converts orders.total to int4"),
    ("UPDATE orders SET total = 0 WHERE id = 1", "⚠ DATA CHANGE: overwrites values in orders"),
])
def test_data_loss_is_flagged(sql: str, flag: str) -> None:
    analysis = analyse(sql, GUARD)
    assert any(flag in line for line in analysis.data_loss), analysis.data_loss


def test_safe_changes_raise_no_flag_and_no_transaction_is_detected() -> None:
    analysis = analyse("CREATE TABLE t (id int); CREATE INDEX ON t (id); COMMENT ON TABLE t IS 'x'", GUARD)
    assert analysis.data_loss == () and not analysis.outside_transaction and len(analysis.statements) == 3
    assert analysis.strongest_lock == "SHARE"  # CREATE INDEX; COMMENT takes SHARE UPDATE EXCLUSIVE
    assert analyse("CREATE INDEX CONCURRENTLY i ON t (c)", GUARD).outside_transaction
    assert analyse("-- pgbot: no-transaction\nALTER TYPE mood ADD VALUE 'meh'", GUARD,
                   marked_no_transaction=files.has_no_transaction_mark("-- pgbot: no-transaction\n")
                   ).outside_transaction


@pytest.mark.parametrize(("sql", "message"), [
    ("ALTER TABLE t ADD COLUM c int", "could not parse this SQL"),
    ("SELECT * FROM t", "Statement 1 (SELECT * FROM t): This statement only reads"),
    ("ALTER TABLE t ADD c int; COMMIT", "Statement 2 (COMMIT): Transaction control"),
    ("CREATE TABLE t (id int); SET ROLE admin", "Statement 2 (SET ROLE admin)"),
    ("-- only a comment", "holds no SQL statement"),
    ("CREATE ROLE app LOGIN PASSWORD 'hunter2'", "Statement 1 (CreateRole) may carry a password"),
])
def test_bad_statements_are_refused_with_the_statement_named(sql: str, message: str) -> None:
    with pytest.raises(GuardError, match=re.escape(message)):
        analyse(sql, GUARD)


def test_slugs_come_from_the_request() -> None:
    assert files.slugify("Add a nullable `discount` column to orders") == "add_nullable_discount_orders"
    assert files.slugify("../../etc/passwd; rm -rf /") == "etc_passwd_rm_rf"
    assert files.slugify("!!!") == "migration"
    assert len(files.slugify("word " * 50)) <= 60


def test_the_folder_is_read_in_order_and_its_problems_are_named(tmp_path: Path) -> None:
    for name, text in {"0002_b.up.sql": "B", "0001_a.up.sql": "A", "0001_a.down.sql": "-A", "readme.md": "",
                       "stray.sql": "", "0009_orphan.down.sql": ""}.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    folder = files.load_folder(tmp_path)
    found = [(m.label, m.up_sql, m.down_sql) for m in folder.migrations]
    assert found == [("0001_a", "A", "-A"), ("0002_b", "B", None)]
    assert folder.next_version() == 3
    assert any("stray.sql" in i for i in folder.ignored) and any("0009_orphan" in i for i in folder.ignored)
    assert folder.migrations[0].checksum == files.checksum("A", "-A") != files.checksum("A", "-B")
    (tmp_path / "0002_c.up.sql").write_text("C", encoding="utf-8")
    with pytest.raises(MigrationFileError, match="Two migrations"):
        files.load_folder(tmp_path)
    assert files.load_folder(tmp_path / "missing").migrations == ()


def test_drafts_are_not_migrations_and_dead_ones_are_removed(tmp_path: Path) -> None:
    old = files.write_draft(tmp_path, action_id="old-action-0000001", version=1, name="a", up_sql="U", down_sql="D")
    files.write_draft(tmp_path, action_id="new-action-0000002", version=1, name="b", up_sql="U", down_sql="D")
    rejected = files.write_draft(tmp_path, action_id="rej-action-0000003", version=1, name="c", up_sql="U",
                                 down_sql="D")
    assert files.load_folder(tmp_path).migrations == ()
    assert sorted(d.name for d in files.list_drafts(tmp_path)) == ["a", "b", "c"]
    removed = files.remove_dead_drafts(tmp_path, older_than_s=60, decided={rejected.action_id},
                                       now=old.created_at + 30)
    assert removed == ["0001_c"]
    removed = files.remove_dead_drafts(tmp_path, older_than_s=60, now=time.time() + 120)
    assert sorted(removed) == ["0001_a", "0001_b"] and files.list_drafts(tmp_path) == []


def test_promotion_never_overwrites(tmp_path: Path) -> None:
    draft = files.write_draft(tmp_path, action_id="an-action-id-00001", version=1, name="a", up_sql="U", down_sql="D")
    (tmp_path / "0001_a.up.sql").write_text("someone else's", encoding="utf-8")
    with pytest.raises(MigrationFileError, match="already exists"):
        files.promote_draft(draft, folder=tmp_path, version=1)
    promoted = files.promote_draft(draft, folder=tmp_path, version=2)
    assert promoted.label == "0002_a" and (tmp_path / "0002_a.up.sql").read_text() == "U"
    assert files.list_drafts(tmp_path) == []


def test_only_a_commented_down_marked_irreversible_counts_as_irreversible() -> None:
    assert is_irreversible("-- irreversible: enum values cannot be dropped\n", GUARD)
    assert not is_irreversible("-- nothing to do\n", GUARD)
    assert not is_irreversible("-- irreversible\nDROP TABLE t;\n", GUARD)  # it has a statement: a real down
