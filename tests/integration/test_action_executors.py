"""Approved work that is not one SQL statement (core.approvals.executors): same rules, exactly once, audited,
tamper-proof."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from core import ReplyKind
from core.approvals.audit import AuditLog
from core.approvals.decisions import Approvals
from core.approvals.executors import ExecutionContext, ExecutionOutcome, executor, executor_operation
from core.approvals.pending import PendingAction, action_hash, sql_hash
from core.errors import PgbotError
from core.tools.registry import ToolRegistry
from tests.integration.change_env import ANALYST, DBA, ChangeEnv, change_env_fixture  # noqa: F401 - fixture

RUNS: list[str] = []


@executor("toy")
async def toy_executor(action: PendingAction, ctx: ExecutionContext) -> ExecutionOutcome:
    """Appends a note row, so a test can count how often the approved work really ran."""
    await ctx.report(f"working on {action.params['label']}")
    started = time.perf_counter()
    pool = await ctx.database.pool()
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO notes (id, body) SELECT coalesce(max(id), 0) + 1, $1 FROM notes",
                           action.params["label"])
    RUNS.append(action.id)
    return ExecutionOutcome(status=f"toy done: {action.params['label']}",
                            duration_ms=(time.perf_counter() - started) * 1000, details="one note written")


def toy_action(env: ChangeEnv, label: str = "first") -> PendingAction:
    now = time.time()
    params = {"label": label}
    sql = f"-- toy operation writing the note {label!r}"
    return PendingAction(
        database="shop", thread_key="slack:T:C:toy", requested_by=f"slack:{ANALYST.split(':')[1]}",
        role=env.analyst, sql=sql, sql_hash=action_hash(sql, "toy", params), kind="admin", summary="toy",
        operation="toy", params=params, outside_transaction=True, created_at=now, expires_at=now + 600,
    )


def approvals_for(env: ChangeEnv) -> Approvals:
    agent = env.agent()
    return Approvals(settings=agent.settings, databases=agent.databases, store=env.store(),
                     audit=AuditLog(agent.databases), context=agent.store, executors={"toy": toy_executor})


def test_the_registry_collects_marked_executors_from_tool_modules() -> None:
    import sys

    registry = ToolRegistry()
    registry.add_module(sys.modules[__name__])
    assert registry.executors == {"toy": toy_executor}
    assert executor_operation(toy_executor) == "toy"
    with pytest.raises(ValueError, match="built into"):
        executor("sql")


def test_plain_sql_hash_is_unchanged_and_params_are_covered() -> None:
    assert action_hash("DELETE FROM t") == sql_hash("DELETE FROM t")
    assert action_hash("x", "toy", {"label": "a"}) != action_hash("x", "toy", {"label": "b"})
    assert action_hash("x", "toy", {"label": "a"}) != action_hash("x", "other", {"label": "a"})


async def test_an_approved_executor_action_runs_once_reports_progress_and_is_audited(change_env: ChangeEnv) -> None:
    approvals = approvals_for(change_env)
    action = toy_action(change_env)
    prompt = await approvals.submit(action)
    lines: list[str] = []

    async def progress(text: str) -> None:
        lines.append(text)

    outcomes = await asyncio.gather(*(
        approvals.decide(action_id=prompt.action_id, decided_by=DBA, approve=True, progress=progress)
        for _ in range(10)))
    ran = [o for o in outcomes if o.kind is ReplyKind.OUTCOME]
    assert len(ran) == 1 and "toy done: first" in ran[0].text and "one note written" in ran[0].text
    assert all("already approved" in o.text for o in outcomes if o.kind is not ReplyKind.OUTCOME)
    assert RUNS.count(action.id) == 1
    assert lines == ["working on first"]
    assert await change_env.fetchval("SELECT count(*) FROM notes WHERE body = 'first'") == 1
    assert await change_env.audit_events(action.id) == ["requested", "approved", "executed"]


async def test_params_altered_in_redis_are_refused(change_env: ChangeEnv) -> None:
    approvals = approvals_for(change_env)
    action = toy_action(change_env, "honest")
    await approvals.submit(action)
    forged = action.model_copy(update={"params": {"label": "evil"}})
    client = aioredis.Redis.from_url(change_env.redis_url, decode_responses=True)
    try:
        key = f"{change_env.prefix}:{action.id}"
        assert await client.exists(key), await change_env.redis_keys()
        await client.set(key, forged.model_dump_json(), keepttl=True)
    finally:
        await client.aclose()
    outcome = await approvals.decide(action_id=action.id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.ERROR and "altered" in outcome.text
    assert action.id not in RUNS
    assert await change_env.fetchval("SELECT count(*) FROM notes") == 0


async def test_unknown_operations_are_refused_before_anything_is_stored(change_env: ChangeEnv) -> None:
    agent = change_env.agent()
    approvals = Approvals(settings=agent.settings, databases=agent.databases, store=change_env.store(),
                          audit=AuditLog(agent.databases), context=agent.store)
    with pytest.raises(PgbotError, match="cannot carry out 'toy'"):
        await approvals.submit(toy_action(change_env))
    assert await change_env.redis_keys() == []


async def test_the_operator_path_runs_and_audits_without_an_approver(change_env: ChangeEnv) -> None:
    approvals = approvals_for(change_env)
    action = toy_action(change_env, "from the cli")
    reply = await approvals.run_as_operator(action, operator="cli:ops")
    assert reply.kind is ReplyKind.OUTCOME and "toy done" in reply.text
    assert await change_env.audit_events(action.id) == ["requested", "approved", "executed"]
    assert await change_env.fetchval("SELECT decided_by FROM pgbot.audit WHERE action_id = $1 AND event = "
                                     "'approved'", action.id) == "cli:ops"


async def test_approved_work_runs_under_the_change_timeout_not_the_question_timeout(change_env: ChangeEnv) -> None:
    from core.approvals.decisions import run_outside_transaction
    from core.errors import QueryTimeoutError

    slow = "DO $$ BEGIN PERFORM pg_sleep(0.4); END $$"
    patient = change_env.agent(change_env.settings(statement_timeout_ms=100, change_timeout_ms=10_000))
    db = patient.databases.get("shop")
    status, duration_ms = await run_outside_transaction(db, slow, role=None)
    assert status == "DO" and duration_ms >= 400
    hasty = change_env.agent(change_env.settings(statement_timeout_ms=100, change_timeout_ms=150))
    with pytest.raises(QueryTimeoutError):
        await run_outside_transaction(hasty.databases.get("shop"), slow, role=None)
