"""One login per mapped role (role_dsns), and what a login could reach beyond the mapped roles (issue 13)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from core import ReplyKind
from core.db.postgres import PgDatabase
from core.diagnostics.login_check import check_login
from tests.helpers import final_reply, message
from tests.integration.change_env import ChangeEnv, change_env_fixture  # noqa: F401 - fixture

PASSWORD = "pw-SECRET-4f1e"  # never in a log line, reply or error (trust auth ignores it)


@pytest.fixture
async def analyst_login(change_env: ChangeEnv) -> AsyncIterator[str]:
    """A LOGIN role that is a member of the analyst role only; its DSN carries a password."""
    name = f"pgbot_t_login_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(change_env.admin_dsn)
    try:
        await admin.execute(f'CREATE ROLE "{name}" LOGIN; GRANT "{change_env.analyst}" TO "{name}"')
        parts = urlsplit(change_env.dsn)
        netloc = f"{name}:{PASSWORD}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        yield urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    finally:
        await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        await admin.close()


async def test_a_role_with_its_own_login_cannot_escape_even_when_a_helper_is_allowed(
        change_env: ChangeEnv, analyst_login: str, capsys: pytest.CaptureFixture[str]) -> None:
    env = change_env
    conn = await asyncpg.connect(env.dsn)
    try:
        await conn.execute("CREATE FUNCTION public.exec_sql(q text) RETURNS text LANGUAGE plpgsql AS $$ "
                           "DECLARE r text; BEGIN EXECUTE q INTO r; RETURN r; END $$")
    finally:
        await conn.close()
    settings = env.settings(role_dsns={env.analyst: analyst_login}, allowed_functions=["public.exec_sql"])
    agent = env.agent(settings)
    who = await final_reply(agent, message("/sql SELECT session_user::text AS login, current_user::text AS who",
                                           user="UANALYST"))
    assert who.table is not None
    login, role = who.table.rows[0]
    assert login.startswith("pgbot_t_login_") and role == env.analyst
    dba = await final_reply(agent, message("/sql SELECT session_user::text AS login", user="UDBA"))
    main_login = await env.fetchval("SELECT session_user::text")
    assert dba.table is not None and dba.table.rows == ((main_login,),)  # no role_dsns entry: the main login
    # Postgres itself refuses the switch: the analyst's login is no member of the DBA role.
    escape = await final_reply(agent, message(
        f"/sql SELECT public.exec_sql('SELECT set_config(''role'', ''{env.dba}'', false)')", user="UANALYST"))
    assert escape.kind is ReplyKind.ERROR and "permission denied to set role" in escape.text
    for reply in (who, dba, escape):
        assert PASSWORD not in reply.text
    assert PASSWORD not in capsys.readouterr().out


async def test_check_login_names_a_superuser_and_roles_no_chat_user_is_mapped_to(
        change_env: ChangeEnv, analyst_login: str) -> None:
    env = change_env
    main = PgDatabase("shop", env.settings().databases["shop"])
    try:
        report = await check_login(main, mapped=[env.analyst])
    finally:
        await main.aclose()
    assert report.login.superuser and any("superuser" in line for line in report.problems())

    per_role = PgDatabase("shop", env.settings(role_dsns={env.analyst: analyst_login}).databases["shop"])
    try:  # the login of the analyst's role_dsns entry, whatever role the statement is SET to
        own = await check_login(per_role, mapped=[env.analyst], role=env.analyst)
        wider = await check_login(per_role, mapped=[env.roles["other"]], role=env.analyst)
    finally:
        await per_role.aclose()
    assert not own.login.superuser and own.stronger_memberships == () and own.problems() == []
    assert wider.stronger_memberships == (env.analyst,)  # it writes items, and no one is mapped to it here
    assert any(env.analyst in line for line in wider.problems())
    assert all(PASSWORD not in line for line in wider.problems())
