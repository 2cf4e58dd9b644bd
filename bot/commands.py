"""``pgbot chat`` and ``pgbot ask``: the terminal adapter over an agent built from the config."""

from __future__ import annotations

import sys
import uuid

from adapters.terminal.charts import chart_dir, save_chart
from adapters.terminal.chat import TerminalChat, ask_once
from adapters.terminal.identity import new_message
from adapters.terminal.render import render_reply, reply_as_csv, reply_as_json
from bot.logs import LOG_FILE, configure_logging
from bot.wiring import build_agent, build_bot
from core import Agent, ReplyKind, Settings, load_settings
from core.errors import PgbotError


def load_for_cli(config: str | None) -> Settings:
    settings = load_settings(config)
    configure_logging(settings, file=LOG_FILE)
    return settings


async def select_database(agent: Agent, thread: str, database: str | None) -> None:
    """``--db NAME``: make the terminal thread start on that database."""
    if database:
        await agent.use_database(new_message("", thread=thread).thread_key, database)


def banner(agent: Agent) -> str:
    db = agent.databases.default or "(none)"
    llm = agent.settings.llm
    model = f"model {llm.model} at {llm.base_url or 'OpenAI'}" if agent.llm else "no model configured (/help)"
    return f"pgbot — database: {db} — {model}. Ask a question, /help for commands, /quit to leave."


async def chat(*, config: str | None, database: str | None, settings: Settings | None = None) -> int:
    settings = settings or load_for_cli(config)
    if not settings.databases:
        raise PgbotError("No database is configured. Add [databases.NAME] with a dsn to pgbot.toml, "
                         "or run `pgbot demo` to try the sample database.")
    agent, scheduler = build_bot(settings)
    try:
        terminal = TerminalChat(agent)
        if scheduler is not None:  # the terminal's own schedules print here while the chat is open
            from adapters.terminal.schedules import TerminalSender

            scheduler.schedules.senders.register("terminal", TerminalSender(terminal.console))
            scheduler.start()
        await select_database(agent, terminal.thread, database)
        await terminal.run(banner=banner(agent))
    finally:
        if scheduler is not None:
            await scheduler.stop(grace_s=0)
            await scheduler.claims.aclose()
        await agent.aclose()
    return 0


async def ask(*, config: str | None, question: str, database: str | None, fmt: str) -> int:
    settings = load_for_cli(config)
    agent = build_agent(settings)
    try:
        thread = uuid.uuid4().hex
        await select_database(agent, thread, database)
        reply = await ask_once(agent, question, thread=thread)
    finally:
        await agent.aclose()
    chart = await save_chart(reply.chart, directory=chart_dir(settings), database=reply.database) \
        if reply.chart is not None else None
    if chart is not None and fmt != "json":
        print(f"Chart ({reply.chart.kind if reply.chart else ''}) saved to {chart}", file=sys.stderr)
    if fmt == "json":
        print(reply_as_json(reply, chart_path=chart))
    elif fmt == "csv" and reply.kind is not ReplyKind.ERROR:
        sys.stdout.write(reply_as_csv(reply))
    else:
        from rich.console import Console

        render_reply(Console(stderr=reply.kind is ReplyKind.ERROR), reply)
    if reply.kind is ReplyKind.ERROR:
        if fmt == "csv":
            print(f"pgbot: {reply.text}", file=sys.stderr)
        return 1
    return 0
