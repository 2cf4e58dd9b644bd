"""The Database protocol's contract: the same checks against PgDatabase (real PostgreSQL) and MemoryDatabase.

Only where the two overlap: what a read and a plan take, what they return or refuse, the row cap, the role,
pgbot's own work in ``run``. What only Postgres does (the catalog's function check, cutting wide cells, identity
checks) is tested against Postgres alone, in tests/core/test_sqlguard.py and tests/integration/test_role_escape.py.
The registry hands out either as a Database, and only a PostgreSQL server as a PostgresDatabase.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import asyncpg
import pytest

from core.config import DatabaseSettings, Settings
from core.db.base import Connection, Database
from core.db.memory import MemoryDatabase
from core.db.postgres import PgDatabase
from core.db.registry import DatabaseRegistry
from core.errors import DatabaseError, NotPostgresError, PermissionDeniedError, UnknownDatabaseError
from core.sqlguard import CheckedSql, SqlGuard
from tests.services import throwaway_database, throwaway_role

ITEMS = "SELECT id, name FROM items ORDER BY id"
SECRETS = "SELECT code FROM secrets"
COUNT = "SELECT count(*) FROM items"
ROWS = [(1, "bolt"), (2, "nut"), (3, "washer")]


@dataclass(frozen=True)
class Subject:
    db: Database
    reader: str  # a role that may read items, not secrets


@pytest.fixture(params=["postgres", "memory"])
async def subject(request: pytest.FixtureRequest, pg_admin_dsn: str) -> AsyncIterator[Subject]:
    if request.param == "memory":
        memory = MemoryDatabase("contract")
        reader = "contract_reader"
        memory.answer(ITEMS, columns=["id", "name"], rows=ROWS, types=["int4", "text"], roles={None, reader})
        memory.answer(SECRETS, columns=["code"], rows=[("x",)], types=["text"], roles={None})
        memory.answer(COUNT, columns=["count"], rows=[(3,)], types=["int8"], roles={None, reader})
        yield Subject(memory, reader)
        return
    async with throwaway_database(pg_admin_dsn, prefix="pgbot_contract") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text);"
                               "INSERT INTO items VALUES (1, 'bolt'), (2, 'nut'), (3, 'washer');"
                               "CREATE TABLE secrets (code text); INSERT INTO secrets VALUES ('x')")
        finally:
            await conn.close()
        async with throwaway_role(dsn, pg_admin_dsn, prefix="pgbot_contract",
                                  grants="GRANT SELECT ON items TO {role}") as reader:
            db = PgDatabase("contract", DatabaseSettings(dsn=dsn))  # type: ignore[arg-type]
            try:
                yield Subject(db, reader)
            finally:
                await db.aclose()


async def test_a_read_takes_only_sql_checked_for_reading(subject: Subject) -> None:
    with pytest.raises(TypeError, match="takes a CheckedSql"):
        await subject.db.fetch(ITEMS, role=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="checked for the read path"):
        await subject.db.fetch(SqlGuard().check_change("DELETE FROM items"), role=None)


async def test_a_checked_read_returns_its_rows_and_types(subject: Subject) -> None:
    result = await subject.db.fetch(SqlGuard().check_read(ITEMS), role=None)
    assert (result.columns, result.rows, result.truncated) == (("id", "name"), ROWS, False)
    assert result.types == ("int4", "text")
    own = await subject.db.fetch(CheckedSql.trusted(COUNT), role=None)
    assert own.rows == [(3,)]


async def test_rows_beyond_the_cap_are_cut_and_said(subject: Subject) -> None:
    limits = replace(subject.db.limits, max_rows=2)
    result = await subject.db.fetch(SqlGuard().check_read(ITEMS), role=None, limits=limits)
    assert (result.rows, result.truncated, result.row_cap) == (ROWS[:2], True, 2)


async def test_the_role_decides_what_may_be_read(subject: Subject) -> None:
    assert (await subject.db.fetch(SqlGuard().check_read(ITEMS), role=subject.reader)).rows == ROWS
    with pytest.raises(PermissionDeniedError):
        await subject.db.fetch(SqlGuard().check_read(SECRETS), role=subject.reader)
    assert (await subject.db.fetch(SqlGuard().check_read(SECRETS), role=None)).rows == [("x",)]


async def test_a_plan_takes_only_sql_checked_for_reading(subject: Subject) -> None:
    with pytest.raises(TypeError, match="takes a CheckedSql"):
        await subject.db.plan(ITEMS, role=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="checked for the read path"):
        await subject.db.plan(SqlGuard().check_change("DELETE FROM items"), role=None)


async def test_a_plan_refuses_what_running_would(subject: Subject) -> None:
    """EXPLAIN first: a read the role may run plans; the role's missing grant and an unknown table are refused."""
    await subject.db.plan(SqlGuard().check_read(ITEMS), role=subject.reader)
    with pytest.raises(PermissionDeniedError):
        await subject.db.plan(SqlGuard().check_read(SECRETS), role=subject.reader)
    with pytest.raises(DatabaseError):
        await subject.db.plan(SqlGuard().check_read("SELECT * FROM no_such_table"), role=None)


async def test_pgbots_own_work_runs_on_a_connection(subject: Subject) -> None:
    async def work(conn: Connection) -> object:
        row = await conn.fetchrow(COUNT)
        assert row is not None
        return (await conn.fetchval(COUNT), row[0], [r["name"] for r in await conn.fetch(ITEMS)])

    assert await subject.db.run(work, role=subject.reader, read_only=True) == (3, 3, ["bolt", "nut", "washer"])


async def test_a_statement_it_cannot_answer_is_a_database_error(subject: Subject) -> None:
    with pytest.raises(DatabaseError):
        await subject.db.fetch(SqlGuard().check_read("SELECT * FROM no_such_table"), role=None)


def test_the_registry_gives_any_database_to_the_question_path_and_only_postgres_to_server_work() -> None:
    settings = Settings(databases={"shop": {"dsn": "postgresql://pgbot@127.0.0.1/shop"}})
    real = DatabaseRegistry(settings)
    assert isinstance(real.get("shop"), PgDatabase) and real.postgres("shop") is real.get("shop")
    memory = MemoryDatabase("shop")
    tests = DatabaseRegistry(settings, {"shop": memory})
    assert tests.get("shop") is memory and tests.names == ["shop"]
    with pytest.raises(NotPostgresError, match="'shop' is not a PostgreSQL server"):
        tests.postgres("shop")
    for registry in (real, tests):
        with pytest.raises(UnknownDatabaseError, match="Configured: shop"):
            registry.postgres("nope")
    with pytest.raises(ValueError, match="not the configured"):
        DatabaseRegistry(settings, {"other": MemoryDatabase("other")})
