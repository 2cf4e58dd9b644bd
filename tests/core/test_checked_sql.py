"""CheckedSql: the only SQL fetch, plan, export_csv and preview_change take (and the only statement ``run`` may
have the catalog check as ``guarded``), and the one way around the guard."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from core.config import DatabaseSettings
from core.db.export import export_csv
from core.db.postgres import PgDatabase
from core.db.preview import preview_change
from core.sqlguard import CheckedSql, SqlGuard, StatementKind

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("core", "adapters", "bot")


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for package in SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(), filename=str(path))


def _constant_strings(module: ast.Module) -> set[str]:
    """Module-level names bound once to a string literal (``X = "SELECT …"``), implicit concatenation included."""
    bound: dict[str, int] = {}
    literal: set[str] = set()
    for node in ast.walk(module):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                bound[target.id] = bound.get(target.id, 0) + 1
    for node in module.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            literal.add(node.targets[0].id)
    return {name for name in literal if bound.get(name) == 1}


def _is_trusted_call(node: ast.Call) -> bool:
    func = node.func
    return isinstance(func, ast.Attribute) and func.attr == "trusted" \
        and isinstance(func.value, ast.Name) and func.value.id == "CheckedSql"


def test_trusted_sql_is_always_a_literal_written_in_pgbot() -> None:
    """CheckedSql.trusted skips the guard, so its argument must be text in pgbot's source: a string literal or
    a module constant bound once to one. A variable, an f-string or a parameter could carry a user's text."""
    calls, bad = 0, []
    for path, module in _modules():
        constants = _constant_strings(module)
        for node in ast.walk(module):
            if not (isinstance(node, ast.Call) and _is_trusted_call(node)):
                continue
            calls += 1
            args = [*node.args, *(k.value for k in node.keywords)]
            ok = len(args) == 1 and (
                (isinstance(args[0], ast.Constant) and isinstance(args[0].value, str))
                or (isinstance(args[0], ast.Name) and args[0].id in constants))
            if not ok:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, "CheckedSql.trusted needs a string literal or module constant:\n" + "\n".join(bad)
    assert calls >= 2  # the readiness probe and check-config's server version: the scan sees them


def test_checked_sql_is_made_only_by_the_guard_module() -> None:
    """Nothing outside core/sqlguard.py builds a CheckedSql directly or reaches for its private maker."""
    found = []
    for path, module in _modules():
        if path == ROOT / "core" / "sqlguard.py":
            continue
        for node in ast.walk(module):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in {"CheckedSql", "_mint"}:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and node.module == "core.sqlguard" \
                    and any(a.name in {"_mint", "_MINTING"} for a in node.names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports the private maker")
    assert not found, found


def test_checked_sql_cannot_be_forged_at_runtime() -> None:
    checked = SqlGuard().check_read("SELECT 1")
    with pytest.raises(TypeError, match="CheckedSql comes only from"):
        CheckedSql(kind=StatementKind.READ, statement_type="SelectStmt", sql="DROP TABLE orders")
    with pytest.raises(TypeError, match="CheckedSql comes only from"):
        dataclasses.replace(checked, sql="DROP TABLE orders")
    assert checked.sql == "SELECT 1" and checked.path == "read" and not checked.is_trusted
    change = SqlGuard().check_change("DELETE FROM orders")
    assert change.path == "change" and change.kind is StatementKind.WRITE
    own = CheckedSql.trusted("SELECT 1")
    assert own.is_trusted and own.kind is StatementKind.READ and own.sql == "SELECT 1"


@pytest.fixture
async def db(fresh_db: str) -> AsyncIterator[PgDatabase]:
    database = PgDatabase("checked", DatabaseSettings(dsn=fresh_db))  # type: ignore[arg-type]
    try:
        yield database
    finally:
        await database.aclose()


async def test_plain_text_is_refused_before_it_reaches_postgres(db: PgDatabase, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"PgDatabase.fetch takes a CheckedSql .* not str"):
        await db.fetch("select 1", role=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"PgDatabase.plan takes a CheckedSql .* not str"):
        await db.plan("select 1", role=None)  # type: ignore[arg-type]

    async def work(conn: asyncpg.Connection) -> None:
        raise AssertionError("an unchecked statement reached a connection")

    classified = SqlGuard().classify("SELECT 1")  # parsed, but not checked for a path
    with pytest.raises(TypeError, match=r"PgDatabase.run takes a CheckedSql .* not Classification"):
        await db.run(work, role=None, read_only=True, guarded=classified)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="export_csv takes a CheckedSql"):
        await export_csv(db, checked="select 1", role=None, directory=tmp_path,  # type: ignore[arg-type]
                         max_bytes=1000)
    with pytest.raises(TypeError, match="preview_change takes a CheckedSql"):
        await preview_change(db, "DELETE FROM t", role=None)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - the export opened no file


async def test_each_path_takes_only_sql_checked_for_it(db: PgDatabase) -> None:
    """A change checked by check_change is not a read, and a read is not a change to preview."""
    with pytest.raises(TypeError, match="checked for the read path; this passed check_change"):
        await db.fetch(SqlGuard().check_change("DELETE FROM t"), role=None)
    with pytest.raises(TypeError, match="checked for the change path; this passed check_read"):
        await preview_change(db, SqlGuard().check_read("SELECT 1"), role=None)
    with pytest.raises(TypeError, match="checked for the read path; this passed check_change"):
        await db.plan(SqlGuard().check_change("DELETE FROM t"), role=None)


async def test_trusted_and_checked_reads_run(db: PgDatabase) -> None:
    own = await db.fetch(CheckedSql.trusted("SELECT 1 AS one"), role=None)
    read = await db.fetch(SqlGuard().check_read("SELECT 2 AS two"), role=None)
    assert (own.columns, own.rows, read.columns, read.rows) == (("one",), [(1,)], ("two",), [(2,)])
