"""What the bot's login role could do beyond the roles mapped to chat users (for ``pgbot check-config``).

Every statement runs under ``SET LOCAL ROLE <mapped role>``, and pgbot checks the session's identity before
and after each one; but whatever escapes those checks runs with the *login's* reach: as a superuser, any role
and the server's files; as a member of a role no chat user is mapped to, that role's rights. So the safe
production setup is a login that is neither (or one login per mapped role, ``role_dsns``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from core.db.postgres import PgDatabase

# Predefined roles that reach past the database: server files and programs, other sessions, every table.
POWERFUL_PREDEFINED = frozenset({
    "pg_read_server_files", "pg_write_server_files", "pg_execute_server_program", "pg_signal_backend",
    "pg_read_all_data", "pg_write_all_data", "pg_checkpoint", "pg_use_reserved_connections", "pg_create_subscription",
})

# Every role the login may use (membership, transitively), with the attributes that make it powerful.
_MEMBERSHIP_SQL = """
WITH RECURSIVE reach(oid) AS (
    SELECT oid FROM pg_roles WHERE rolname = session_user
    UNION
    SELECT m.roleid FROM pg_auth_members m JOIN reach r ON m.member = r.oid
)
SELECT r.rolname AS name, r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls OR r.rolreplication
       AS powerful_attributes
FROM reach JOIN pg_roles r ON r.oid = reach.oid
WHERE r.rolname <> session_user
"""
# Roles each mapped role may use itself: the login being a member of those is no extra reach.
_MAPPED_REACH_SQL = """
WITH RECURSIVE reach(oid) AS (
    SELECT oid FROM pg_roles WHERE rolname = ANY($1::text[])
    UNION
    SELECT m.roleid FROM pg_auth_members m JOIN reach r ON m.member = r.oid
)
SELECT r.rolname FROM reach JOIN pg_roles r ON r.oid = reach.oid
"""


@dataclass(frozen=True, slots=True)
class LoginReach:
    """A login role's reach compared with the mapped roles."""

    login: str
    superuser: bool
    broader_roles: tuple[str, ...]  # roles the login may use that no mapped role reaches
    powerful_roles: tuple[str, ...]  # of those, the ones with superuser-like attributes or server-level rights

    @property
    def exceeds_mapped_roles(self) -> bool:
        """True when something that escapes the mapped role lands with more rights than any chat user has."""
        return self.superuser or bool(self.broader_roles)

    def problems(self) -> list[str]:
        """One line per reason, for check-config (no secrets: role names only)."""
        found: list[str] = []
        if self.superuser:
            found.append(f"the login role {self.login} is a superuser: SQL that escapes the mapped role could do "
                         "anything on the server. Use a login that is not, or one login per role (role_dsns).")
        if self.broader_roles:
            powerful = f" (powerful: {', '.join(self.powerful_roles)})" if self.powerful_roles else ""
            found.append(f"the login role {self.login} is a member of {', '.join(self.broader_roles)}{powerful}, "
                         "which no chat user is mapped to: SQL that escapes the mapped role would gain them. "
                         "Grant the login only the mapped roles, or use role_dsns.")
        return found


async def login_reach(db: PgDatabase, *, mapped_roles: Iterable[str], role: str | None = None) -> LoginReach:
    """The reach of the login that statements as ``role`` use (the main DSN's when ``role`` is None or has
    no ``role_dsns`` entry), against ``mapped_roles`` (usually the values of ``[databases.NAME.roles]``)."""
    mapped = sorted({r for r in mapped_roles if r and r != "none"})

    async def work(conn: asyncpg.Connection) -> LoginReach:
        login = str(await conn.fetchval("SELECT session_user"))
        superuser = bool(await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = session_user"))
        members = await conn.fetch(_MEMBERSHIP_SQL)
        covered = {str(r[0]) for r in await conn.fetch(_MAPPED_REACH_SQL, mapped)} | set(mapped)
        broader = sorted(str(r["name"]) for r in members if r["name"] not in covered)
        powerful = sorted(name for name in broader if name in POWERFUL_PREDEFINED
                          or any(r["name"] == name and r["powerful_attributes"] for r in members))
        return LoginReach(login=login, superuser=superuser, broader_roles=tuple(broader),
                          powerful_roles=tuple(powerful))

    return await db.run(work, role=role, read_only=True)
