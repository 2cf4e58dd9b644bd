"""What a backup or restore must refuse: unreadable tables, old clients, full disks; and secrets stay hidden."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.wiring import build_agent
from core import ReplyKind
from core.backups.actions import propose_backup_action
from core.backups.clients import choose_client
from core.backups.conninfo import client_target
from core.backups.create import check_free_space, run_pg_dump
from core.backups.verify import verify_backup
from core.config import BackupSettings
from core.errors import BackupError
from tests.integration.backup_env import backup_settings, files_in, seed
from tests.integration.change_env import ANALYST, DBA, ChangeEnv, change_env_fixture  # noqa: F401 - fixture
from tests.integration.test_backups import OPERATOR, make_backup

PG15_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "s3cretPassw0rd-backup"


async def test_a_user_whose_role_cannot_read_a_table_is_refused(change_env: ChangeEnv, tmp_path: Path) -> None:
    settings = change_env.settings()
    settings.backups = BackupSettings(dir=tmp_path / "b")
    agent = change_env.agent(settings)
    db = agent.databases.get("shop")
    with pytest.raises(BackupError, match=r"cannot read every table.*public\.secrets \(no SELECT\)") as refused:
        await propose_backup_action(db, settings=settings, thread_key="t", requested_by=ANALYST,
                                    role=change_env.analyst)
    assert "public.items" not in refused.value.user_message  # only the tables it cannot read are named
    assert not (tmp_path / "b").exists() or not list((tmp_path / "b").iterdir())
    # The dba can read everything: offered for approval.
    action, text = await propose_backup_action(db, settings=settings, thread_key="t", requested_by=DBA,
                                               role=change_env.dba)
    assert action.operation == "backup" and f"your role {change_env.dba} can read every table" in text


async def test_row_level_security_counts_as_unreadable(change_env: ChangeEnv, tmp_path: Path) -> None:
    conn = await asyncpg.connect(change_env.dsn)
    try:
        await conn.execute(f'ALTER TABLE items ENABLE ROW LEVEL SECURITY; GRANT SELECT ON secrets TO '
                           f'"{change_env.analyst}"')
    finally:
        await conn.close()
    settings = change_env.settings()
    settings.backups = BackupSettings(dir=tmp_path)
    db = change_env.agent(settings).databases.get("shop")
    with pytest.raises(BackupError, match=r"public\.items \(row-level security hides rows\)"):
        await propose_backup_action(db, settings=settings, thread_key="t", requested_by=ANALYST,
                                    role=change_env.analyst)


@pytest.fixture
async def pg16_server() -> AsyncIterator[str]:
    """A private PostgreSQL 16 from the pgserver wheel (never the shared server); stopped afterwards.

    Its data lives outside pytest's tmp folders: concurrent pytest runs reset those to 0700, which locks out
    the ``pgserver`` system user Postgres runs as under root."""
    pytest.importorskip("pgserver", reason="the pgserver wheel (PostgreSQL 16) is not installed")
    if not (PG15_BIN / "pg_dump").exists():
        pytest.skip("no PostgreSQL 15 client in /usr/lib/postgresql/15/bin to play the older client")
    from bot.embedded import start_embedded_postgres

    data = Path(tempfile.mkdtemp(prefix="pgbot-test-pg16-"))
    try:
        server = await start_embedded_postgres(data / "data")
        try:
            yield server.dsn_for("postgres")
        finally:
            await server.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)


async def test_a_client_older_than_the_server_is_refused(pg16_server: str, tmp_path: Path) -> None:
    settings = backup_settings(pg16_server, tmp_path, pg_bin_dir=str(PG15_BIN))
    agent = build_agent(settings, use_llm=False)
    try:
        with pytest.raises(BackupError) as refused:
            await propose_backup_action(agent.databases.get("shop"), settings=settings, thread_key="t",
                                        requested_by=OPERATOR, role=None)
    finally:
        await agent.aclose()
    text = refused.value.user_message
    assert "pg_dump available is 15." in text and "older than PostgreSQL 16" in text
    assert "postgresql-client-16" in text and "pg_bin_dir" in text
    assert files_in(tmp_path, "*.dump*") == []


async def test_no_client_at_all_is_a_clear_refusal(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match=r"No pg_dump was found in \[backups\] pg_bin_dir"):
        await choose_client("pg_dump", pg_bin_dir=tmp_path, server_major=15)


async def test_pg_restore_older_than_the_dump_is_refused(fresh_db: str, tmp_path: Path) -> None:
    await seed(fresh_db)
    agent = build_agent(backup_settings(fresh_db, tmp_path), use_llm=False)
    try:
        dump = await make_backup(agent)
    finally:
        await agent.aclose()
    made_by = json.loads(dump.with_name(dump.name + ".json").read_text())["pg_dump_version"]
    if int(made_by.split(".")[0]) <= 15 or not (PG15_BIN / "pg_restore").exists():
        pytest.skip(f"the dump was made by pg_dump {made_by}; no newer dump to refuse with pg_restore 15")
    with pytest.raises(BackupError, match=rf"pg_restore available is 15\..*the dump was made by pg_dump {made_by}"):
        await verify_backup(dump, settings=BackupSettings(dir=tmp_path, pg_bin_dir=PG15_BIN))


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KB file system (tmpfs), so the disk really fills; skipped where mounting is not allowed."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True,
                          check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()[:200]}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


async def test_a_full_disk_is_found_before_the_dump_and_reported_when_hit(
        fresh_db: str, tiny_disk: Path) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("CREATE TABLE big AS SELECT g, md5(g::text) || md5((g * 7)::text) AS t "
                           "FROM generate_series(1, 20000) g")
    finally:
        await conn.close()
    settings = backup_settings(fresh_db, tiny_disk)
    agent = build_agent(settings, use_llm=False)
    try:
        db = agent.databases.get("shop")
        with pytest.raises(BackupError, match="Not enough free space for this backup"):
            await propose_backup_action(db, settings=settings, thread_key="t", requested_by=OPERATOR, role=None)
        # The same disk filling up during the dump (space taken after the check): pg_dump's ENOSPC, said plainly.
        client = await choose_client("pg_dump", pg_bin_dir=None, server_major=15)

        async def report(_: str) -> None:
            return None

        with pytest.raises(BackupError, match=f"The disk holding {tiny_disk} is full"):
            await run_pg_dump(client, client_target(fresh_db), output=tiny_disk / "x.dump.partial", snapshot=None,
                              tables=1, settings=settings.backups, report=report)
    finally:
        await agent.aclose()
    with pytest.raises(BackupError, match="Not enough free space"):
        check_free_space(tiny_disk, needed=0)  # 64 KB is below the safety margin whatever the database


async def test_the_dsn_password_never_reaches_messages_files_or_the_audit_trail(
        fresh_db: str, tmp_path: Path) -> None:
    parts = urlsplit(fresh_db)
    with_password = urlunsplit((parts.scheme, parts.netloc.replace("@", f":{PASSWORD}@", 1), parts.path,
                                parts.query, ""))
    await seed(fresh_db)
    target = client_target(with_password)
    assert PASSWORD not in target.uri and target.env["PGPASSWORD"] == PASSWORD
    assert target.scrub(f"FATAL: password {PASSWORD} rejected") == "FATAL: password *** rejected"
    agent = build_agent(backup_settings(with_password, tmp_path), use_llm=False)
    try:
        db = agent.databases.get("shop")
        action, text = await propose_backup_action(db, settings=agent.settings, thread_key="t",
                                                   requested_by=OPERATOR, role=None)
        assert PASSWORD not in action.sql + text
        assert agent.approvals is not None
        reply = await agent.approvals.run_as_operator(action, operator=OPERATOR)
        assert reply.kind is ReplyKind.OUTCOME and PASSWORD not in reply.text
    finally:
        await agent.aclose()
    for file in files_in(tmp_path):
        assert PASSWORD.encode() not in file.read_bytes()
    conn = await asyncpg.connect(fresh_db)
    try:
        logged = await conn.fetchval("SELECT string_agg(sql || coalesce(result, ''), ' ') FROM pgbot.audit")
    finally:
        await conn.close()
    assert "pg_dump" in logged and PASSWORD not in logged


async def test_a_locked_table_fails_the_backup_in_time_and_a_stuck_pg_dump_is_killed(
        fresh_db: str, tmp_path: Path) -> None:
    await seed(fresh_db)
    holder = await asyncpg.connect(fresh_db)
    tx = holder.transaction()
    await tx.start()
    await holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
    agent = build_agent(backup_settings(fresh_db, tmp_path, lock_wait_timeout_ms=300, timeout_s=2), use_llm=False)
    try:
        db = agent.databases.get("shop")
        action, _ = await propose_backup_action(db, settings=agent.settings, thread_key="t", requested_by=OPERATOR,
                                                role=None)
        assert agent.approvals is not None
        reply = await agent.approvals.run_as_operator(action, operator=OPERATOR)
        assert reply.kind is ReplyKind.ERROR and "lock timeout" in reply.text, reply.text
        assert files_in(tmp_path) == []  # no partial file left behind

        # pg_dump itself waiting on the lock past [backups] timeout_s: stopped, and its session is gone.
        client = await choose_client("pg_dump", pg_bin_dir=None, server_major=15)
        slow = BackupSettings(dir=tmp_path, timeout_s=1, lock_wait_timeout_ms=60_000)

        async def report(_: str) -> None:
            return None

        with pytest.raises(BackupError, match=r"took longer than 1 s \(\[backups\] timeout_s\) and was stopped"):
            await run_pg_dump(client, client_target(fresh_db, server_major=15), output=tmp_path / "x.dump.partial",
                              snapshot=None, tables=1, settings=slow, report=report)
        # (polled from a fresh connection: inside a transaction pg_stat_activity is a cached snapshot)
        sessions = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbot:backup'"
        watcher = await asyncpg.connect(fresh_db)
        try:
            for _ in range(150):  # client_connection_check_interval: the server drops the session within ~2 s
                if not await watcher.fetchval(sessions + " AND datname = current_database()"):
                    break
                await asyncio.sleep(0.1)
            assert await watcher.fetchval(sessions + " AND datname = current_database()") == 0
        finally:
            await watcher.close()
    finally:
        await tx.rollback()
        await holder.close()
        await agent.aclose()
