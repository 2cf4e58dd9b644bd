"""``pgbot migrate status|up|down`` on hand-written files (real Postgres; the command as a subprocess and as
``migrate_main`` with an answer at the prompt)."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from pathlib import Path

import asyncpg
import pytest

from bot.cli import report_failure
from bot.migrations_cli import migrate_main
from core.config import Settings
from core.errors import ConfigError, MigrationFileError
from tests.integration.test_cli import assert_clean, config, run_pgbot

WIDGETS_UP = "CREATE TABLE widgets (id int PRIMARY KEY, name text NOT NULL);\nINSERT INTO widgets VALUES (1, 'a');\n"
WIDGETS_DOWN = "DROP TABLE widgets;\n"
COLOR_UP = "ALTER TABLE widgets ADD COLUMN color text DEFAULT 'red';\n"
COLOR_DOWN = "ALTER TABLE widgets DROP COLUMN color;\n"


def write(folder: Path, label: str, up: str, down: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{label}.up.sql").write_text(up, encoding="utf-8")
    if down is not None:
        (folder / f"{label}.down.sql").write_text(down, encoding="utf-8")


def two_migrations(folder: Path) -> None:
    write(folder, "0001_create_widgets", WIDGETS_UP, WIDGETS_DOWN)
    write(folder, "0002_add_widget_color", COLOR_UP, COLOR_DOWN)


async def fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def recorded(dsn: str) -> list[str]:
    rows = await fetch(dsn, "SELECT to_regclass('pgbot.migrations') IS NOT NULL AS present")
    if not rows[0]["present"]:
        return []
    return [f"{r['version']:04d}_{r['name']}" for r in await fetch(dsn, "SELECT version, name FROM "
                                                                      "pgbot.migrations ORDER BY version")]


def settings(dsn: str, folder: Path | None) -> Settings:
    db: dict[str, object] = {"dsn": dsn}
    if folder is not None:
        db["migrations_dir"] = str(folder)
    return Settings(databases={"shop": db})


async def test_up_with_yes_applies_in_order_records_and_audits_then_down_to_zero(
        fresh_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "migrations"
    two_migrations(folder)
    path = config(tmp_path, f'[databases.shop]\ndsn = "{fresh_db}"\nmigrations_dir = "{folder}"\n')
    code, out, err = await run_pgbot("migrate", "up", "--yes", "--config", str(path), home=tmp_path)
    assert code == 0, err
    assert_clean(out + err)
    assert "Up (what runs when approved):" in out and "ACCESS EXCLUSIVE lock on widgets" in out
    assert out.index("applied 0001_create_widgets (2 statements)") < out.index("applied 0002_add_widget_color")
    assert await recorded(fresh_db) == ["0001_create_widgets", "0002_add_widget_color"]
    assert [tuple(r) for r in await fetch(fresh_db, "SELECT id, name, color FROM widgets")] == [(1, "a", "red")]
    operator = f"cli:{getpass.getuser()}"
    rows = await fetch(fresh_db, "SELECT applied_by FROM pgbot.migrations")
    assert {r["applied_by"] for r in rows} == {operator}
    events = await fetch(fresh_db, "SELECT event, decided_by FROM pgbot.audit ORDER BY id")
    assert [r["event"] for r in events] == ["requested", "approved", "executed"] * 2
    assert {r["decided_by"] for r in events if r["event"] == "approved"} == {operator}

    capsys.readouterr()
    assert await migrate_main(settings(fresh_db, folder), action="status", database=None, yes=False, to=None) == 0
    out = capsys.readouterr().out
    assert "0 pending." in out and out.count(" applied ") == 2, out

    assert await migrate_main(settings(fresh_db, folder), action="down", database=None, yes=True, to=0) == 0
    out = capsys.readouterr().out
    assert out.index("rolled back 0002_add_widget_color") < out.index("rolled back 0001_create_widgets")
    assert "⚠ DATA LOSS: drops table widgets and all its data." in out
    assert await recorded(fresh_db) == []
    assert (await fetch(fresh_db, "SELECT to_regclass('widgets') AS t"))[0]["t"] is None


async def pgbot_with_input(*args: str, answer: str, home: Path) -> tuple[int, str, str]:
    """``pgbot`` as a subprocess with ``answer`` typed at its prompt (stdin)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGBOT_", "OPENAI_"))}
    env["HOME"] = str(home)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=str(home))
    out, err = await asyncio.wait_for(proc.communicate(answer.encode()), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_answering_no_at_the_prompt_runs_nothing(fresh_db: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    two_migrations(folder)
    path = config(tmp_path, f'[databases.shop]\ndsn = "{fresh_db}"\nmigrations_dir = "{folder}"\n')
    code, out, err = await pgbot_with_input("migrate", "up", "--config", str(path), answer="n\n", home=tmp_path)
    assert code == 1, err
    assert "Apply 2 migrations to 'shop'? [y/N] Cancelled: nothing was run." in out
    assert await recorded(fresh_db) == []
    assert (await fetch(fresh_db, "SELECT to_regclass('widgets') AS t"))[0]["t"] is None

    asked: list[str] = []

    def yes(prompt: str) -> str:
        asked.append(prompt)
        return "y"

    code = await migrate_main(settings(fresh_db, folder), action="up", database="shop", yes=False, to=1, ask=yes)
    assert code == 0 and asked == ["Apply 1 migration to 'shop'? [y/N] "]
    assert await recorded(fresh_db) == ["0001_create_widgets"]

    def no(prompt: str) -> str:
        asked.append(prompt)
        return "n"

    code = await migrate_main(settings(fresh_db, folder), action="down", database="shop", yes=False, to=0, ask=no)
    assert code == 1 and asked[1:] == ["Roll back 1 migration on 'shop'? [y/N] "]
    assert await recorded(fresh_db) == ["0001_create_widgets"]


async def test_an_applied_file_edited_afterwards_is_reported_and_blocks_up_and_down(
        fresh_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_create_widgets", WIDGETS_UP, WIDGETS_DOWN)
    assert await migrate_main(settings(fresh_db, folder), action="up", database=None, yes=True, to=None) == 0
    (folder / "0001_create_widgets.up.sql").write_text(WIDGETS_UP.replace("name text", "label text"),
                                                       encoding="utf-8")
    write(folder, "0002_add_widget_color", COLOR_UP, COLOR_DOWN)
    capsys.readouterr()
    assert await migrate_main(settings(fresh_db, folder), action="status", database=None, yes=False, to=None) == 1
    captured = capsys.readouterr()
    assert "CHANGED AFTER APPLY" in captured.out
    assert "0001_create_widgets was edited after it was applied" in captured.err
    for action in ("up", "down"):
        assert await migrate_main(settings(fresh_db, folder), action=action, database=None, yes=True, to=None) == 1
        assert "nothing was run" in capsys.readouterr().err
    assert await recorded(fresh_db) == ["0001_create_widgets"]
    columns = await fetch(fresh_db, "SELECT attname FROM pg_attribute WHERE attrelid = 'widgets'::regclass "
                                    "AND attnum > 0")
    assert "color" not in {r["attname"] for r in columns}


async def test_a_failing_migration_stops_the_run_and_leaves_nothing_half_done(
        fresh_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_create_widgets", WIDGETS_UP, WIDGETS_DOWN)
    write(folder, "0002_bad", "ALTER TABLE widgets ADD COLUMN size int;\nALTER TABLE nowhere ADD COLUMN x int;\n",
          "ALTER TABLE widgets DROP COLUMN size;\n")
    write(folder, "0003_later", "CREATE TABLE later (id int);\n", "DROP TABLE later;\n")
    code = await migrate_main(settings(fresh_db, folder), action="up", database=None, yes=True, to=None)
    assert code == 1
    err = capsys.readouterr().err
    assert 'relation "nowhere" does not exist' in err and "rolled back" in err
    assert "1 more migration(s) were not run" in err
    assert await recorded(fresh_db) == ["0001_create_widgets"]
    columns = await fetch(fresh_db, "SELECT attname FROM pg_attribute WHERE attrelid = 'widgets'::regclass "
                                    "AND attnum > 0")
    assert "size" not in {r["attname"] for r in columns}


async def test_without_migrations_dir_the_command_exits_2_naming_the_key(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError) as caught:  # raised before any connection is made
        await migrate_main(settings("postgresql://nobody@127.0.0.1:9/none", None), action="status", database=None,
                           yes=False, to=None)
    assert report_failure(caught.value) == 2  # the CLI's error policy: one line, exit code 2
    err = capsys.readouterr().err
    assert err.startswith("pgbot: databases.shop.migrations_dir is not set: add migrations_dir")


async def test_bad_files_are_refused_before_anything_runs(
        fresh_db: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_create_widgets", WIDGETS_UP, WIDGETS_DOWN)
    write(folder, "0002_typo", "ALTER TABLE widgets ADD COLUM x int;\n", None)
    (folder / "notes.sql").write_text("SELECT 1;\n", encoding="utf-8")
    code, _, err = await run_pgbot("migrate", "up", "--yes", "--config", str(config(
        tmp_path, f'[databases.shop]\ndsn = "{fresh_db}"\nmigrations_dir = "{folder}"\n')), home=tmp_path)
    assert code == 1
    assert "0002_typo: Postgres could not parse this SQL" in err and "Nothing was run." in err
    assert "ignored in" in err and "notes.sql" in err
    assert await recorded(fresh_db) == []

    write(folder, "0002_create_widgets_again", "SELECT 1;\n", None)
    with pytest.raises(MigrationFileError, match=r"Two migrations .* have number 0002"):
        await migrate_main(settings(fresh_db, folder), action="status", database=None, yes=False, to=None)


async def test_two_runs_at_once_apply_each_migration_exactly_once(
        fresh_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_counter", "CREATE TABLE runs (n int);\nINSERT INTO runs VALUES (1);\n", "DROP TABLE runs;\n")
    write(folder, "0002_index_runs", "CREATE INDEX CONCURRENTLY runs_n_idx ON runs (n);\n",
          "DROP INDEX CONCURRENTLY runs_n_idx;\n")
    codes = await asyncio.gather(*(
        migrate_main(settings(fresh_db, folder), action="up", database=None, yes=True, to=None) for _ in range(3)))
    err = capsys.readouterr().err
    # Whichever run plans before the others apply: a loser is refused under the advisory lock, never run twice.
    assert 0 in codes and set(codes) <= {0, 1}, err
    assert err.count("is already applied on this database; nothing was run") == codes.count(1), err
    assert await recorded(fresh_db) == ["0001_counter", "0002_index_runs"]
    assert (await fetch(fresh_db, "SELECT count(*) AS n FROM runs"))[0]["n"] == 1


async def test_a_failed_concurrent_build_says_what_it_left_behind(
        fresh_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_dupes", "CREATE TABLE dupes (n int);\nINSERT INTO dupes VALUES (1), (1);\n",
          "DROP TABLE dupes;\n")
    write(folder, "0002_unique_n", "CREATE UNIQUE INDEX CONCURRENTLY dupes_n_key ON dupes (n);\n",
          "DROP INDEX CONCURRENTLY dupes_n_key;\n")
    assert await migrate_main(settings(fresh_db, folder), action="up", database=None, yes=True, to=None) == 1
    err = capsys.readouterr().err
    assert "could not create unique index" in err and "leaves an INVALID index to drop" in err, err
    assert "rolled back" not in err  # it ran outside a transaction: nothing claims it was undone
    assert await recorded(fresh_db) == ["0001_dupes"]


async def test_migrations_run_under_their_own_timeout(fresh_db: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "migrations"
    write(folder, "0001_slow", "DO $$ BEGIN PERFORM pg_sleep(0.4); END $$;\nCREATE TABLE slow (id int);\n",
          "DROP TABLE slow;\n")
    quick = Settings(databases={"shop": {"dsn": fresh_db, "migrations_dir": str(folder), "statement_timeout_ms": 100,
                                         "migration_timeout_ms": 100}})
    assert await migrate_main(quick, action="up", database=None, yes=True, to=None) == 1
    assert "statement timeout" in capsys.readouterr().err and await recorded(fresh_db) == []
    patient = Settings(databases={"shop": {"dsn": fresh_db, "migrations_dir": str(folder), "statement_timeout_ms": 100,
                                           "migration_timeout_ms": 5000}})
    assert await migrate_main(patient, action="up", database=None, yes=True, to=None) == 0
    assert await recorded(fresh_db) == ["0001_slow"]
