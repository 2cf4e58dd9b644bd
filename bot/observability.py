"""``[observability] port``: /healthz, /readyz and Prometheus /metrics for the long-running bots.

/healthz says the process is alive (liveness: restart me if this fails); /readyz checks every configured
database, the context store (Redis when configured) and the chat connection the running adapter reports
(readiness: send me work; 503 with one line per problem, never a secret); /metrics is the agent's own
Prometheus registry (core.ops.metrics).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from core import Agent, PgbotError
from core.ops.metrics import CONTENT_TYPE
from core.sqlguard import CheckedSql

CHECK_TIMEOUT_S = 5.0
READY_PROBE_THREAD = "pgbot:readyz"


class ObservabilityServer:
    def __init__(self, agent: Agent, *, host: str = "0.0.0.0", port: int) -> None:
        self.agent = agent
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        if self.port == 0:  # tests ask for a free port
            self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        problems = await readiness_problems(self.agent)
        if problems:
            return web.Response(status=503, text="".join(f"{line}\n" for line in problems))
        return web.Response(text="ready\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        body = self.agent.ops.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def readiness_problems(agent: Agent) -> list[str]:
    """One secret-free line per dependency that does not answer; a draining replica is never ready, so the
    load balancer (or Kubernetes) stops sending it work while it finishes what it has."""
    if agent.inflight.closing:
        return ["shutting down: finishing work in flight, taking no new messages"]

    async def database(name: str) -> str | None:
        try:
            probe = agent.databases.get(name).fetch(CheckedSql.trusted("SELECT 1"), role=None)
            await asyncio.wait_for(probe, CHECK_TIMEOUT_S)
        except PgbotError as exc:
            return f"database {name}: {exc.user_message}"
        except TimeoutError:
            return f"database {name}: no answer within {CHECK_TIMEOUT_S:g} s"
        return None

    async def context_store() -> str | None:
        try:
            await asyncio.wait_for(agent.store.get_database(READY_PROBE_THREAD), CHECK_TIMEOUT_S)
        except PgbotError as exc:
            return f"context store: {exc.user_message}"
        except TimeoutError:
            return f"context store: no answer within {CHECK_TIMEOUT_S:g} s"
        return None

    results = await asyncio.gather(*(database(n) for n in agent.databases.names), context_store())
    return [line for line in results if line is not None] + await agent.ops.health.problems()
