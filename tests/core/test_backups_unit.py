"""Pure logic of core.backups: DSN handling, safe file names, the folder listing, the restore entry filter."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from core.backups.clients import _VERSION_RE
from core.backups.conninfo import client_target, database_name, with_database
from core.backups.manifest import (
    Manifest,
    ensure_folder,
    human_size,
    list_folder,
    resolve_in_folder,
    write_manifest,
)
from core.backups.restore import _LIVE_AUDIT_RE, check_target_name
from core.errors import BackupError


def test_the_password_leaves_the_uri_and_goes_to_the_environment() -> None:
    target = client_target("postgresql://bot:p%40ss%2Fw@db.internal:6543/shop?sslmode=require")
    assert target.uri == "postgresql://bot@db.internal:6543/shop?sslmode=require"
    assert target.env["PGPASSWORD"] == "p@ss/w"
    assert target.scrub("auth failed for p@ss/w and p%40ss%2Fw") == "auth failed for *** and ***"
    in_query = client_target("postgresql://bot@h/shop?password=hunter2&application_name=x", dbname="copy")
    assert "hunter2" not in in_query.uri and in_query.env["PGPASSWORD"] == "hunter2"
    assert in_query.uri == "postgresql://bot@h/copy?application_name=x"
    assert "PGPASSWORD" not in client_target("postgresql://bot@h/shop").env or os.environ.get("PGPASSWORD")
    with pytest.raises(BackupError, match="postgresql:// URI"):
        client_target("host=h dbname=shop")


def test_database_names_are_read_and_replaced() -> None:
    assert database_name("postgresql://u:p@h:5432/shop") == "shop"
    assert database_name("postgresql://u@/x?host=/tmp/sock&port=5") == "x"
    assert database_name("postgresql://u@h") is None
    assert with_database("postgresql://u:p@h:1/shop?sslmode=disable", "shop copy") == (
        "postgresql://u:p@h:1/shop%20copy?sslmode=disable")


def test_client_versions_are_parsed() -> None:
    for text, major in (("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)", "15"),
                        ("pg_restore (PostgreSQL) 16.4", "16"), ("pg_dump (PostgreSQL) 17devel", "17")):
        match = _VERSION_RE.search(text)
        assert match is not None and match.group(1) == major


@pytest.mark.parametrize("name", ["../etc/passwd", "/etc/shadow.dump", "sub/x.dump", "x.sql", "", ".hidden.dump",
                                  "a\x00.dump"])
def test_chat_can_only_name_files_in_the_backup_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(BackupError):
        resolve_in_folder(tmp_path, name)


def test_a_listed_name_resolves(tmp_path: Path) -> None:
    (tmp_path / "shop-1.dump").write_bytes(b"PGDMP")
    assert resolve_in_folder(tmp_path, "shop-1.dump") == tmp_path / "shop-1.dump"
    assert resolve_in_folder(tmp_path, "shop-1.dump.json") == tmp_path / "shop-1.dump"
    with pytest.raises(BackupError, match="no backup named"):
        resolve_in_folder(tmp_path, "shop-2.dump")


def manifest(file: str, *, database: str = "shop", at: str = "2026-05-01T12:00:00+00:00") -> Manifest:
    return Manifest(file=file, database=database, dbname=database, created_at=dt.datetime.fromisoformat(at),
                    size_bytes=5, sha256="0" * 64, server_version="15.2", server_version_num=150002,
                    pg_dump_version="16.4", tables=[{"schema": "public", "name": "t", "rows": 3}])  # type: ignore[list-item]


def test_listing_is_newest_first_and_flags_what_cannot_be_trusted(tmp_path: Path) -> None:
    for name, at, db in (("shop-old.dump", "2026-01-01T00:00:00+00:00", "shop"),
                         ("shop-new.dump", "2026-06-01T00:00:00+00:00", "shop"),
                         ("crm-x.dump", "2026-03-01T00:00:00+00:00", "crm")):
        (tmp_path / name).write_bytes(b"PGDMP")
        write_manifest(manifest(name, database=db, at=at), tmp_path / name)
    (tmp_path / "shop-lost.dump").write_bytes(b"PGDMP")
    (tmp_path / "shop-broken.dump").write_bytes(b"PGDMP")
    (tmp_path / "shop-broken.dump.json").write_text("{not json")
    (tmp_path / "shop-z.dump.partial").write_bytes(b"PG")
    (tmp_path / "notes.txt").write_text("ignored")
    entries = list_folder(tmp_path)
    names = [e.path.name for e in entries]
    assert names.index("shop-new.dump") < names.index("crm-x.dump") < names.index("shop-old.dump")
    problems = {e.path.name: e.problem for e in entries}
    assert problems["shop-lost.dump"].startswith("no manifest")
    assert problems["shop-broken.dump"] == "manifest unreadable"
    assert problems["shop-z.dump.partial"].startswith("unfinished")
    assert "notes.txt" not in problems and problems["shop-new.dump"] == ""
    only_shop = {e.path.name for e in list_folder(tmp_path, database="shop")}
    assert "crm-x.dump" not in only_shop and {"shop-new.dump", "shop-lost.dump"} <= only_shop
    assert list_folder(tmp_path / "missing") == []
    newest = next(e for e in entries if e.path.name == "shop-new.dump")
    assert newest.manifest is not None and newest.manifest.total_rows == 3


def test_the_folder_is_created_or_refused_plainly(tmp_path: Path) -> None:
    assert ensure_folder(tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(BackupError, match="a part of the path is a file"):
        ensure_folder(tmp_path / "file" / "backups")
    with pytest.raises(BackupError, match="exists but is not a folder"):
        ensure_folder(tmp_path / "file")


def test_restore_targets_and_the_live_audit_filter() -> None:
    assert check_target_name(" shop_copy-2 ") == "shop_copy-2"
    for bad in ("", "1abc", 'x"; DROP DATABASE shop; --', "a" * 64, "with space"):
        with pytest.raises(BackupError, match="not a usable database name"):
            check_target_name(bad)
    kept = ["217; 1259 19460 TABLE public Odd Name postgres", "3354; 0 19460 TABLE DATA public orders postgres",
            "220; 1259 19470 TABLE pgbot migrations postgres", "3355; 0 19463 TABLE DATA pgbot auditor x"]
    dropped = ["6; 2615 19449 SCHEMA - pgbot postgres", "216; 1259 19451 TABLE pgbot audit postgres",
               "215; 1259 19450 SEQUENCE pgbot audit_id_seq postgres", "3353; 0 19451 TABLE DATA pgbot audit postgres",
               "3363; 0 0 SEQUENCE SET pgbot audit_id_seq postgres",
               "3209; 2606 19458 CONSTRAINT pgbot audit audit_pkey postgres",
               "3207; 1259 19459 INDEX pgbot audit_at_idx postgres", "3206; 2604 19454 DEFAULT pgbot audit id postgres",
               "3362; 0 0 SEQUENCE OWNED BY pgbot audit_id_seq postgres"]
    assert [e for e in kept if _LIVE_AUDIT_RE.match(e)] == []
    assert [e for e in dropped if not _LIVE_AUDIT_RE.match(e)] == []


def test_sizes_read_well() -> None:
    assert [human_size(n) for n in (0, 1023, 2048, 5 * 1024**3)] == ["0 B", "1023 B", "2.0 KB", "5.0 GB"]
