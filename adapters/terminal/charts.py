"""Charts in the terminal: the PNG goes to a file, and the reply says where.

The folder is ``[charts] dir``, else the one CSV exports use (``[limits] export_dir``). Files are created
new (never overwriting one) and readable by their owner only, like exports: a chart shows data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from pathlib import Path

from core import ChartImage, Settings


def chart_dir(settings: Settings) -> Path:
    return settings.charts.dir or settings.limits.export_dir


async def save_chart(chart: ChartImage, *, directory: Path, database: str | None) -> Path:
    """Write the PNG under ``directory`` as ``<database>-<UTC time>-<random>-<kind>.png``; returns its path."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    name = f"{database or 'result'}-{stamp}-{uuid.uuid4().hex[:8]}-{chart.filename}"

    def write() -> Path:
        folder = directory.expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(chart.png)
        return path

    return await asyncio.to_thread(write)
