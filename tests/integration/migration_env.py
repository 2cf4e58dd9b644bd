"""A change environment (real roles, Postgres, Redis) with an ``orders`` table and a migrations folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.wiring import build_agent
from core.agent.loop import Agent
from core.config import Settings
from tests.integration.change_env import ChangeEnv, change_env_fixture  # noqa: F401 - fixture

ORDERS_SQL = """
CREATE TYPE order_state AS ENUM ('new', 'paid');
CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, total numeric(10,2) NOT NULL, note text);
INSERT INTO orders SELECT g, CASE WHEN g % 3 = 0 THEN 'shipped' ELSE 'pending' END, g * 1.5, 'n' || g
  FROM generate_series(1, 50) g;
"""


@dataclass
class MigrationEnv:
    env: ChangeEnv
    folder: Path

    def settings(self, *, llm_url: str | None = None, migrations: bool = True) -> Settings:
        extra: dict[str, Any] = {"migrations_dir": str(self.folder)} if migrations else {}
        return self.env.settings(llm_url=llm_url, **extra)

    def agent(self, llm_url: str | None = None, *, migrations: bool = True) -> Agent:
        agent = build_agent(self.settings(llm_url=llm_url, migrations=migrations), approval_store=self.env.store(),
                            use_llm=llm_url is not None)
        self.env.agents.append(agent)
        return agent

    def write(self, label: str, up: str, down: str | None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{label}.up.sql").write_text(up, encoding="utf-8")
        if down is not None:
            (self.folder / f"{label}.down.sql").write_text(down, encoding="utf-8")

    def proposed(self) -> list[str]:
        root = self.folder / ".proposed"
        return sorted(str(p.relative_to(root)) for p in root.rglob("*.sql")) if root.exists() else []

    def folder_files(self) -> list[str]:
        return sorted(p.name for p in self.folder.glob("*.sql")) if self.folder.exists() else []

    async def columns(self, table: str = "orders") -> list[str]:
        rows = await self.env.fetch("SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
                                    "AND NOT attisdropped ORDER BY attnum", table)
        return [r["attname"] for r in rows]

    async def recorded(self) -> list[tuple[int, str, str]]:
        if await self.env.fetchval("SELECT to_regclass('pgbot.migrations')") is None:
            return []
        rows = await self.env.fetch("SELECT version, name, applied_by FROM pgbot.migrations ORDER BY version")
        return [(r["version"], r["name"], r["applied_by"]) for r in rows]


@pytest.fixture(name="migration_env")
async def migration_env_fixture(change_env: ChangeEnv, tmp_path: Path) -> AsyncIterator[MigrationEnv]:
    conn = await asyncpg.connect(change_env.dsn)
    try:  # the analyst owns orders, so migrations run as the analyst may alter it
        await conn.execute(ORDERS_SQL + f'ALTER TABLE orders OWNER TO "{change_env.analyst}";'
                           f'ALTER TYPE order_state OWNER TO "{change_env.analyst}";')
    finally:
        await conn.close()
    yield MigrationEnv(env=change_env, folder=tmp_path / "migrations" / "shop")
