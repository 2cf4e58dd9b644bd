"""Backups end to end: a chat conversation over the scripted LLM with Approve, and the `pgbot backup` command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import asyncpg
import pytest

from bot.backup_command import change_command, verify_command
from bot.wiring import build_agent
from core import ReplyKind, load_settings
from core.backups.conninfo import database_name
from core.errors import BackupError
from tests import llm_server as llm
from tests.helpers import final_reply, message
from tests.integration.backup_env import database_exists, drop_database, files_in, new_name, seed, table_checksums
from tests.integration.change_env import LEAD, ChangeEnv, change_env_fixture  # noqa: F401 - fixture
from tests.integration.test_cli import run_pgbot
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
    dump = files_in(tmp_path, "*.dump")[0]

    # Listing and verifying are plain reads; a path instead of a listed name goes back to the model as a hint.
    llm_server.script(llm.tool_call("list_backups", {}), llm.tool_call("verify_backup", {"file": "/etc/passwd"}),
                      llm.tool_call("verify_backup", {"file": dump.name}), llm.text("It is intact."))
    answer = await final_reply(agent, message("which backups do we have, and is the latest one ok?", user="UDBA"))
    assert answer.kind is ReplyKind.ANSWER and answer.text == "It is intact."
    results = [m["content"] for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert dump.name in results[0] and "ok" in results[0]
    assert "is a path" in results[1] and dump.name in results[1]
    assert f"{dump.name} is intact" in results[2] and "sha256 matches" in results[2]

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
        fresh_db: str, tmp_path: Path, pg_admin_dsn: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The real command for create and list (a subprocess each); the other actions call its handlers in-process
    to keep the test fast (the same code after argument parsing)."""
    await seed(fresh_db)
    path = str(cli_config(tmp_path, fresh_db))
    code, out, err = await run_pgbot("backup", "create", "--yes", "--db", "shop", "--config", path, home=tmp_path)
    assert code == 0, err
    assert "backup written: shop-" in out and "Counted" in err  # progress on stderr
    dump = next((tmp_path / "backups").glob("*.dump"))
    (tmp_path / "backups" / "stray.dump").write_bytes(b"PGDMP not really")
    code, out, err = await run_pgbot("backup", "list", "--config", path, home=tmp_path)
    assert code == 0, err
    assert dump.name in out and "no manifest" in out and "Traceback" not in out + err
    assert out.index("stray.dump") < out.index(dump.name)  # newest first

    settings = load_settings(path)
    answers: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: answers.pop(0))

    async def command(action: str, **args: object) -> int:
        namespace = argparse.Namespace(**{"backup_command": action, "db": None, "yes": False, "overwrite": False,
                                          **args})
        if action == "verify":
            return await verify_command(settings, file=str(args["file"]))
        return await change_command(settings, namespace)

    answers.append("n")
    assert await command("create") == 1 and "Cancelled; nothing was run." in capsys.readouterr().err
    assert len(list((tmp_path / "backups").glob("*.dump"))) == 2  # the first, the stray: no new one
    assert await command("verify", file=dump.name) == 0 and f"{dump.name}: ok" in capsys.readouterr().out
    assert await command("verify", file="stray.dump") == 1
    assert "NOT usable" in capsys.readouterr().err

    original = database_name(fresh_db)
    assert original is not None
    with pytest.raises(BackupError, match="already exists"):
        await command("restore", file=dump.name, into=original)
    # --overwrite at the prompt: the database name must be typed; anything else cancels.
    answers.append("y")
    assert await command("restore", file=dump.name, into=original, overwrite=True) == 1
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("DELETE FROM orders")
    finally:
        await conn.close()
    answers.append(original)
    assert await command("restore", file=dump.name, into=original, overwrite=True) == 0, capsys.readouterr()
    assert (await table_checksums(fresh_db))["public.orders"][0] == 90

    into = new_name()
    try:
        answers.append("yes")
        assert await command("restore", file=str(dump), into=into) == 0
        assert f"[databases.{into}]" in capsys.readouterr().out
        restored = json.loads(dump.with_name(dump.name + ".json").read_text())
        counts = await table_checksums(dsn_for_database(pg_admin_dsn, into))
        assert {f"{t['schema']}.{t['name']}": t["rows"] for t in restored["tables"] if t["schema"] != "pgbot"} == {
            name: count for name, (count, _) in counts.items()}
    finally:
        await drop_database(pg_admin_dsn, into)


@pytest.mark.parametrize("argv", [["backup"], ["backup", "restore", "x.dump"]])
async def test_backup_usage_errors_are_one_line(argv: list[str], tmp_path: Path) -> None:
    code, _, err = await run_pgbot(*argv, home=tmp_path)
    assert code == 2 and "usage: pgbot backup" in err and "Traceback" not in err
