"""A sales table whose rows each database role sees differently (row-level security), for chart tests that
must prove a query ran as the person who clicked: the asker's role sees 2 regions, the clicker's 3, and a
third role may not read the table at all. Also the PNG checks the chart tests share."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from tests.services import throwaway_role

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SALES_SQL = "SELECT region, sum(amount) AS revenue_usd FROM sales GROUP BY region ORDER BY region"


@dataclass(frozen=True, slots=True)
class SalesRoles:
    asker: str  # sees north and south
    clicker: str  # sees east, west and central
    outsider: str  # no SELECT on sales


@asynccontextmanager
async def sales_roles(dsn: str, admin_dsn: str) -> AsyncIterator[SalesRoles]:
    """Three roles on ``dsn`` and a ``sales`` table under row-level security (``seen_by = current_user``)."""
    grant = "GRANT SELECT ON sales TO {role}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE sales (region text NOT NULL, amount int NOT NULL, seen_by text NOT NULL);"
                           "ALTER TABLE sales ENABLE ROW LEVEL SECURITY;"
                           "CREATE POLICY own_rows ON sales USING (seen_by = current_user)")
    finally:
        await conn.close()
    async with (throwaway_role(dsn, admin_dsn, prefix="pgbot_asker", grants=grant) as asker,
                throwaway_role(dsn, admin_dsn, prefix="pgbot_clicker", grants=grant) as clicker,
                throwaway_role(dsn, admin_dsn, prefix="pgbot_outsider") as outsider):
        conn = await asyncpg.connect(dsn)
        try:
            await conn.executemany("INSERT INTO sales VALUES ($1, $2, $3)", [
                ("north", 120, asker), ("south", 80, asker),
                ("east", 10, clicker), ("west", 20, clicker), ("central", 30, clicker),
            ])
        finally:
            await conn.close()
        yield SalesRoles(asker=asker, clicker=clicker, outsider=outsider)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature: the bytes are a real PNG."""
    assert data[:8] == PNG_SIGNATURE, data[:16]
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def png_software(data: bytes) -> str:
    """The PNG's ``Software`` text chunk: matplotlib's Agg canvas writes its name and version there."""
    at = 8
    while at < len(data):
        length = struct.unpack(">I", data[at:at + 4])[0]
        kind = data[at + 4:at + 8]
        if kind == b"tEXt":
            key, _, value = data[at + 8:at + 8 + length].partition(b"\x00")
            if key == b"Software":
                return value.decode("latin-1")
        at += 12 + length
    return ""
