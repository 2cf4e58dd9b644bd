"""``[observability] port``: /healthz, /readyz and Prometheus /metrics for the long-running bots.

/healthz says the process is alive (liveness: restart me if this fails); /readyz asks the agent whether every
configured database, the context store (Redis when configured) and the chat connection the running adapter
reports answer (readiness: send me work; 503 with one line per problem, never a secret; core.ops.readiness);
/metrics is the agent's own Prometheus registry (core.ops.metrics). The server sees the agent only through
:class:`Observed`.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from core.ops.metrics import CONTENT_TYPE


class Observed(Protocol):
    """All the endpoints need from the agent (core.agent.loop.Agent): its readiness and its metrics."""

    async def readiness(self) -> list[str]: ...

    def metrics_text(self) -> bytes: ...


class ObservabilityServer:
    def __init__(self, agent: Observed, *, host: str = "0.0.0.0", port: int) -> None:
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
        problems = await self.agent.readiness()
        if problems:
            return web.Response(status=503, text="".join(f"{line}\n" for line in problems))
        return web.Response(text="ready\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.agent.metrics_text(), headers={"Content-Type": CONTENT_TYPE})
