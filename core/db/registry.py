"""The configured databases by name; pools are created only when a database is first used.

:meth:`DatabaseRegistry.get` gives the :class:`Database` the question path needs; :meth:`DatabaseRegistry.postgres`
the :class:`PostgresDatabase` for work only a server does, refusing a database that is not one (a test's
``MemoryDatabase``), so that work says in its type what it needs rather than finding out halfway.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.config import Settings
from core.db.base import Database, PostgresDatabase
from core.db.postgres import PgDatabase
from core.errors import NotPostgresError, UnknownDatabaseError


class DatabaseRegistry:
    def __init__(self, settings: Settings, databases: Mapping[str, Database] | None = None) -> None:
        """``databases``: one per configured name, instead of a PgDatabase each (tests: MemoryDatabase)."""
        self._settings = settings
        if databases is None:
            self._databases: dict[str, Database] = {name: PgDatabase(name, db)
                                                    for name, db in settings.databases.items()}
        elif set(databases) != set(settings.databases):
            raise ValueError(f"databases {sorted(databases)} are not the configured {sorted(settings.databases)}")
        else:
            self._databases = dict(databases)

    @property
    def settings(self) -> Settings:
        """The whole configuration (executors of approved work read their sections, e.g. [backups])."""
        return self._settings

    @property
    def names(self) -> list[str]:
        return list(self._databases)

    @property
    def default(self) -> str | None:
        return self._settings.default_database

    def get(self, name: str) -> Database:
        try:
            return self._databases[name]
        except KeyError:
            known = ", ".join(self._databases) or "none are configured"
            raise UnknownDatabaseError(f"There is no database named '{name[:80]}'. Configured: {known}.") from None

    def postgres(self, name: str) -> PostgresDatabase:
        """``name`` as a PostgreSQL server: for approved changes, exports, previews, diagnostics, migrations
        and backups. NotPostgresError when it is not one (only tests configure such databases)."""
        db = self.get(name)
        if not isinstance(db, PgDatabase):
            raise NotPostgresError(f"'{name}' is not a PostgreSQL server ({type(db).__name__}), and this needs "
                                   "one: exports, changes, diagnostics, migrations and backups run on PostgreSQL "
                                   "only.")
        return db  # mypy: so PgDatabase is a PostgresDatabase

    async def aclose(self) -> None:
        for db in self._databases.values():
            await db.aclose()
