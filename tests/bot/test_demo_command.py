"""``pgbot demo`` without ``--data-dir`` keeps the embedded server where bot.embedded puts it.

Under root that is /var/lib/pgbot/embedded, not root's home: pgserver opens traverse permission on every parent
of the data directory. demo once passed its own ``~/.pgbot/embedded``, which undid that.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import bot.embedded
from bot.demo_command import demo
from core.errors import DatabaseUnavailableError


async def test_demo_leaves_the_data_dir_to_the_embedded_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, restore_logging: None,
) -> None:
    asked: list[Path | None] = []

    async def start_embedded_postgres(data_dir: Path | None = None) -> bot.embedded.EmbeddedPostgres:
        asked.append(data_dir)  # stop before a server starts: only the argument matters here
        raise DatabaseUnavailableError("not started in this test")

    monkeypatch.setattr(bot.embedded, "start_embedded_postgres", start_embedded_postgres)
    config = tmp_path / "pgbot.toml"
    config.write_text("", encoding="utf-8")  # no [databases]: the demo takes the embedded path
    with pytest.raises(DatabaseUnavailableError):
        await demo(config=str(config), data_dir=None)
    with pytest.raises(DatabaseUnavailableError):
        await demo(config=str(config), data_dir=tmp_path / "mine")
    assert asked == [None, tmp_path / "mine"]
