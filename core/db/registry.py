"""The configured databases by name; pools are created only when a database is first used."""

from __future__ import annotations

from core.config import Settings
from core.db.postgres import PgDatabase
from core.errors import UnknownDatabaseError


class DatabaseRegistry:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._databases = {name: PgDatabase(name, db) for name, db in settings.databases.items()}

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

    def get(self, name: str) -> PgDatabase:
        try:
            return self._databases[name]
        except KeyError:
            known = ", ".join(self._databases) or "none are configured"
            raise UnknownDatabaseError(f"There is no database named '{name[:80]}'. Configured: {known}.") from None

    async def aclose(self) -> None:
        for db in self._databases.values():
            await db.aclose()
