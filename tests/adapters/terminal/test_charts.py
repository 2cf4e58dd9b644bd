"""Charts in the terminal, as real ``pgbot`` processes: the PNG is written to a file whose path is shown,
under ``[charts] dir`` or the exports folder; results that cannot be drawn say why, never a traceback."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests import llm_server as llm
from tests.adapters.chart_env import png_size
from tests.helpers import load_shop
from tests.integration.test_cli import config, run_pgbot, run_pgbot_with_input


async def test_ask_writes_the_chart_beside_the_exports_and_names_it_in_json(
    tmp_path: Path, fresh_db: str, llm_server: llm.ScriptedLlmServer
) -> None:
    await load_shop(fresh_db)
    sql = "SELECT created_at::date AS day, count(*) AS orders FROM orders GROUP BY 1 ORDER BY 1"
    llm_server.script(llm.tool_call("run_query", {"sql": sql}), llm.text("One order a day."))
    path = config(tmp_path, f'[llm]\nbase_url = "{llm_server.base_url}"\napi_key = "sk-test"\n'
                            f'[databases.shop]\ndsn = "{fresh_db}"\n[limits]\nexport_dir = "out"\n')
    code, out, err = await run_pgbot("ask", "plot orders per day", "--format", "json", "--config", str(path),
                                     home=tmp_path)
    assert code == 0, err
    chart = json.loads(out)["chart"]
    assert chart["kind"] == "line" and chart["title"] == "Orders per day" and chart["notes"] == []
    written = Path(chart["path"])
    assert written.parent == tmp_path / "out" and written.name.startswith("shop-")
    assert png_size(written.read_bytes()) == (1000, 600)  # noqa: ASYNC240 - a test reading back a small file
    assert stat.S_IMODE(written.stat().st_mode) == 0o600  # noqa: ASYNC240 - owner only, like exports


async def test_chart_command_draws_queries_and_explains_what_it_cannot_draw(tmp_path: Path, fresh_db: str) -> None:
    await load_shop(fresh_db)
    path = config(tmp_path, f'[databases.shop]\ndsn = "{fresh_db}"\n[charts]\ndir = "charts"\nwidth_px = 640\n'
                            'height_px = 400\n')
    by_status = "SELECT status, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1"
    script = "\n".join([
        "/chart",  # no answer in this session yet
        f"/chart bar {by_status}",
        f"/chart scatter {by_status}",  # a kind that does not fit: drawn as a bar chart, with a note
        "/chart SELECT count(*) AS n FROM orders",  # one row
        "/chart SELECT status FROM orders",  # no number
        "/chart DELETE FROM orders",  # the read path's guard, as for /sql
        "/quit",
    ]) + "\n"
    code, out, err = await run_pgbot_with_input("chat", "--config", str(path), home=tmp_path, stdin=script)
    assert code == 0, err
    flat = " ".join(out.split())
    assert "Usage: /chart [line|bar|scatter] [SELECT …]" in flat
    assert flat.count("Chart (bar) saved to") == 2
    assert "Drawn as a bar chart instead of a scatter chart: a scatter chart needs two numbers" in flat
    assert "The result has one row: a chart needs at least two rows to compare." in flat
    assert "The result has no numeric column to draw (columns: status)." in flat
    assert "Refused" in flat
    assert "Traceback" not in out + err
    files = sorted((tmp_path / "charts").glob("shop-*-chart-bar.png"))
    assert len(files) == 2
    assert {png_size(f.read_bytes()) for f in files} == {(640, 400)}
