"""CSV export of a whole query result, streamed from Postgres to a file without holding rows in memory.

Why COPY: ``COPY (query) TO STDOUT`` makes Postgres itself produce the CSV (quoting, NULLs, bytea hex,
timestamps) at full speed, and asyncpg hands it over in chunks; pgbot only appends the chunks to a file,
so a million-row export costs a megabyte of buffer, not a million Python tuples. It runs exactly like a
read: the guard checks the SQL first, then a READ ONLY transaction with ``SET LOCAL ROLE`` and the
statement timeout. A size cap aborts the COPY on the server (asyncpg cancels it) and removes the file.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

import asyncpg

from core.db.base import PostgresDatabase
from core.db.postgres import SQL_TAG, QueryLimits, rows_from_status
from core.errors import PgbotError
from core.messages import ExportFile, new_id
from core.sqlguard import CheckedSql

FLUSH_BYTES = 1 << 20  # chunks are gathered to 1 MiB, then written by a worker thread (the loop never waits on disk)


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    rows: int
    bytes: int
    duration_ms: float
    sql: str

    def summary(self) -> str:
        """For people and the model alike: never the file's path (it is on pgbot's host, not theirs)."""
        return f"Exported {self.rows:,} row{'s' if self.rows != 1 else ''} ({human_size(self.bytes)}) as CSV"

    def file(self, *, private: bool = False) -> ExportFile:
        """What an adapter needs to deliver the file: it uploads it in chat; the terminal names the path."""
        return ExportFile(path=self.path, rows=self.rows, size_bytes=self.bytes, private=private)


class _FileSink:
    """Receives COPY chunks; writes them to ``path`` in 1 MiB pieces off the event loop; enforces a cap."""

    def __init__(self, path: Path, *, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self._buffer = bytearray()
        self._file: IO[bytes] | None = None

    async def open(self) -> None:
        def create() -> IO[bytes]:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # exports hold data: owner only
            return os.fdopen(fd, "wb")

        self._file = await asyncio.to_thread(create)

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise PgbotError(f"The export passed the configured limit of {human_size(self.max_bytes)} and was "
                             "stopped; narrow the query (fewer rows or columns).")
        self._buffer += chunk
        if len(self._buffer) >= FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self._buffer and self._file is not None:
            data, self._buffer = bytes(self._buffer), bytearray()
            await asyncio.to_thread(self._file.write, data)

    async def close(self) -> None:
        await self._flush()
        if self._file is not None:
            await asyncio.to_thread(self._file.close)
            self._file = None

    async def discard(self) -> None:
        """Close and delete a partial file (shielded: runs even when the turn was cancelled)."""
        file, self._file = self._file, None
        self._buffer = bytearray()

        def remove() -> None:
            if file is not None:
                file.close()
            self.path.unlink(missing_ok=True)

        await asyncio.shield(asyncio.to_thread(remove))


def export_limits(db: PostgresDatabase) -> QueryLimits:
    timeout = db.settings.export_timeout_ms
    return replace(db.limits, statement_timeout_ms=timeout or db.limits.statement_timeout_ms, label="export")


def export_path(directory: Path, database: str) -> Path:
    """A unique, sortable name: ``<database>-<UTC time>-<random>.csv`` under ``directory``."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return directory.expanduser().resolve() / f"{database}-{stamp}-{new_id()}.csv"


async def export_csv(
    db: PostgresDatabase, *, checked: CheckedSql, role: str | None, directory: Path, max_bytes: int,
    limits: QueryLimits | None = None,
) -> ExportResult:
    """Stream the result of one checked read to a new CSV file (header row included)."""
    checked = CheckedSql.require(checked, path="read", where="export_csv")
    sql = checked.sql
    started = time.perf_counter()
    sink = _FileSink(export_path(directory, db.name), max_bytes=max_bytes)
    await sink.open()

    async def work(conn: asyncpg.Connection) -> str:
        # The newline keeps a trailing "-- comment" in the user's SQL from swallowing COPY's parenthesis.
        status: str = await conn.copy_from_query(SQL_TAG + sql + "\n", output=sink.write, format="csv", header=True)
        return status

    try:
        status = await db.run(work, role=role, limits=limits or export_limits(db), read_only=True, guarded=checked)
        await sink.close()
    except BaseException:
        await sink.discard()
        raise
    return ExportResult(path=sink.path, rows=rows_from_status(status) or 0, bytes=sink.size,
                        duration_ms=(time.perf_counter() - started) * 1000, sql=sql)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{size} bytes"
