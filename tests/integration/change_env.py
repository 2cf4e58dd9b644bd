"""A database with real roles and grants for the change/approval tests (fixture + builders, no mocks).

Roles are created per test with unique names (``pgbot_t_analyst_<rand>``), the login role (postgres here,
a superuser, but every statement still runs under ``SET LOCAL ROLE``) is granted membership, and everything
is dropped afterwards: owned objects and privileges in the test database, then the roles, then the Redis keys.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from bot.wiring import build_agent
from core import Settings
from core.agent.loop import Agent
from core.approvals.store import RedisApprovalStore
from tests.helpers import settings_for
from tests.services import delete_keys, store_client

ANALYST = "slack:UANALYST"
DBA = "slack:UDBA"
OTHER = "slack:UOTHER"
LEAD = "slack:ULEAD"  # an approver by identity, mapped to the analyst role

SCHEMA_SQL = """
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL DEFAULT 0,
                    created_by text NOT NULL DEFAULT current_user);
INSERT INTO items (id, name, qty, created_by) SELECT g, 'item ' || g, g, 'seed' FROM generate_series(1, 10) g;
CREATE TABLE secrets (id int PRIMARY KEY, secret text NOT NULL);
INSERT INTO secrets VALUES (1, 'launch codes');
CREATE TABLE parents (id int PRIMARY KEY);
CREATE TABLE children (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parents (id));
INSERT INTO parents VALUES (1), (2);
INSERT INTO children VALUES (1, 1);
CREATE TABLE notes (id int PRIMARY KEY, body text);
"""


@dataclass
class ChangeEnv:
    dsn: str
    admin_dsn: str
    redis_url: str
    roles: dict[str, str]
    prefix: str = field(default_factory=lambda: f"pgbot:test:{uuid.uuid4().hex}")
    agents: list[Agent] = field(default_factory=list)

    @property
    def analyst(self) -> str:
        return self.roles["analyst"]

    @property
    def dba(self) -> str:
        return self.roles["dba"]

    def role_map(self) -> dict[str, str]:
        return {ANALYST: self.analyst, DBA: self.dba, OTHER: self.roles["other"], LEAD: self.analyst}

    def settings(self, *, approvers: dict[str, Any] | None = None, llm_url: str | None = None,
                 **db: Any) -> Settings:
        db.setdefault("roles", self.role_map())
        return settings_for(
            self.dsn, llm_url=llm_url, redis_url=self.redis_url,
            approvers=approvers if approvers is not None else {"roles": [self.dba], "users": [LEAD]}, **db,
        )

    def store(self, url: str | None = None) -> RedisApprovalStore:
        return RedisApprovalStore(store_client(url or self.redis_url, timeout_s=1.0), prefix=self.prefix)

    def agent(self, settings: Settings | None = None) -> Agent:
        agent = build_agent(settings or self.settings(), approval_store=self.store(), use_llm=False)
        self.agents.append(agent)
        return agent

    def llm_agent(self, llm_url: str) -> Agent:
        agent = build_agent(self.settings(llm_url=llm_url), approval_store=self.store())
        self.agents.append(agent)
        return agent

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def fetchval(self, sql: str, *args: object) -> object:
        rows = await self.fetch(sql, *args)
        return rows[0][0] if rows else None

    async def audit_events(self, action_id: str) -> list[str]:
        rows = await self.fetch("SELECT event FROM pgbot.audit WHERE action_id = $1 ORDER BY id", action_id)
        return [r["event"] for r in rows]

    async def redis_keys(self) -> list[str]:
        client = aioredis.Redis.from_url(self.redis_url, decode_responses=True)
        try:
            return [k async for k in client.scan_iter(f"{self.prefix}:*")]
        finally:
            await client.aclose()


@pytest.fixture(name="change_env")
async def change_env_fixture(fresh_db: str, pg_admin_dsn: str, redis_url: str) -> AsyncIterator[ChangeEnv]:
    suffix = uuid.uuid4().hex[:8]
    roles = {name: f"pgbot_t_{name}_{suffix}" for name in ("analyst", "dba", "other")}
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        for role in roles.values():
            await admin.execute(f'CREATE ROLE "{role}" NOLOGIN')
            await admin.execute(f'GRANT "{role}" TO CURRENT_USER')  # the bot's login role may SET ROLE to it
    finally:
        await admin.close()
    env = ChangeEnv(dsn=fresh_db, admin_dsn=pg_admin_dsn, redis_url=redis_url, roles=roles)
    conn = await asyncpg.connect(fresh_db)
    try:
        a, d, o = (f'"{roles[n]}"' for n in ("analyst", "dba", "other"))
        await conn.execute(SCHEMA_SQL)
        await conn.execute(f"""
            GRANT SELECT, INSERT, UPDATE, DELETE ON items, parents, children TO {a};
            GRANT SELECT ON items TO {o};
            GRANT ALL ON items, secrets, parents, children, notes TO {d};
            ALTER TABLE notes OWNER TO {a};
            GRANT CREATE ON SCHEMA public TO {a};
        """)
    finally:
        await conn.close()
    try:
        yield env
    finally:
        for agent in env.agents:
            await agent.aclose()
        conn = await asyncpg.connect(fresh_db)
        try:
            await conn.execute("DROP OWNED BY " + ", ".join(f'"{r}"' for r in roles.values()))
        finally:
            await conn.close()
        admin = await asyncpg.connect(pg_admin_dsn)
        try:
            for role in roles.values():
                await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await admin.close()
        await delete_keys(redis_url, f"{env.prefix}:*")
