"""Run pg_dump / pg_restore as a child process: no shell, secrets in the environment, stderr streamed.

The child is killed when the run times out or the awaiting task is cancelled, so an abandoned backup never
keeps writing in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from core.backups.clients import Client
from core.backups.conninfo import ClientTarget
from core.errors import BackupError

log = structlog.get_logger(__name__)

LineSink = Callable[[str], Awaitable[None]]
_TAIL_LINES = 12


@dataclass(frozen=True, slots=True)
class RunResult:
    returncode: int
    stdout: str
    errors: tuple[str, ...]  # the last stderr lines that are not --verbose chatter, scrubbed
    duration_s: float


async def run_client(
    client: Client, args: Sequence[str], *, target: ClientTarget, timeout_s: float, on_line: LineSink | None = None,
    what: str,
) -> RunResult:
    """Run ``client`` with ``args``; every stderr line (scrubbed) goes to ``on_line``; never a shell."""
    started = time.perf_counter()
    try:
        proc = await asyncio.create_subprocess_exec(
            str(client.path), *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=target.env)
    except OSError as exc:
        raise BackupError(f"{client.path.name} could not be started ({client.path}): {exc.strerror or exc}.") from exc
    assert proc.stdout is not None and proc.stderr is not None
    errors: deque[str] = deque(maxlen=_TAIL_LINES)

    async def read_stderr() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = target.scrub(raw.decode(errors="replace").rstrip())
            if not line:
                continue
            if not _is_chatter(line):
                errors.append(line)
            if on_line is not None:
                await on_line(line)

    async def communicate() -> tuple[bytes, int]:
        assert proc.stdout is not None
        out, _, code = await asyncio.gather(proc.stdout.read(), read_stderr(), proc.wait())
        return out, code

    try:
        out, code = await asyncio.wait_for(communicate(), timeout=timeout_s)
    except TimeoutError:
        await _kill(proc)
        raise BackupError(f"{what} took longer than {timeout_s:g} s ([backups] timeout_s) and was stopped.") from None
    except BaseException:
        await _kill(proc)
        raise
    return RunResult(returncode=code, stdout=target.scrub(out.decode(errors="replace")), errors=tuple(errors),
                     duration_s=time.perf_counter() - started)


def _is_chatter(line: str) -> bool:
    """--verbose progress lines are not errors; "error:"/"warning:"/"FATAL" lines are."""
    lowered = line.lower()
    return not any(word in lowered for word in ("error", "warning", "fatal", "could not", "failed", "no space"))


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        try:
            await asyncio.wait_for(proc.wait(), timeout=10)
        except TimeoutError:
            log.error("backup_child_did_not_exit", pid=proc.pid)
