"""Core never imports a chat SDK or an adapter, and the CLI loads no chat SDK until a chat command runs.

Each check runs in a fresh interpreter, so nothing this test process already imported can hide a leak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHAT_SDKS = ("slack_bolt", "slack_sdk", "discord")

_PROBE = """
import importlib, json, pkgutil, sys
targets = sys.argv[1].split(",")
imported = []
for target in targets:
    module = importlib.import_module(target)
    imported.append(target)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), target + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
print(json.dumps({"imported": imported, "modules": sorted(sys.modules)}))
"""


def _probe(*targets: str) -> tuple[list[str], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGBOT_")}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(targets)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["imported"], result["modules"]


def _top(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in names]


def test_every_core_module_imports_without_chat_sdks_or_adapters() -> None:
    files = [p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".") for p in (ROOT / "core").rglob("*.py")]
    expected = {m.removesuffix(".__init__") for m in files}  # listed first: files added meanwhile do not count
    imported, modules = _probe("core")
    assert expected <= set(imported), sorted(expected - set(imported))
    assert "core.agent.loop" in imported
    assert _top(modules, (*CHAT_SDKS, "adapters")) == []


def test_cli_import_loads_no_chat_sdk() -> None:
    imported, modules = _probe("bot.cli")
    assert imported == ["bot.cli"]
    assert _top(modules, CHAT_SDKS) == []
