"""Run the Slack app until cancelled: Socket Mode (app-level token) or HTTP mode (Events API at /slack/events).

HTTP mode also answers ``GET /healthz`` on the same port, for the load balancer in front of it; bolt checks
every POST's signature and refuses timestamps more than five minutes old (replays).
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from adapters.slack.app import build_slack_app
from core import Agent, ConfigError
from core.config import SlackSettings

log = structlog.get_logger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


def check_settings(settings: SlackSettings) -> None:
    """Fail before connecting, with one line naming the missing key and its environment variable."""
    if settings.bot_token is None or not settings.bot_token.get_secret_value():
        raise ConfigError("slack.bot_token is not set (PGBOT_SLACK__BOT_TOKEN)")
    if settings.mode == "socket" and (settings.app_token is None or not settings.app_token.get_secret_value()):
        raise ConfigError(
            "slack.app_token is not set (PGBOT_SLACK__APP_TOKEN); socket mode needs an app-level token (xapp-…), "
            'or set slack.mode = "http"'
        )
    if settings.mode == "http" and (
        settings.signing_secret is None or not settings.signing_secret.get_secret_value()
    ):
        raise ConfigError("slack.signing_secret is not set (PGBOT_SLACK__SIGNING_SECRET); HTTP mode needs it")


async def run_slack(agent: Agent, settings: SlackSettings, *, host: str = "0.0.0.0") -> None:
    """Serve Slack until cancelled. ``host`` applies to HTTP mode (tests bind 127.0.0.1)."""
    check_settings(settings)
    app = build_slack_app(agent, settings, chat=agent.settings.chat)
    if settings.mode == "socket":
        assert settings.app_token is not None  # check_settings
        handler = AsyncSocketModeHandler(app, settings.app_token.get_secret_value())
        agent.health.report_chat("slack", handler.client.is_connected)  # /readyz: the socket is live
        try:
            await handler.connect_async()  # type: ignore[no-untyped-call]
            log.info("slack_socket_mode_connected")
            await asyncio.Event().wait()
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
    else:
        runner = await serve_http(app, host=host, port=settings.http_port)
        agent.health.report_chat("slack", lambda: True)  # HTTP mode: listening is being connected
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


async def serve_http(app: AsyncApp, *, host: str, port: int) -> web.AppRunner:
    """Start bolt's aiohttp server for the Events API / interactivity endpoint; the caller cleans it up."""
    web_app = app.server(port=port, path=EVENTS_PATH, host=host).web_app
    web_app.router.add_get(HEALTH_PATH, _healthz)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host=host, port=port).start()
    log.info("slack_http_listening", host=host, port=port, path=EVENTS_PATH)
    return runner


async def _healthz(request: web.Request) -> web.Response:
    """The process is up and serving; readiness of databases and Redis is [observability]'s /readyz."""
    return web.Response(text="ok\n")
