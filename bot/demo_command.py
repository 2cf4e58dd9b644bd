"""``pgbot demo``: works on a fresh machine with nothing set up by hand.

Uses the configured databases when there are any; otherwise starts an embedded PostgreSQL (the pgserver
wheel), loads the sample shop and chats with it. With no model configured it says what to set, and the
slash commands still work.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
from pydantic import SecretStr

from bot.commands import chat, load_for_cli
from core.config import DatabaseSettings


async def demo(*, config: str | None, data_dir: Path | None, load_sample: bool = False) -> int:
    from bot.demo import load_demo

    settings = load_for_cli(config)
    if settings.databases:
        if load_sample:  # e.g. the docker-compose Postgres: fill the default database with the sample shop
            name = settings.default_database
            assert name is not None  # databases is not empty
            conn = await asyncpg.connect(settings.databases[name].dsn.get_secret_value())
            try:
                await load_demo(conn)  # refuses to touch existing tables of the same names
            finally:
                await conn.close()
        return await chat(config=config, database=None, settings=settings)
    from bot.embedded import start_embedded_postgres

    print("Starting an embedded PostgreSQL with the sample shop database (first start takes a few seconds)…")
    # None: bot.embedded.default_data_dir decides (~/.pgbot/embedded, as root /var/lib/pgbot/embedded).
    server = await start_embedded_postgres(data_dir)
    try:
        conn = await asyncpg.connect(server.dsn)
        try:
            await load_demo(conn)
        finally:
            await conn.close()
        settings.databases = {
            "demo": DatabaseSettings(dsn=SecretStr(server.dsn), default=True,
                                     description="sample shop: customers, products, orders, reviews"),
        }
        return await chat(config=config, database=None, settings=settings)
    finally:
        await server.stop()
