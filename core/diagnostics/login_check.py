"""What the bot's login role can do beyond the roles chat users are mapped to (``pgbot check-config``).

A mapped person's statements run under ``SET LOCAL ROLE``; whatever escapes the mapped role lands on the login
role and on every role it may become. So the login should be no superuser, hold no role attribute beyond
LOGIN, and be a member of no role that nobody is mapped to and that can do more (write tables, create roles,
or one of the predefined roles that read server files, run programs or signal other sessions). Postgres
answers all of this from its catalog; nothing here is guessed from names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import LiteralString

import asyncpg

from core.db.base import PostgresDatabase

# Predefined roles whose members reach beyond their tables: files, programs, other sessions, every table.
POWERFUL_PREDEFINED = frozenset({
    "pg_execute_server_program", "pg_read_server_files", "pg_write_server_files", "pg_signal_backend",
    "pg_read_all_data", "pg_write_all_data", "pg_create_subscription", "pg_checkpoint", "pg_use_reserved_connections",
})

_ATTRIBUTES: LiteralString = """
SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls
FROM pg_roles r WHERE r.rolname = $1
"""
_MEMBERSHIPS: LiteralString = """
SELECT r.rolname FROM pg_roles r
WHERE r.rolname <> session_user AND pg_has_role(session_user, r.oid, 'MEMBER') ORDER BY r.rolname
"""
# Whether a role can change data or schema: attributes, a write privilege on any table, CREATE in any schema.
_WRITES: LiteralString = r"""
SELECT r.rolsuper OR r.rolcreaterole OR r.rolbypassrls
    OR EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p', 'v', 'f', 'm') AND n.nspname <> 'information_schema'
                 AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'pgbot'
                 AND has_table_privilege(r.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE'))
    OR EXISTS (SELECT 1 FROM pg_namespace n
               WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
                 AND has_schema_privilege(r.oid, n.oid, 'CREATE'))
FROM pg_roles r WHERE r.rolname = $1
"""


@dataclass(frozen=True, slots=True)
class RoleAttributes:
    name: str
    superuser: bool
    extra: tuple[str, ...]  # CREATEROLE, CREATEDB, REPLICATION, BYPASSRLS

    @property
    def powerful(self) -> bool:
        return self.superuser or bool(set(self.extra) - {"CREATEDB"}) or self.name in POWERFUL_PREDEFINED


@dataclass(frozen=True, slots=True)
class LoginReport:
    """The facts check-config turns into warnings; each tuple is empty when all is well."""

    login: RoleAttributes
    stronger_memberships: tuple[str, ...]  # roles the login may become that no one is mapped to, and that do more
    missing_roles: tuple[str, ...]  # mapped roles that do not exist
    unreachable_roles: tuple[str, ...]  # mapped roles the login is no member of (SET ROLE fails)
    powerful_mapped: tuple[str, ...]  # mapped roles that are superuser or hold role attributes
    writing_roles: tuple[str, ...]  # of ``writes_asked``: those that can change data or schema

    def problems(self) -> list[str]:
        """One sentence per unsafe fact, for people."""
        found: list[str] = []
        if self.login.superuser:
            found.append(f"the login role {self.login.name} is a superuser: anything that escapes a mapped role "
                         "(or any statement without a roles table) can do everything, including run programs "
                         "on the server; use a login without SUPERUSER")
        elif self.login.extra:
            found.append(f"the login role {self.login.name} has {', '.join(self.login.extra)}; it needs only LOGIN")
        if self.stronger_memberships:
            found.append(f"the login role {self.login.name} is a member of "
                         f"{', '.join(self.stronger_memberships)}, which no chat user is mapped to and which can "
                         "do more than the mapped roles; revoke that membership")
        if self.powerful_mapped:
            found.append(f"chat users are mapped to {', '.join(self.powerful_mapped)}, which is a superuser or "
                         "holds role attributes (CREATEROLE, BYPASSRLS, REPLICATION)")
        if self.missing_roles:
            found.append(f"mapped role(s) {', '.join(self.missing_roles)} do not exist")
        if self.unreachable_roles:
            found.append(f"the login role {self.login.name} cannot SET ROLE to {', '.join(self.unreachable_roles)} "
                         f"(GRANT {', '.join(self.unreachable_roles)} TO {self.login.name})")
        return found


async def check_login(db: PostgresDatabase, *, mapped: Iterable[str], writes_asked: Iterable[str] = (),
                      role: str | None = None) -> LoginReport:
    """Ask the database what the login role can do compared with the ``mapped`` roles: the main DSN's login,
    or (``role``) the login that ``role_dsns`` gives statements run as that role."""

    async def work(conn: asyncpg.Connection) -> LoginReport:
        return await login_report(conn, mapped=mapped, writes_asked=writes_asked)

    return await db.run(work, role=role, read_only=True)


async def login_report(
    conn: asyncpg.Connection, *, mapped: Iterable[str], writes_asked: Iterable[str] = ()
) -> LoginReport:
    """:func:`check_login` on a connection the caller holds, whose ``session_user`` is the login role (a
    ``SET ROLE`` on it does not change the answer); ``writes_asked`` are roles to test for write rights
    (check-config asks about the one ``"*"`` maps to)."""
    mapped_roles = sorted(set(mapped))
    asked = sorted(set(writes_asked))
    login_name = str(await conn.fetchval("SELECT session_user"))
    login = await _attributes(conn, login_name)
    assert login is not None  # session_user always exists
    members = [str(r["rolname"]) for r in await conn.fetch(_MEMBERSHIPS)]
    stronger = []
    if not login.superuser:  # a superuser is a member of every role: the first warning says it all
        for name in members:
            if name in mapped_roles:
                continue
            attrs = await _attributes(conn, name)
            if attrs is not None and (attrs.powerful or await conn.fetchval(_WRITES, name)):
                stronger.append(name)
    missing, powerful = [], []
    for name in mapped_roles:
        attrs = await _attributes(conn, name)
        if attrs is None:
            missing.append(name)
        elif attrs.powerful:
            powerful.append(name)
    unreachable = [name for name in mapped_roles
                   if name not in missing and name != login_name and name not in members and not login.superuser]
    writing = [name for name in asked if name not in missing and await conn.fetchval(_WRITES, name)]
    return LoginReport(login=login, stronger_memberships=tuple(stronger), missing_roles=tuple(missing),
                       unreachable_roles=tuple(unreachable), powerful_mapped=tuple(powerful),
                       writing_roles=tuple(writing))


async def _attributes(conn: asyncpg.Connection, name: str) -> RoleAttributes | None:
    row = await conn.fetchrow(_ATTRIBUTES, name)
    if row is None:
        return None
    extra = tuple(label for label, on in (("CREATEROLE", row["rolcreaterole"]), ("CREATEDB", row["rolcreatedb"]),
                                          ("REPLICATION", row["rolreplication"]), ("BYPASSRLS", row["rolbypassrls"]))
                  if on)
    return RoleAttributes(name=name, superuser=bool(row["rolsuper"]), extra=extra)
