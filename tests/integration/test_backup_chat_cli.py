"""Backups end to end: a chat conversation over the scripted LLM with Approve, and the `pgbot backup` command."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from bot.wiring import build_agent
from core import ReplyKind
from core.backups.conninfo import database_name
from tests import llm_server as llm
from tests.helpers import final_reply, message
from tests.integration.backup_env import database_exists, drop_database, new_name, seed, table_checksums
from tests.integration.change_env import LEAD, ChangeEnv, change_env_fixture  # noqa: F401 - fixture
from tests.integration.test_cli import run_pgbot, run_pgbot_with_input
from tests.services import dsn_for_database


async def test_back_up_and_restore_from_chat_with_approval(
        change_env: ChangeEnv, llm_server: llm.ScriptedLlmServer, tmp_path: Path, pg_admin_dsn: str) -> None:
    settings = change_env.settings(llm_url=llm_server.base_url)
    settings.backups.dir = tmp_path / "backups"
    settings.backups.progress_interval_s = 0
    agent = build_agent(settings, approval_store=change_env.store())
    change_env.agents.append(agent)

    # The analyst cannot read `secrets`: the backup is refused before anything is offered or written.
    llm_server.script(llm.tool_call("propose_backup", {}))
    refused = await final_reply(agent, message("back up shop", user="UANALYST"))
    assert refused.kind is ReplyKind.ERROR and "public.secrets (no SELECT)" in refused.text
    offered = {t["function"]["name"] for t in llm_server.requests[-1]["tools"]}
    assert {"propose_backup", "list_backups", "verify_backup", "propose_restore"} <= offered

    llm_server.script(llm.tool_call("propose_backup", {"database": "shop"}))
    asked = await final_reply(agent, message("back up shop", user="UDBA", thread="t-backup"))
    assert asked.kind is ReplyKind.APPROVAL and asked.approval is not None, asked.text
    assert "pg_dump" in asked.sql[0] and "Nothing has run yet" in asked.text
    assert not settings.backups.dir.exists() or not list(settings.backups.dir.glob("*.dump"))
    lines: list[str] = []

    async def progress(text: str) -> None:
        lines.append(text)

    outcome = await agent.decide(action_id=asked.approval.action_id, decided_by=LEAD, approve=True,
                                 progress=progress)
    assert outcome.kind is ReplyKind.OUTCOME and "backup written: shop-" in outcome.text, outcome.text
    assert any("Dumped" in line for line in lines)
    again = await agent.decide(action_id=asked.approval.action_id, decided_by=LEAD, approve=True)
    assert "already approved" in again.text
    dumps = list(settings.backups.dir.glob("*.dump"))
    assert len(dumps) == 1
    assert await change_env.audit_events(asked.approval.action_id) == ["requested", "approved", "executed"]

    # Restoring over the original without the explicit overwrite is refused; into a new database it is offered.
    original = database_name(change_env.dsn)
    llm_server.script(llm.tool_call("propose_restore", {"file": dumps[0].name, "into": original}))
    over = await final_reply(agent, message("restore that backup into the original", user="UDBA", thread="t-backup"))
    assert over.kind is ReplyKind.ERROR and "already exists" in over.text
    into = new_name()
    try:
        llm_server.script(llm.tool_call("propose_restore", {"file": dumps[0].name, "into": into}))
        asked = await final_reply(agent, message(f"restore it into {into}", user="UDBA", thread="t-backup"))
        assert asked.kind is ReplyKind.APPROVAL and asked.approval is not None, asked.text
        assert f"'{into}' will not be in pgbot's config" in asked.text
        assert not await database_exists(pg_admin_dsn, into)  # nothing happens before Approve
        outcome = await agent.decide(action_id=asked.approval.action_id, decided_by=LEAD, approve=True)
        assert outcome.kind is ReplyKind.OUTCOME and f"into the new database '{into}'" in outcome.text
        assert await table_checksums(dsn_for_database(pg_admin_dsn, into)) == await table_checksums(change_env.dsn)
    finally:
        await drop_database(pg_admin_dsn, into)


async def test_overwrite_from_chat_is_a_distinct_flag_shown_loudly(
        change_env: ChangeEnv, llm_server: llm.ScriptedLlmServer, tmp_path: Path) -> None:
    settings = change_env.settings(llm_url=llm_server.base_url)
    settings.backups.dir = tmp_path
    agent = build_agent(settings, approval_store=change_env.store())
    change_env.agents.append(agent)
    llm_server.script(llm.tool_call("propose_backup", {}))
    asked = await final_reply(agent, message("back up shop", user="UDBA"))
    assert asked.approval is not None
    await agent.decide(action_id=asked.approval.action_id, decided_by=LEAD, approve=True)
    dump = next(tmp_path.glob("*.dump"))
    await change_env.fetch("DELETE FROM items")
    original = database_name(change_env.dsn)
    llm_server.script(llm.tool_call("propose_restore", {"file": dump.name, "into": original, "overwrite": True}))
    asked = await final_reply(agent, message("replace shop with that backup", user="UDBA"))
    assert asked.kind is ReplyKind.APPROVAL and asked.approval is not None, asked.text
    assert f"⚠ This REPLACES the contents of {original}" in asked.text
    assert "REPLACES" in asked.approval.summary
    assert await change_env.fetchval("SELECT count(*) FROM items") == 0  # not yet
    outcome = await agent.decide(action_id=asked.approval.action_id, decided_by=LEAD, approve=True)
    assert outcome.kind is ReplyKind.OUTCOME, outcome.text
    assert await change_env.fetchval("SELECT count(*) FROM items") == 10


def cli_config(tmp_path: Path, dsn: str) -> Path:
    path = tmp_path / "pgbot.toml"
    path.write_text(f'[databases.shop]\ndsn = "{dsn}"\n[backups]\ndir = "{tmp_path / "backups"}"\n',
                    encoding="utf-8")
    return path


async def test_the_backup_command_creates_lists_verifies_and_restores(
        fresh_db: str, tmp_path: Path, pg_admin_dsn: str) -> None:
    await seed(fresh_db)
    path = str(cli_config(tmp_path, fresh_db))
    code, out, err = await run_pgbot_with_input("backup", "create", "--config", path, home=tmp_path, stdin="n\n")
    assert code == 1 and "Cancelled; nothing was run." in err
    assert not list((tmp_path / "backups").glob("*.dump"))
    code, out, err = await run_pgbot("backup", "create", "--yes", "--db", "shop", "--config", path, home=tmp_path)
    assert code == 0, err
    assert "backup written: shop-" in out and "Counted" in err  # progress on stderr
    dump = next((tmp_path / "backups").glob("*.dump"))
    (tmp_path / "backups" / "stray.dump").write_bytes(b"PGDMP not really")

    code, out, err = await run_pgbot("backup", "list", "--config", path, home=tmp_path)
    assert code == 0, err
    assert dump.name in out and "no manifest" in out and "Traceback" not in out + err
    code, out, err = await run_pgbot("backup", "verify", dump.name, "--config", path, home=tmp_path)
    assert code == 0 and f"{dump.name}: ok" in out, err
    code, out, err = await run_pgbot("backup", "verify", "stray.dump", "--config", path, home=tmp_path)
    assert code == 1 and "NOT usable" in err and "no manifest" in err

    original = database_name(fresh_db)
    assert original is not None
    code, out, err = await run_pgbot("backup", "restore", dump.name, "--into", original, "--yes", "--config", path,
                                     home=tmp_path)
    assert code == 1 and "already exists" in err and "Traceback" not in err
    # --overwrite at the prompt: the database name must be typed; anything else cancels.
    code, out, err = await run_pgbot_with_input("backup", "restore", dump.name, "--into", original, "--overwrite",
                                                "--config", path, home=tmp_path, stdin="y\n")
    assert code == 1 and "Cancelled" in err
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("DELETE FROM orders")
    finally:
        await conn.close()
    code, out, err = await run_pgbot_with_input("backup", "restore", dump.name, "--into", original, "--overwrite",
                                                "--config", path, home=tmp_path, stdin=f"{original}\n")
    assert code == 0, err
    assert (await table_checksums(fresh_db))["public.orders"][0] == 90

    into = new_name()
    try:
        code, out, err = await run_pgbot("backup", "restore", str(dump), "--into", into, "--yes", "--config", path,
                                         home=tmp_path)
        assert code == 0, err
        assert f"[databases.{into}]" in out
        restored = json.loads(dump.with_name(dump.name + ".json").read_text())
        counts = await table_checksums(dsn_for_database(pg_admin_dsn, into))
        assert {f"{t['schema']}.{t['name']}": t["rows"] for t in restored["tables"] if t["schema"] != "pgbot"} == {
            name: count for name, (count, _) in counts.items()}
    finally:
        await drop_database(pg_admin_dsn, into)


@pytest.mark.parametrize("argv", [["backup"], ["backup", "restore", "x.dump"]])
async def test_backup_usage_errors_are_one_line(argv: list[str], tmp_path: Path) -> None:
    code, out, err = await run_pgbot(*argv, home=tmp_path)
    assert code == 2 and "usage: pgbot backup" in err and "Traceback" not in err
