"""Identity → role mapping against real Postgres roles and grants: Postgres enforces what each person sees."""

from __future__ import annotations

import pytest

from core import ReplyKind
from core.config import DatabaseSettings
from core.errors import AccessDeniedError
from core.permissions import Actor, may_approve, resolve_role
from tests import llm_server as llm
from tests.helpers import final_reply, message
from tests.integration.change_env import ANALYST, DBA, ChangeEnv, change_env_fixture  # noqa: F401 - fixture


async def test_analyst_cannot_read_a_table_without_a_grant_though_the_login_role_can(change_env: ChangeEnv) -> None:
    env = change_env
    assert await env.fetchval("SELECT secret FROM secrets") == "launch codes"  # the login role reads it
    agent = env.agent()
    refused = await final_reply(agent, message("/sql SELECT secret FROM secrets", user="UANALYST"))
    assert refused.kind is ReplyKind.ERROR
    assert "permission denied for table secrets" in refused.text
    assert "launch codes" not in refused.text and refused.table is None

    allowed = await final_reply(agent, message("/sql SELECT count(*) AS n FROM items", user="UANALYST"))
    assert allowed.kind is ReplyKind.RESULT and allowed.table is not None
    assert allowed.table.rows == ((10,),)

    dba = await final_reply(agent, message("/sql SELECT secret FROM secrets", user="UDBA"))
    assert dba.kind is ReplyKind.RESULT and dba.table is not None and dba.table.rows == (("launch codes",),)


async def test_every_statement_runs_as_the_mapped_role(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    reply = await final_reply(agent, message("/sql SELECT current_user AS who, session_user AS login",
                                             user="UANALYST"))
    assert reply.table is not None
    who, login = reply.table.rows[0]
    assert who == env.analyst
    assert login != env.analyst  # the bot's login role switched with SET LOCAL ROLE
    tables = await final_reply(agent, message("/tables", user="UANALYST"))
    assert tables.table is not None
    names = {row[0] for row in tables.table.rows}
    assert "public.items" in names and "public.secrets" not in names  # the catalog shows only what it may read


async def test_run_query_tool_from_the_model_is_refused_by_postgres_for_the_analyst(
        change_env: ChangeEnv, llm_server: llm.ScriptedLlmServer) -> None:
    env = change_env
    llm_server.script(llm.tool_call("run_query", {"sql": "SELECT secret FROM secrets"}))
    agent = env.llm_agent(llm_server.base_url)
    reply = await final_reply(agent, message("what is the secret?", user="UANALYST"))
    assert reply.kind is ReplyKind.ERROR
    assert "permission denied for table secrets" in reply.text
    assert "launch codes" not in reply.text
    assert len(llm_server.requests) == 1  # the model was not given the chance to see any row


async def test_unmapped_user_gets_no_access_with_a_clear_message(change_env: ChangeEnv) -> None:
    agent = change_env.agent()
    reply = await final_reply(agent, message("/sql SELECT 1", user="USTRANGER"))
    assert reply.kind is ReplyKind.ERROR
    assert "slack:USTRANGER" in reply.text and "not mapped" in reply.text


async def test_star_default_maps_unknown_users_and_explicit_none_still_denies(change_env: ChangeEnv) -> None:
    env = change_env
    roles = {**env.role_map(), "*": env.roles["other"], "slack:UBANNED": "none"}
    agent = env.agent(env.settings(roles=roles))
    reply = await final_reply(agent, message("/sql SELECT current_user AS who", user="USTRANGER"))
    assert reply.table is not None and reply.table.rows == ((env.roles["other"],),)
    banned = await final_reply(agent, message("/sql SELECT 1", user="UBANNED"))
    assert banned.kind is ReplyKind.ERROR and "not mapped" in banned.text


def test_identities_match_exactly() -> None:
    settings = DatabaseSettings(dsn="postgresql://x@h/db", roles={"slack:U1": "analyst"})
    assert resolve_role(database="db", settings=settings, identity="slack:U1").role == "analyst"
    for other in ("slack:u1", "discord:U1", "slack:U1 ", "U1"):
        with pytest.raises(AccessDeniedError):
            resolve_role(database="db", settings=settings, identity=other)
    unmapped = DatabaseSettings(dsn="postgresql://x@h/db")
    assert resolve_role(database="db", settings=unmapped, identity="terminal:me").role is None


def test_approver_rules() -> None:
    settings = DatabaseSettings(dsn="postgresql://x@h/db", roles={ANALYST: "analyst", DBA: "dba"},
                                approvers={"roles": ["dba"], "users": ["slack:ULEAD"]})
    dba = Actor(identity=DBA, role="dba", database="db")
    analyst = Actor(identity=ANALYST, role="analyst", database="db")
    lead = Actor(identity="slack:ULEAD", role=None, database="db")
    assert may_approve(settings=settings, approver=dba, requested_by=ANALYST) is None
    assert may_approve(settings=settings, approver=lead, requested_by=ANALYST) is None
    assert "not an approver" in (may_approve(settings=settings, approver=analyst, requested_by=DBA) or "")
    assert "self-approval is off" in (may_approve(settings=settings, approver=dba, requested_by=DBA) or "")
    settings.approvers.allow_self_approval = True
    assert may_approve(settings=settings, approver=dba, requested_by=DBA) is None


async def test_describe_shows_nothing_of_a_table_the_role_cannot_read(change_env: ChangeEnv) -> None:
    """/describe (and the model's describe_table) checks privileges as the mapped role: a table it cannot read
    reads as not found, with none of its columns; a column grant shows only the granted columns."""
    env = change_env
    await env.fetch("CREATE TABLE payroll (who text, salary int, bank_account text)")
    await env.fetch(f'GRANT SELECT (who) ON payroll TO "{env.analyst}"')
    agent = env.agent()
    refused = await final_reply(agent, message("/describe secrets", user="UANALYST"))
    assert refused.kind is ReplyKind.ERROR and "No table or view named 'secrets' is visible" in refused.text
    assert "secret" not in refused.text.replace("'secrets'", "") and refused.table is None
    partial = await final_reply(agent, message("/describe payroll", user="UANALYST"))
    assert partial.kind is ReplyKind.RESULT and partial.text.endswith("Columns:\n  who text")
    assert "salary" not in partial.text and "bank_account" not in partial.text
    whole = await final_reply(agent, message("/describe secrets", user="UDBA"))
    assert "Columns:\n  id integer NOT NULL\n  secret text NOT NULL" in whole.text and "PRIMARY KEY" in whole.text
