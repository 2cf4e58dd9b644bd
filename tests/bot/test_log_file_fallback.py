"""An unwritable log file (read-only root filesystem in deploy/k8s) sends the log to stderr, not a traceback."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
from pathlib import Path

import structlog

from bot.logs import configure_logging
from core import Settings
from tests.helpers import load_shop


def unwritable_log_path(tmp_path: Path) -> Path:
    """A path whose folder cannot be created even by root: its parent is a regular file."""
    blocker = tmp_path / "home"
    blocker.write_text("not a directory")
    return blocker / ".pgbot" / "pgbot.log"


def test_configure_logging_falls_back_to_the_stream_with_a_warning(tmp_path: Path, restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(Settings(), stream=stream, file=unwritable_log_path(tmp_path))
    structlog.get_logger("test").info("after_fallback")
    logging.getLogger("somelib").warning("stdlib_after_fallback")
    text = stream.getvalue()
    assert "log_file_unwritable" in text and str(tmp_path / "home") in text
    assert "after_fallback" in text and "stdlib_after_fallback" in text


async def test_pgbot_ask_runs_with_an_unwritable_home(tmp_path: Path, fresh_db: str) -> None:
    """`kubectl exec … pgbot ask "/tables"` in a pod whose root filesystem (and so $HOME) is read-only."""
    await load_shop(fresh_db)
    config = tmp_path / "pgbot.toml"
    config.write_text(f'[databases.shop]\ndsn = "{fresh_db}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGBOT_", "OPENAI_"))}
    env["HOME"] = str(unwritable_log_path(tmp_path).parent.parent)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "ask", "/tables", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=str(tmp_path),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert "public.orders" in out.decode()
    assert "log_file_unwritable" in err.decode() and "Traceback" not in (out + err).decode()
