"""Migrations drafted by the model: checked, written, approved, applied, recorded and rolled back
(real Postgres with real roles, Redis, and the scripted OpenAI-compatible server)."""

from __future__ import annotations

import pytest

from bot.migrations_cli import migrate_main
from core import ReplyKind
from tests import llm_server as llm
from tests.helpers import final_reply, message
from tests.integration.change_env import DBA, change_env_fixture  # noqa: F401 - fixture
from tests.integration.migration_env import MigrationEnv, migration_env_fixture  # noqa: F401 - fixture

UP = "ALTER TABLE orders ADD COLUMN discount numeric(10,2)"
DOWN = "ALTER TABLE orders DROP COLUMN discount"


def propose(up: str, down: str, name: str = "add discount to orders") -> llm.ToolCallReply:
    return llm.tool_call("propose_migration", {"name": name, "up_sql": up, "down_sql": down})


async def test_a_drafted_migration_is_checked_written_approved_applied_recorded_and_rolled_back(
        migration_env: MigrationEnv, llm_server: llm.ScriptedLlmServer,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = migration_env
    llm_server.script(propose(UP + ";", DOWN + ";"))
    agent = env.agent(llm_server.base_url)
    proposal = await final_reply(agent, message("add a nullable discount column to orders", user="UANALYST"))
    assert proposal.kind is ReplyKind.APPROVAL and proposal.approval is not None, proposal.text
    assert "propose_migration" in {t["function"]["name"] for t in llm_server.requests[0]["tools"]}
    assert "This database keeps schema migrations" in llm_server.requests[0]["messages"][0]["content"]
    text = proposal.text
    assert "Migration 0001_add_discount_orders for 'shop'" in text
    assert "ACCESS EXCLUSIVE lock on orders (blocks every read and write" in text
    assert "does not rewrite the table" in text
    assert f"Checked: up, then down, ran as role {env.env.analyst}" in text and "DATA LOSS" not in text.split(
        "Down (")[0]
    assert "drops column orders.discount" in text  # the down's effect is shown too
    assert proposal.approval.sql == UP + ";\n"
    assert env.proposed() == [f"{proposal.approval.action_id}/0001_add_discount_orders.down.sql",
                              f"{proposal.approval.action_id}/0001_add_discount_orders.up.sql"]
    assert env.folder_files() == [] and "discount" not in await env.columns()

    # status from the command line shows the draft as awaiting approval, not as pending
    assert await migrate_main(env.settings(), action="status", database=None, yes=False, to=None) == 0
    out = capsys.readouterr().out
    assert "0001_add_discount_orders                 draft from chat awaiting approval" in out and "0 pending." in out

    outcome = await agent.decide(action_id=proposal.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.OUTCOME, outcome.text
    assert "applied 0001_add_discount_orders (1 statement)" in outcome.text
    assert "discount" in await env.columns()
    assert await env.recorded() == [(1, "add_discount_orders", DBA)]
    assert env.folder_files() == ["0001_add_discount_orders.down.sql", "0001_add_discount_orders.up.sql"]
    assert env.proposed() == []
    assert await env.env.audit_events(proposal.approval.action_id) == ["requested", "approved", "executed"]
    again = await agent.decide(action_id=proposal.approval.action_id, decided_by=DBA, approve=True)
    assert again.kind is ReplyKind.ERROR and "already approved" in again.text

    assert await migrate_main(env.settings(), action="down", database=None, yes=True, to=None) == 0
    out = capsys.readouterr().out
    assert "rolled back 0001_add_discount_orders" in out and "DATA LOSS: drops column orders.discount" in out
    assert "discount" not in await env.columns()
    assert await env.recorded() == []
    assert env.folder_files() == ["0001_add_discount_orders.down.sql", "0001_add_discount_orders.up.sql"]


async def test_a_syntax_error_and_a_down_that_does_not_undo_are_refused_before_approval(
        migration_env: MigrationEnv, llm_server: llm.ScriptedLlmServer) -> None:
    env = migration_env
    llm_server.script(
        propose("ALTER TABLE orders ADD COLUM discount numeric", DOWN),
        propose(UP, "ALTER TABLE orders ALTER COLUMN note SET NOT NULL"),
        propose(UP, "ALTER TABLE orders DROP COLUMN discont"),
        llm.text("I could not write a working migration."),
    )
    agent = env.agent(llm_server.base_url)
    reply = await final_reply(agent, message("add a nullable discount column to orders", user="UANALYST"))
    assert reply.kind is not ReplyKind.APPROVAL and reply.approval is None
    results = [m["content"] for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert results[0].startswith("ERROR: Refused (up migration): Postgres could not parse this SQL: syntax error")
    assert "line 1" in results[0]
    assert results[1].startswith("ERROR: Refused: the down migration does not undo the up migration")
    assert "column still present: public.orders.discount numeric(10,2)" in results[1]
    assert "column missing: public.orders.note text" in results[1]  # it gained NOT NULL
    assert results[2].startswith("ERROR: The migration failed when tried (rolled back, nothing changed): "
                                 "statement 1 of the down migration")
    assert 'column "discont" of relation "orders" does not exist' in results[2]
    assert env.proposed() == [] and env.folder_files() == []
    assert await env.env.redis_keys() == []  # no pending action was stored
    assert "discount" not in await env.columns()
    assert await env.env.fetchval("SELECT count(*) FROM orders WHERE note IS NULL") == 0


async def test_a_migration_that_drops_data_is_flagged_loudly(
        migration_env: MigrationEnv, llm_server: llm.ScriptedLlmServer) -> None:
    env = migration_env
    llm_server.script(propose("ALTER TABLE orders DROP COLUMN note", "ALTER TABLE orders ADD COLUMN note text",
                              name="drop note from orders"))
    agent = env.agent(llm_server.base_url)
    proposal = await final_reply(agent, message("remove the note column from orders", user="UANALYST"))
    assert proposal.kind is ReplyKind.APPROVAL and proposal.approval is not None, proposal.text
    first_lines = proposal.text.splitlines()[2:4]
    assert first_lines == ["⚠⚠ THIS MIGRATION DESTROYS OR OVERWRITES DATA ⚠⚠",
                           "  ⚠ DATA LOSS: drops column orders.note and its data."], proposal.text
    assert proposal.approval.summary.endswith("⚠ DATA LOSS")
    assert "note" in await env.columns()  # nothing ran


async def test_a_concurrent_index_is_marked_no_transaction_and_applied_outside_one(
        migration_env: MigrationEnv, llm_server: llm.ScriptedLlmServer) -> None:
    env = migration_env
    llm_server.script(propose("CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status)",
                              "DROP INDEX CONCURRENTLY orders_status_idx", name="index orders by status"))
    agent = env.agent(llm_server.base_url)
    proposal = await final_reply(agent, message("index orders by status without blocking writes", user="UANALYST"))
    assert proposal.kind is ReplyKind.APPROVAL and proposal.approval is not None, proposal.text
    assert "Checked by parsing only" in proposal.text and "Marked no-transaction" in proposal.text
    assert "SHARE UPDATE EXCLUSIVE lock on orders" in proposal.text
    assert proposal.approval.sql.startswith("-- pgbot: no-transaction")
    outcome = await agent.decide(action_id=proposal.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.OUTCOME, outcome.text  # CONCURRENTLY would fail inside a transaction
    assert await env.env.fetchval("SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_status_idx'::regclass")
    assert await env.env.fetchval("SELECT no_transaction FROM pgbot.migrations WHERE version = 1") is True
    down = (env.folder / "0001_index_orders_by_status.down.sql").read_text(encoding="utf-8")
    assert down.startswith("-- pgbot: no-transaction")
    assert await migrate_main(env.settings(), action="down", database=None, yes=True, to=None) == 0
    assert await env.env.fetchval("SELECT to_regclass('orders_status_idx')") is None


async def test_files_edited_after_the_request_are_refused_at_approval(
        migration_env: MigrationEnv, llm_server: llm.ScriptedLlmServer) -> None:
    env = migration_env
    llm_server.script(propose(UP, DOWN))
    agent = env.agent(llm_server.base_url)
    proposal = await final_reply(agent, message("add a discount column to orders", user="UANALYST"))
    assert proposal.approval is not None
    up_file = env.folder / ".proposed" / proposal.approval.action_id / "0001_add_discount_orders.up.sql"
    up_file.write_text("ALTER TABLE orders DROP COLUMN note;\n", encoding="utf-8")
    outcome = await agent.decide(action_id=proposal.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.ERROR and "edited after approval was requested" in outcome.text
    assert "nothing was run" in outcome.text
    assert "note" in await env.columns() and "discount" not in await env.columns()
    assert await env.recorded() == [] and env.folder_files() == []


async def test_without_a_migrations_folder_the_model_is_told_which_key_to_set(
        migration_env: MigrationEnv, llm_server: llm.ScriptedLlmServer) -> None:
    llm_server.script(propose(UP, DOWN), llm.tool_call("migration_status"),
                      llm.text("Migrations are not configured: set databases.shop.migrations_dir."))
    agent = migration_env.agent(llm_server.base_url, migrations=False)
    reply = await final_reply(agent, message("add a discount column to orders", user="UANALYST"))
    assert reply.kind is ReplyKind.ANSWER and "migrations_dir" in reply.text
    assert "This database keeps schema migrations" not in llm_server.requests[0]["messages"][0]["content"]
    results = [m["content"] for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert results[0].startswith("ERROR: databases.shop.migrations_dir is not set: add migrations_dir = ")
    assert "use propose_change" in results[0]
    assert results[1].startswith("databases.shop.migrations_dir is not set")
    assert await migration_env.env.redis_keys() == []


async def test_a_rejected_draft_is_never_applied_and_is_cleaned_up_by_the_next_proposal(
        migration_env: MigrationEnv, llm_server: llm.ScriptedLlmServer, capsys: pytest.CaptureFixture[str]) -> None:
    env = migration_env
    llm_server.script(propose(UP, DOWN), propose("CREATE TABLE coupons (code text PRIMARY KEY)",
                                                 "DROP TABLE coupons", name="create coupons"),
                      llm.tool_call("migration_status"), llm.text("One draft awaits approval."))
    agent = env.agent(llm_server.base_url)
    first = await final_reply(agent, message("add a discount column to orders", user="UANALYST"))
    assert first.approval is not None
    rejected = await agent.decide(action_id=first.approval.action_id, decided_by=DBA, approve=False)
    assert rejected.kind is ReplyKind.OUTCOME and "rejected" in rejected.text
    assert await migrate_main(env.settings(), action="status", database=None, yes=False, to=None) == 0
    assert "draft from chat, rejected by slack:UDBA: never applied" in capsys.readouterr().out
    assert await migrate_main(env.settings(), action="up", database=None, yes=True, to=None) == 0
    assert "Nothing to apply" in capsys.readouterr().out and "discount" not in await env.columns()

    second = await final_reply(agent, message("add a coupons table", user="UANALYST"))
    assert second.approval is not None
    assert env.proposed() == [f"{second.approval.action_id}/0001_create_coupons.down.sql",
                              f"{second.approval.action_id}/0001_create_coupons.up.sql"]
    answer = await final_reply(agent, message("which migrations are waiting?", user="UANALYST"))
    assert answer.kind is ReplyKind.ANSWER
    status = [m["content"] for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"][-1]
    assert "0001_create_coupons" in status and "awaiting approval" in status and "0 pending." in status


async def test_an_enum_value_is_an_irreversible_migration_said_plainly_and_never_rolled_back(
        migration_env: MigrationEnv, llm_server: llm.ScriptedLlmServer, capsys: pytest.CaptureFixture[str]) -> None:
    env = migration_env
    up = "ALTER TYPE order_state ADD VALUE 'refunded'"
    llm_server.script(propose(up, "ALTER TYPE order_state RENAME VALUE 'refunded' TO 'gone'", name="refunded state"),
                      propose(up, "-- irreversible: PostgreSQL cannot drop an enum value", name="refunded state"))
    agent = env.agent(llm_server.base_url)
    proposal = await final_reply(agent, message("orders can be refunded now", user="UANALYST"))
    hint = next(m["content"] for m in llm_server.requests[-1]["messages"] if m["role"] == "tool")
    assert "does not undo" in hint and "'-- irreversible: <why>'" in hint
    assert proposal.kind is ReplyKind.APPROVAL and proposal.approval is not None, proposal.text
    assert "⚠ IRREVERSIBLE: it has no down migration" in proposal.text
    assert "there is no down to check" in proposal.text and proposal.approval.summary.endswith("⚠ IRREVERSIBLE")
    outcome = await agent.decide(action_id=proposal.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.OUTCOME, outcome.text
    labels = await env.env.fetch("SELECT unnest(enum_range(NULL::order_state))::text AS label")
    assert [r["label"] for r in labels] == ["new", "paid", "refunded"]
    assert await migrate_main(env.settings(), action="down", database=None, yes=True, to=None) == 1
    assert "0001_refunded_state is irreversible" in capsys.readouterr().err
    assert await env.recorded() == [(1, "refunded_state", DBA)]


async def test_a_pending_file_blocks_a_proposal_and_a_number_taken_meanwhile_is_moved_up(
        migration_env: MigrationEnv, llm_server: llm.ScriptedLlmServer, capsys: pytest.CaptureFixture[str]) -> None:
    env = migration_env
    env.write("0001_manual", "CREATE TABLE manual (id int);\n", "DROP TABLE manual;\n")
    llm_server.script(propose(UP, DOWN), propose(UP, DOWN))
    agent = env.agent(llm_server.base_url)
    refused = await final_reply(agent, message("add a discount column to orders", user="UANALYST"))
    assert refused.kind is ReplyKind.ERROR and refused.approval is None
    assert "No migration was written: 0001_manual" in refused.text and "not applied yet" in refused.text
    assert env.proposed() == []

    (env.folder / "0001_manual.up.sql").rename(env.folder / "hold.txt")  # out of the way while proposing
    (env.folder / "0001_manual.down.sql").unlink()
    proposal = await final_reply(agent, message("add a discount column to orders", user="UANALYST"))
    assert proposal.approval is not None and "Migration 0001_add_discount_orders" in proposal.text
    (env.folder / "hold.txt").rename(env.folder / "0001_manual.up.sql")  # someone else applies 0001 meanwhile
    assert await migrate_main(env.settings(), action="up", database=None, yes=True, to=None) == 0
    capsys.readouterr()

    outcome = await agent.decide(action_id=proposal.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.OUTCOME, outcome.text
    assert "applied 0002_add_discount_orders" in outcome.text and "0001 was taken meanwhile" in outcome.text
    assert [(v, n) for v, n, _ in await env.recorded()] == [(1, "manual"), (2, "add_discount_orders")]
    assert "0002_add_discount_orders.up.sql" in env.folder_files() and env.proposed() == []


async def test_a_failed_concurrent_index_from_chat_stays_pending_in_the_folder(
        migration_env: MigrationEnv, llm_server: llm.ScriptedLlmServer) -> None:
    env = migration_env
    llm_server.script(propose("CREATE UNIQUE INDEX CONCURRENTLY orders_status_key ON orders (status)",
                              "DROP INDEX CONCURRENTLY orders_status_key", name="unique status"))
    agent = env.agent(llm_server.base_url)
    proposal = await final_reply(agent, message("make status unique", user="UANALYST"))
    assert proposal.approval is not None, proposal.text  # parse-only check: the duplicates are not seen yet
    outcome = await agent.decide(action_id=proposal.approval.action_id, decided_by=DBA, approve=True)
    assert outcome.kind is ReplyKind.ERROR and "could not create unique index" in outcome.text
    assert "leaves an INVALID index" in outcome.text and "as a pending migration" in outcome.text
    assert "rolled back" not in outcome.text
    assert env.folder_files() == ["0001_unique_status.down.sql", "0001_unique_status.up.sql"]
    assert await env.recorded() == []
