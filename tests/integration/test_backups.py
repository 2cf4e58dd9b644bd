"""Backups and restores against the real PostgreSQL with the real pg_dump / pg_restore (core.backups)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.wiring import build_agent
from core import Reply, ReplyKind
from core.agent.loop import Agent
from core.backups.actions import propose_backup_action, propose_restore_action
from core.backups.conninfo import database_name
from core.backups.manifest import list_folder, manifest_path, read_manifest
from core.errors import BackupError
from tests.integration.backup_env import (
    backup_settings,
    database_exists,
    drop_database,
    new_name,
    seed,
    table_checksums,
)
from tests.services import dsn_for_database

OPERATOR = "cli:tester"


@pytest.fixture
async def restored(pg_admin_dsn: str) -> AsyncIterator[list[str]]:
    """Names of databases a test restores into; every one is dropped afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        await drop_database(pg_admin_dsn, name)


@pytest.fixture
async def shop(fresh_db: str, tmp_path: Path) -> AsyncIterator[tuple[str, Agent, Path]]:
    await seed(fresh_db)
    folder = tmp_path / "backups" / "nested"  # missing: the first backup creates it
    agent = build_agent(backup_settings(fresh_db, folder), use_llm=False)
    try:
        yield fresh_db, agent, folder
    finally:
        await agent.aclose()


async def make_backup(agent: Agent, lines: list[str] | None = None) -> Path:
    db = agent.databases.get("shop")
    action, _ = await propose_backup_action(db, settings=agent.settings, thread_key="t", requested_by=OPERATOR,
                                            role=None)

    async def progress(text: str) -> None:
        if lines is not None:
            lines.append(text)

    assert agent.approvals is not None
    reply = await agent.approvals.run_as_operator(action, operator=OPERATOR, progress=progress)
    assert reply.kind is ReplyKind.OUTCOME, reply.text
    name = reply.text.split("backup written: ")[1].split(" ")[0]
    return agent.settings.backups.dir / name


async def try_restore(agent: Agent, file: str, into: str, *, overwrite: bool = False) -> Reply:
    """Propose (refusals raise here, before anything is offered) and run as the operator."""
    db = agent.databases.get("shop")
    action, _ = await propose_restore_action(db, settings=agent.settings, file=file, into=into, overwrite=overwrite,
                                             thread_key="t", requested_by=OPERATOR, role=None)
    assert agent.approvals is not None
    return await agent.approvals.run_as_operator(action, operator=OPERATOR)


async def restore(agent: Agent, file: str, into: str, *, overwrite: bool = False) -> str:
    reply = await try_restore(agent, file, into, overwrite=overwrite)
    assert reply.kind is ReplyKind.OUTCOME, reply.text
    return reply.text


async def test_a_backup_restored_into_a_new_database_is_identical(
        shop: tuple[str, Agent, Path], pg_admin_dsn: str, restored: list[str]) -> None:
    dsn, agent, folder = shop
    lines: list[str] = []
    dump = await make_backup(agent, lines)
    assert folder.is_dir() and dump.parent == folder and dump.name.startswith("shop-")
    assert any("Backing up 'shop'" in line for line in lines)
    assert any(line.startswith("Dumped ") for line in lines), lines  # per-table progress (interval 0)

    manifest = json.loads(manifest_path(dump).read_text())
    source = await table_checksums(dsn)
    assert manifest["database"] == "shop" and manifest["dbname"] == database_name(dsn)
    assert manifest["size_bytes"] == dump.stat().st_size and len(manifest["sha256"]) == 64
    assert manifest["server_version_num"] >= 150000 and manifest["pg_dump_version"][:2].isdigit()
    assert manifest["created_at"] and manifest["requested_by"] == OPERATOR
    counted = {f"{t['schema']}.{t['name']}": t["rows"] for t in manifest["tables"]}
    assert counted.pop("pgbot.audit") == 2  # pgbot's own bookkeeping is in the backup too (requested, approved)
    assert counted == {name: count for name, (count, _) in source.items()}
    assert counted["public.orders"] == 90 and counted["sales.events_2025"] + counted["sales.events_2026"] == 400

    into = new_name()
    restored.append(into)
    text = await restore(agent, dump.name, into)
    assert f"into the new database '{into}'" in text and "differ" not in text
    assert f"all {len(counted) + 1} tables have the row counts recorded in the manifest" in text
    assert f"[databases.{into}]" in text  # not in the config: says how to add it
    assert await table_checksums(dsn_for_database(pg_admin_dsn, into)) == source
    assert await agent_audit(dsn, "executed") >= 2  # the backup and the restore, audited in the source database


async def agent_audit(dsn: str, event: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM pgbot.audit WHERE event = $1", event))
    finally:
        await conn.close()


async def test_truncated_or_corrupted_dumps_are_refused_before_anything_is_created(
        shop: tuple[str, Agent, Path], pg_admin_dsn: str, restored: list[str]) -> None:
    _, agent, folder = shop
    dump = await make_backup(agent)
    data = dump.read_bytes()

    def copy_as(name: str, body: bytes, *, manifest_for: bytes | None = None) -> str:
        target = folder / name
        target.write_bytes(body)
        manifest = read_manifest(dump).model_copy(update={"file": name})
        if manifest_for is not None:  # a manifest that matches the damaged file: only pg_restore can tell
            import hashlib

            manifest = manifest.model_copy(update={"size_bytes": len(manifest_for),
                                                   "sha256": hashlib.sha256(manifest_for).hexdigest()})
        manifest_path(target).write_text(manifest.model_dump_json(by_alias=True))
        return name

    middle = len(data) // 2
    flipped = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
    cases = {
        copy_as("cut.dump", data[:middle]): "truncated",
        copy_as("flip.dump", flipped): "corrupted",
        copy_as("text.dump", b"-- plain SQL, not a dump\n" * 10): "PGDMP",
        copy_as("cut2.dump", data[:middle], manifest_for=data[:middle]): "pg_restore cannot read",
    }
    for name, why in cases.items():
        into = new_name()
        restored.append(into)
        with pytest.raises(BackupError, match=why):
            await restore(agent, name, into)
        assert not await database_exists(pg_admin_dsn, into), name

    orphan = folder / "orphan.dump"
    shutil.copy(dump, orphan)  # no manifest: cannot be proven complete
    with pytest.raises(BackupError, match="no manifest"):
        await restore(agent, orphan.name, new_name())
    listed = {e.path.name: e for e in list_folder(folder)}
    assert listed["orphan.dump"].problem.startswith("no manifest")
    assert listed[dump.name].problem == "" and listed[dump.name].manifest is not None


async def test_restore_into_an_existing_database_needs_the_second_confirmation(
        shop: tuple[str, Agent, Path], pg_admin_dsn: str, restored: list[str]) -> None:
    dsn, agent, _ = shop
    dump = await make_backup(agent)
    original = database_name(dsn)
    assert original is not None
    before = await table_checksums(dsn)
    with pytest.raises(BackupError, match="already exists"):
        await restore(agent, dump.name, original)
    # Another existing database is never overwritten, even with the flag.
    other = new_name()
    restored.append(other)
    await restore(agent, dump.name, other)
    with pytest.raises(BackupError, match="only restores a backup over the database it was taken from"):
        await restore(agent, dump.name, other, overwrite=True)

    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM orders WHERE id > 10; UPDATE customers SET name = 'changed';"
                           "CREATE TABLE made_later (id int)")
    finally:
        await conn.close()
    audit_rows = await agent_audit(dsn, "requested")
    text = await restore(agent, dump.name, original, overwrite=True)
    assert f"over '{original}'" in text
    after = await table_checksums(dsn)
    assert {k: v for k, v in after.items() if k != "public.made_later"} == before  # the backup's data is back
    assert "public.made_later" in after  # objects made after the backup stay
    assert await agent_audit(dsn, "requested") == audit_rows + 1  # the live audit trail survived the restore


async def test_backup_folder_missing_is_created_and_an_unusable_one_is_refused(
        fresh_db: str, tmp_path: Path) -> None:
    await seed(fresh_db)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for folder, why in ((blocker / "backups", "a part of the path is a file"), (blocker, "not a folder")):
        agent = build_agent(backup_settings(fresh_db, folder), use_llm=False)
        try:
            with pytest.raises(BackupError, match=why):
                await propose_backup_action(agent.databases.get("shop"), settings=agent.settings, thread_key="t",
                                            requested_by=OPERATOR, role=None)
        finally:
            await agent.aclose()


async def test_a_restore_failing_midway_leaves_nothing_behind(
        shop: tuple[str, Agent, Path], pg_admin_dsn: str, restored: list[str]) -> None:
    """New database: dropped again. Over the original: one transaction, so the original is untouched."""
    import asyncpg

    dsn, agent, _ = shop
    owner = new_name("pgbot_t_owner")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE ROLE "{owner}" NOLOGIN; CREATE TABLE owned (id int); '
                           f'ALTER TABLE owned OWNER TO "{owner}"')
        dump = await make_backup(agent)
        await conn.execute(f'DROP TABLE owned; DROP ROLE "{owner}"')  # the backup now names a missing owner
    finally:
        await conn.close()
    into = new_name()
    restored.append(into)
    failed = await try_restore(agent, dump.name, into)
    assert failed.kind is ReplyKind.ERROR
    assert re.search(rf"pg_restore failed: .*{owner}.*half-made database '{into}' was dropped", failed.text)
    assert not await database_exists(pg_admin_dsn, into)

    clean = await make_backup(agent)
    conn = await asyncpg.connect(dsn)
    try:
        # A view made after the backup depends on orders, so dropping orders fails halfway through the restore.
        await conn.execute("DELETE FROM orders WHERE id > 45; CREATE SCHEMA later; "
                           "CREATE VIEW later.v AS SELECT count(*) FROM public.orders")
    finally:
        await conn.close()
    before = await table_checksums(dsn)
    failed = await try_restore(agent, clean.name, str(database_name(dsn)), overwrite=True)
    assert failed.kind is ReplyKind.ERROR and "rolled back, so the database is as it was" in failed.text
    assert await table_checksums(dsn) == before and before["public.orders"][0] == 45


async def test_a_backup_swapped_after_it_was_shown_is_refused(
        shop: tuple[str, Agent, Path], restored: list[str], pg_admin_dsn: str) -> None:
    _, agent, _ = shop
    first = await make_backup(agent)
    second = await make_backup(agent)
    into = new_name()
    restored.append(into)
    db = agent.databases.get("shop")
    action, _ = await propose_restore_action(db, settings=agent.settings, file=first.name, into=into,
                                             overwrite=False, thread_key="t", requested_by=OPERATOR, role=None)
    # Someone replaces the file (and its manifest) by another valid backup before the click.
    shutil.copy(second, first)
    manifest_path(first).write_text(read_manifest(second).model_copy(update={"file": first.name})
                                    .model_dump_json(by_alias=True))
    assert agent.approvals is not None
    reply = await agent.approvals.run_as_operator(action, operator=OPERATOR)
    assert reply.kind is ReplyKind.ERROR and "not the backup that was shown for approval" in reply.text
    assert not await database_exists(pg_admin_dsn, into)


async def test_backups_are_private_to_pgbots_user(shop: tuple[str, Agent, Path]) -> None:
    """A backup holds every row: the dump and its manifest are 0600 in a 0700 folder, whatever the umask, and
    an existing folder others could enter is closed."""
    import os
    import stat

    _, agent, folder = shop
    old_umask = os.umask(0o022)  # the usual umask, which made backups world-readable (0644 in 0755)
    try:
        dump = await make_backup(agent)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        for path in (dump, manifest_path(dump)):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        folder.chmod(0o755)
        second = await make_backup(agent)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(second.stat().st_mode) == 0o600
