"""Changes behind Approve/Reject against real Postgres roles and grants and the real Redis.

Every refusal is checked twice: the reply says why, and the database shows nothing changed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import secrets
import time

import pytest
import redis.asyncio as aioredis

from bot.audit_command import audit_main, format_rows, parse_since
from core import Reply, ReplyKind
from core.agent.loop import Agent
from core.approvals.audit import AuditLog, redact_sql
from core.approvals.decisions import Approvals
from core.approvals.pending import PendingAction, sql_hash
from core.approvals.store import ActionStatus
from core.errors import PgbotError
from core.llm.base import ReadScope
from tests import llm_server as llm
from tests.helpers import final_reply, message
from tests.integration.change_env import ANALYST, DBA, LEAD, OTHER, ChangeEnv, change_env_fixture  # noqa: F401 - fixture

DELETE_3 = "DELETE FROM items WHERE id <= 3"


async def propose(agent: Agent, sql: str, *, user: str = "UANALYST", thread: str = "t-change") -> Reply:
    reply = await final_reply(agent, message(f"/sql {sql}", user=user, thread=thread))
    assert reply.kind is ReplyKind.APPROVAL, reply.text
    assert reply.approval is not None
    return reply


def action_id(reply: Reply) -> str:
    assert reply.approval is not None
    return reply.approval.action_id


async def item_count(env: ChangeEnv) -> int:
    count = await env.fetchval("SELECT count(*) FROM items")
    assert isinstance(count, int)
    return count


async def test_delete_runs_once_under_twenty_concurrent_approvals(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    reply = await propose(agent, DELETE_3)
    assert reply.approval is not None
    assert reply.approval.sql == DELETE_3 and reply.sql == (DELETE_3,)
    assert reply.approval.sql_hash == sql_hash(DELETE_3)
    assert reply.approval.role == env.analyst and reply.approval.requested_by == ANALYST
    assert "would affect 3 rows" in reply.text and "rolled back" in reply.text
    assert reply.table is not None and sorted(r[0] for r in reply.table.rows) == [1, 2, 3]
    assert await item_count(env) == 10  # the preview was rolled back

    outcomes = await asyncio.gather(*(agent.decide(action_id=action_id(reply), decided_by=DBA, approve=True)
                                      for _ in range(20)))
    executed = [o for o in outcomes if o.kind is ReplyKind.OUTCOME]
    assert len(executed) == 1, [o.text for o in outcomes]
    assert "executed" in executed[0].text and "DELETE 3" in executed[0].text
    late = [o for o in outcomes if o.kind is ReplyKind.ERROR]
    assert len(late) == 19 and all("already approved by slack:UDBA" in o.text for o in late)
    assert await item_count(env) == 7

    rows = await env.fetch("SELECT event, decided_by, role, rows_affected, result, sql, sql_hash, duration_ms "
                           "FROM pgbot.audit WHERE action_id = $1 ORDER BY id", action_id(reply))
    assert [r["event"] for r in rows] == ["requested", "approved", "executed"]
    done = rows[-1]
    assert (done["decided_by"], done["role"], done["rows_affected"], done["result"]) == (
        DBA, env.analyst, 3, "DELETE 3")
    assert done["sql"] == DELETE_3 and done["sql_hash"] == sql_hash(DELETE_3) and done["duration_ms"] >= 0

    again = await agent.decide(action_id=action_id(reply), decided_by=LEAD, approve=True)
    assert again.kind is ReplyKind.ERROR and "executed: DELETE 3" in again.text
    thread_key = message("", thread="t-change").thread_key
    history = await agent.store.history(thread_key, viewer=ReadScope(database="shop", role=env.analyst))
    assert any("approved by slack:UDBA and executed" in (t.content or "") for t in history)
    # The outcome was produced under the requester's role: another role's turn gets a marker instead.
    other = await agent.store.history(thread_key, viewer=ReadScope(database="shop", role=env.dba))
    assert not any("executed" in (t.content or "") for t in other if t.role == "assistant")
    assert any("pressed Approve" in (t.content or "") for t in other)


async def test_the_change_runs_as_the_requesters_role(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    reply = await propose(agent, "INSERT INTO items (id, name) VALUES (100, 'new')")
    assert "would affect 1 row " in reply.text
    assert reply.table is not None and reply.table.columns == ("id", "name", "qty", "created_by")
    assert reply.table.rows == ((100, "new", 0, env.analyst),)
    assert await env.fetchval("SELECT count(*) FROM items WHERE id = 100") == 0
    outcome = await agent.decide(action_id=action_id(reply), decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.OUTCOME, outcome.text
    assert await env.fetchval("SELECT created_by FROM items WHERE id = 100") == env.analyst  # not the dba


async def test_update_preview_shows_rows_before_and_after(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    reply = await propose(agent, "UPDATE items SET qty = qty * 10 WHERE id IN (2, 4)")
    assert "would affect 2 rows" in reply.text
    assert reply.table is not None and sorted(r[2] for r in reply.table.rows) == [20, 40]
    assert await env.fetchval("SELECT qty FROM items WHERE id = 2") == 2
    assert reply.approval is not None and reply.approval.summary == "UPDATE: 2 rows on items"
    # People get the question and one line per row key with only the changed column (the model gets rows).
    assert reply.approval.question == "Approve: UPDATE 2 rows in items?"
    assert sorted(reply.approval.diff) == ["id 2: qty 2 → 20", "id 4: qty 4 → 40"]
    assert "Before" not in reply.text and "\t" not in reply.text


async def test_approval_by_someone_not_allowed_is_refused(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    reply = await propose(agent, DELETE_3)
    for who in (OTHER, "slack:USTRANGER"):
        refused = await agent.decide(action_id=action_id(reply), decided_by=who, approve=True)
        assert refused.kind is ReplyKind.ERROR
        assert "not an approver" in refused.text and "Nothing was run" in refused.text
    assert await item_count(env) == 10
    assert await env.audit_events(action_id(reply)) == ["requested"]
    # The refused clicks consumed nothing: an approver can still approve.
    ok = await agent.decide(action_id=action_id(reply), decided_by=LEAD, approve=True)
    assert ok.kind is ReplyKind.OUTCOME and await item_count(env) == 7


async def test_self_approval_is_off_by_default_and_a_switch(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    reply = await propose(agent, DELETE_3, user="ULEAD")  # LEAD is an approver, asking for their own change
    refused = await agent.decide(action_id=action_id(reply), decided_by=LEAD, approve=True)
    assert refused.kind is ReplyKind.ERROR and "self-approval is off" in refused.text
    assert await item_count(env) == 10

    lenient = env.agent(env.settings(approvers={"users": [LEAD], "allow_self_approval": True}))
    own = await propose(lenient, "DELETE FROM items WHERE id = 10", user="ULEAD")
    ok = await lenient.decide(action_id=action_id(own), decided_by=LEAD, approve=True)
    assert ok.kind is ReplyKind.OUTCOME and await item_count(env) == 9


async def test_rejected_action_cannot_run_and_the_requester_may_withdraw(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    reply = await propose(agent, DELETE_3)
    rejected = await agent.decide(action_id=action_id(reply), decided_by=DBA, approve=False)
    assert rejected.kind is ReplyKind.OUTCOME and "rejected by slack:UDBA" in rejected.text
    click = await agent.decide(action_id=action_id(reply), decided_by=LEAD, approve=True)
    assert click.kind is ReplyKind.ERROR and "already rejected by slack:UDBA" in click.text
    assert await item_count(env) == 10
    assert await env.audit_events(action_id(reply)) == ["requested", "rejected"]

    mine = await propose(agent, DELETE_3)
    withdrawn = await agent.decide(action_id=action_id(mine), decided_by=ANALYST, approve=False)
    assert withdrawn.kind is ReplyKind.OUTCOME
    stranger = await propose(agent, DELETE_3)
    refused = await agent.decide(action_id=action_id(stranger), decided_by=OTHER, approve=False)
    assert refused.kind is ReplyKind.ERROR and "cannot reject" in refused.text


async def test_expired_action_is_refused_and_audited_once(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    reply = await propose(agent, DELETE_3)
    assert agent.approvals is not None
    later = [time.time() + env.settings().approvals.expiry_s + 5]
    agent.approvals = Approvals(settings=agent.settings, databases=agent.databases, store=env.store(),
                                audit=AuditLog(agent.databases), context=agent.store, clock=lambda: later[0])
    first = await agent.decide(action_id=action_id(reply), decided_by=DBA, approve=True)
    assert first.kind is ReplyKind.ERROR and "expired" in first.text and "nothing was run" in first.text
    second = await agent.decide(action_id=action_id(reply), decided_by=DBA, approve=True)
    assert second.kind is ReplyKind.ERROR and "expired without a decision" in second.text
    assert await item_count(env) == 10
    assert await env.audit_events(action_id(reply)) == ["requested", "expired"]


async def test_forged_and_unknown_ids_are_refused(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    await propose(agent, DELETE_3)
    for forged in (secrets.token_urlsafe(16), "../../etc", "", "x" * 500, "pgbot:action:*"):
        reply = await agent.decide(action_id=forged, decided_by=DBA, approve=True)
        assert reply.kind is ReplyKind.ERROR and "Unknown or expired action" in reply.text
    assert await item_count(env) == 10


async def tamper(env: ChangeEnv, action: str, **changes: object) -> None:
    client = aioredis.Redis.from_url(env.redis_url, decode_responses=True)
    try:
        key = env.store().action_key(action)
        data = json.loads(await client.get(key))
        data.update(changes)
        assert await client.set(key, json.dumps(data), keepttl=True, xx=True)
    finally:
        await client.aclose()


@pytest.mark.parametrize("changes", [
    {"sql": "DELETE FROM items"},  # the SQL altered, the hash left alone
    {"sql": "DELETE FROM items", "sql_hash": sql_hash("DELETE FROM items")},  # both altered: Postgres knows
    {"role": "postgres"},  # run it as someone more powerful
    {"requested_by": LEAD},  # someone else's request (same role): only the audit record tells
])
async def test_sql_altered_in_the_store_after_it_was_shown_is_refused(
        change_env: ChangeEnv, changes: dict[str, object]) -> None:
    env = change_env
    agent = env.agent()
    reply = await propose(agent, DELETE_3)
    await tamper(env, action_id(reply), **changes)
    refused = await agent.decide(action_id=action_id(reply), decided_by=DBA, approve=True)
    assert refused.kind is ReplyKind.ERROR
    assert "not the SQL that was shown" in refused.text and "Nothing was run" in refused.text
    assert await item_count(env) == 10
    assert await env.audit_events(action_id(reply)) == ["requested", "failed"]
    again = await agent.decide(action_id=action_id(reply), decided_by=DBA, approve=True)
    assert again.kind is ReplyKind.ERROR and "already failed" in again.text and await item_count(env) == 10


async def test_unreadable_stored_action_is_refused(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    reply = await propose(agent, DELETE_3)
    client = aioredis.Redis.from_url(env.redis_url, decode_responses=True)
    try:
        await client.set(env.store().action_key(action_id(reply)), "{garbage", keepttl=True)
    finally:
        await client.aclose()
    refused = await agent.decide(action_id=action_id(reply), decided_by=DBA, approve=True)
    assert refused.kind is ReplyKind.ERROR and "not the SQL that was shown" in refused.text
    assert await item_count(env) == 10


async def test_redis_down_at_decision_time_fails_closed_and_the_action_survives(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    reply = await propose(agent, DELETE_3)
    live = agent.approvals
    dead_store = env.store("redis://127.0.0.1:9/0")
    agent.approvals = Approvals(settings=agent.settings, databases=agent.databases, store=dead_store,
                                audit=AuditLog(agent.databases), context=agent.store)
    down = await asyncio.gather(*(agent.decide(action_id=action_id(reply), decided_by=DBA, approve=True)
                                  for _ in range(3)))
    await dead_store.aclose()
    for outcome in down:
        assert outcome.kind is ReplyKind.ERROR
        assert "cannot reach its approval store (Redis)" in outcome.text and "nothing was run" in outcome.text
    assert await item_count(env) == 10
    assert await env.audit_events(action_id(reply)) == ["requested"]
    agent.approvals = live  # Redis is back: the action survived and runs exactly once
    back = await agent.decide(action_id=action_id(reply), decided_by=DBA, approve=True)
    assert back.kind is ReplyKind.OUTCOME and await item_count(env) == 7


async def test_a_preview_that_would_run_forever_times_out_and_offers_nothing(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent(env.settings(statement_timeout_ms=300))
    started = time.monotonic()
    reply = await final_reply(agent, message("/sql UPDATE items SET qty = qty WHERE pg_sleep(10) IS NOT NULL",
                                             user="UANALYST"))
    assert time.monotonic() - started < 5
    assert reply.kind is ReplyKind.ERROR and reply.approval is None
    assert "preview of this change failed" in reply.text and "statement timeout" in reply.text
    assert await env.redis_keys() == []
    if await env.fetchval("SELECT to_regclass('pgbot.audit')") is not None:
        assert await env.fetchval("SELECT count(*) FROM pgbot.audit WHERE event = 'requested'") == 0


async def test_preview_failures_are_shown_plainly_and_offer_no_approval(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    denied = await final_reply(agent, message("/sql UPDATE secrets SET secret = 'x'", user="UANALYST"))
    assert denied.kind is ReplyKind.ERROR and denied.approval is None
    assert "permission denied for table secrets" in denied.text
    constraint = await final_reply(agent, message("/sql DELETE FROM parents WHERE id = 1", user="UANALYST"))
    assert constraint.kind is ReplyKind.ERROR and constraint.approval is None
    assert "violates foreign key constraint" in constraint.text
    typo = await final_reply(agent, message("/sql DELETE FROM itemz WHERE id = 1", user="UANALYST"))
    assert typo.kind is ReplyKind.ERROR and 'relation "itemz" does not exist' in typo.text
    unmapped = await final_reply(agent, message(f"/sql {DELETE_3}", user="USTRANGER"))
    assert unmapped.kind is ReplyKind.ERROR and "not mapped" in unmapped.text
    assert await env.redis_keys() == []
    assert await item_count(env) == 10
    assert await env.fetchval("SELECT secret FROM secrets") == "launch codes"


async def test_execution_failure_is_reported_audited_and_final(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    reply = await propose(agent, DELETE_3)
    conn_sql = f'REVOKE DELETE ON items FROM "{env.analyst}"'  # the grant goes away before the click
    await env.fetch(conn_sql)
    failed = await agent.decide(action_id=action_id(reply), decided_by=DBA, approve=True)
    assert failed.kind is ReplyKind.ERROR
    assert "failed" in failed.text and "permission denied for table items" in failed.text
    assert "rolled back" in failed.text
    assert await item_count(env) == 10
    assert await env.audit_events(action_id(reply)) == ["requested", "approved", "failed"]
    again = await agent.decide(action_id=action_id(reply), decided_by=DBA, approve=True)
    assert "already failed" in again.text


async def test_ddl_preview_names_objects_and_lock_and_runs_only_when_approved(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    reply = await propose(agent, "ALTER TABLE notes ADD COLUMN author text")
    assert "ACCESS EXCLUSIVE" in reply.text and "notes" in reply.text and "Not run in the preview" in reply.text
    assert reply.approval is not None and reply.approval.kind == "ddl"
    columns = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes'"
    assert await env.fetchval(columns) == 2
    ok = await agent.decide(action_id=action_id(reply), decided_by=DBA, approve=True)
    assert ok.kind is ReplyKind.OUTCOME and "ALTER TABLE" in ok.text
    assert await env.fetchval(columns) == 3

    concurrent = await propose(agent, "CREATE INDEX CONCURRENTLY notes_body_idx ON notes (body)")
    assert "cannot run inside a transaction" in concurrent.text
    built = await agent.decide(action_id=action_id(concurrent), decided_by=DBA, approve=True)
    assert built.kind is ReplyKind.OUTCOME, built.text
    assert await env.fetchval("SELECT indisvalid FROM pg_index WHERE indexrelid = 'notes_body_idx'::regclass")
    assert await env.audit_events(action_id(concurrent)) == ["requested", "approved", "executed"]

    not_owner = await propose(agent, "ALTER TABLE items ADD COLUMN x int")
    refused = await agent.decide(action_id=action_id(not_owner), decided_by=DBA, approve=True)
    assert refused.kind is ReplyKind.ERROR and "must be owner of table items" in refused.text


async def test_model_dml_through_run_query_is_held_and_nothing_changes_until_decided(
        change_env: ChangeEnv, llm_server: llm.ScriptedLlmServer) -> None:
    env = change_env
    llm_server.script(llm.tool_call("run_query", {"sql": DELETE_3}))
    agent = env.llm_agent(llm_server.base_url)
    reply = await final_reply(agent, message("delete items 1 to 3", user="UANALYST"))
    assert reply.kind is ReplyKind.APPROVAL and reply.approval is not None and reply.approval.sql == DELETE_3
    # The model is told it was held (ToolOutput.text); people see the card's question.
    assert reply.approval.question == "Approve: DELETE 3 rows from items?" and await item_count(env) == 10
    assert await env.redis_keys() != []  # stored like any proposal
    rejected = await agent.decide(action_id=action_id(reply), decided_by=DBA, approve=False)
    assert rejected.kind is ReplyKind.OUTCOME and await item_count(env) == 10
    assert await env.audit_events(action_id(reply)) == ["requested", "rejected"]


async def test_single_user_rule_is_for_the_terminal_only(change_env: ChangeEnv) -> None:
    """No roles, no approvers (the shipped defaults once were): in chat nobody approves, not even a stranger
    approving a stranger's change; the card says how to name approvers. The terminal's user still approves."""
    env = change_env
    agent = env.agent(env.settings(roles=None, approvers={}))
    reply = await propose(agent, "DELETE FROM items WHERE id = 1", user="USOLO")
    assert reply.approval is not None and reply.approval.role is None
    assert any("[databases.shop.approvers]" in note for note in reply.approval.notes)
    for clicker in ("slack:USOLO", "slack:USTRANGER", "discord:80351110224678912"):
        refused = await agent.decide(action_id=action_id(reply), decided_by=clicker, approve=True)
        assert refused.kind is ReplyKind.ERROR and "no approvers are configured" in refused.text, refused.text
    assert await item_count(env) == 10

    mine = await final_reply(agent, message("/sql DELETE FROM items WHERE id = 1", user="alice",
                                            platform="terminal", thread="t-term"))
    assert mine.approval is not None and mine.approval.notes == ()
    ok = await agent.decide(action_id=action_id(mine), decided_by="terminal:alice", approve=True)
    assert ok.kind is ReplyKind.OUTCOME and "login role" in ok.text and await item_count(env) == 9


async def test_audit_command_prints_rows(change_env: ChangeEnv, capsys: pytest.CaptureFixture[str]) -> None:
    env = change_env
    agent = env.agent()
    reply = await propose(agent, DELETE_3)
    await agent.decide(action_id=action_id(reply), decided_by=DBA, approve=True)
    settings = env.settings()
    assert await audit_main(settings, database="shop", since="1h", limit=10, fmt="json") == 0
    rows = json.loads(printed(capsys))
    assert [r["event"] for r in rows] == ["executed", "approved", "requested"]
    assert rows[0]["rows_affected"] == 3 and rows[0]["action_id"] == action_id(reply)
    assert await audit_main(settings, database=None, since=None, limit=10, fmt="csv") == 0
    lines = printed(capsys).splitlines()
    assert lines[0].startswith("id,at,event") and len(lines) == 4
    assert await audit_main(settings, database="shop", since="2999-01-01", limit=10, fmt="table") == 0
    assert "No audit rows" in capsys.readouterr().out
    assert await audit_main(settings, database=None, since="7d", limit=10, fmt="table") == 0
    assert "executed" in capsys.readouterr().out
    with pytest.raises(PgbotError, match="no database named"):
        await audit_main(settings, database="nope", since=None, limit=10, fmt="table")


def printed(capsys: pytest.CaptureFixture[str]) -> str:
    """What the command printed, without the structured-log lines the test run also sends to stdout."""
    lines = capsys.readouterr().out.splitlines(keepends=True)
    return "".join(line for line in lines if not re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[", line))


def test_since_accepts_spans_and_iso_dates() -> None:
    now = dt.datetime(2026, 5, 10, 12, 0, tzinfo=dt.UTC)
    assert parse_since("7d", now=now) == now - dt.timedelta(days=7)
    assert parse_since("24h", now=now) == now - dt.timedelta(hours=24)
    assert parse_since("1d12h", now=now) == now - dt.timedelta(days=1, hours=12)
    assert parse_since("2026-05-01", now=now) == dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    assert parse_since("2026-05-01T08:30+02:00", now=now) == dt.datetime(2026, 5, 1, 6, 30, tzinfo=dt.UTC)
    assert parse_since(None) is None
    with pytest.raises(PgbotError, match="--since"):
        parse_since("last tuesday")
    assert format_rows([], fmt="json") == "[]\n"


def test_secrets_are_redacted_from_the_audit_trail() -> None:
    sql = "ALTER ROLE bob WITH PASSWORD 'hunter2' VALID UNTIL 'infinity'"
    redacted = redact_sql(sql, statement_type="AlterRoleStmt")
    assert "hunter2" not in redacted and "********" in redacted and "VALID UNTIL" in redacted
    mapping = "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password 'pw1')"
    assert "pw1" not in redact_sql(mapping, statement_type="CreateUserMappingStmt")
    assert redact_sql(DELETE_3, statement_type="DeleteStmt") == DELETE_3


async def test_pending_action_survives_serialisation_and_prompt_matches(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    reply = await propose(agent, "UPDATE items SET qty = 0 WHERE id = 1")
    client = aioredis.Redis.from_url(env.redis_url, decode_responses=True)
    try:
        raw = await client.get(env.store().action_key(action_id(reply)))
    finally:
        await client.aclose()
    action = PendingAction.model_validate_json(raw)
    assert reply.approval is not None
    assert reply.approval == action.prompt(approvers=reply.approval.approvers)
    # Who may approve, from the config: named approvers and holders of approver roles (the card mentions them).
    assert reply.approval.approvers.people == ("slack:ULEAD",)
    assert reply.approval.approvers.role_holders == ("slack:UDBA",)
    assert action.before is not None and action.before.rows == ((1, "item 1", 1, "seed"),)
    assert action.expires_at - action.created_at == env.settings().approvals.expiry_s
    assert ActionStatus.EXECUTED.value == "executed"


async def test_preview_counts_every_row_and_keeps_five(change_env: ChangeEnv) -> None:
    env = change_env
    agent = env.agent()
    big = await propose(agent, "INSERT INTO items (id, name) SELECT g, 'bulk ' || g FROM generate_series(1000, 2999) g")
    assert "would affect 2000 rows" in big.text
    assert big.table is not None and big.table.row_count == 5
    assert await item_count(env) == 10


async def test_preview_of_merge_cte_and_insert_without_select_grant(change_env: ChangeEnv) -> None:
    env = change_env
    await env.fetch(f'GRANT INSERT ON secrets TO "{env.analyst}"')  # may write, may not read
    agent = env.agent()
    merge = await propose(agent, "MERGE INTO items t USING (SELECT 1 AS id) s ON t.id = s.id "
                                 "WHEN MATCHED THEN UPDATE SET qty = 99")
    assert "would affect 1 row " in merge.text
    cte = await propose(agent, "WITH gone AS (DELETE FROM items WHERE id < 3 RETURNING id) SELECT count(*) FROM gone")
    assert "returns 1 row" in cte.text and cte.table is not None and cte.table.rows == ((2,),)
    blind = await propose(agent, "INSERT INTO secrets VALUES (2, 'new secret')")
    assert "would affect 1 row " in blind.text and "not read it" in blind.text
    assert blind.table is None
    truncate = await propose(agent, "TRUNCATE notes")
    assert "Not run in the preview" in truncate.text and "ACCESS EXCLUSIVE" in truncate.text
    assert await item_count(env) == 10
    assert await env.fetchval("SELECT count(*) FROM secrets") == 1
