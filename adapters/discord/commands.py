"""The ``/pgbot`` application command group; ``/pgbot ask question:`` goes to :meth:`PgbotClient.ask`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

if TYPE_CHECKING:
    from adapters.discord.host import Asker

QUESTION_LIMIT = 2000  # as long as a Discord message


def pgbot_commands(client: Asker) -> app_commands.Group:
    """``/pgbot ask``; registered with Discord by ``CommandTree.sync`` at start-up."""
    group = app_commands.Group(name="pgbot", description="Ask pgbot about your PostgreSQL databases")

    @group.command(name="ask", description="Ask a question, or run a pgbot command such as /tables or /sql")
    @app_commands.describe(question="What you want to know, in plain words")
    async def ask(
        interaction: discord.Interaction[Any], question: app_commands.Range[str, 1, QUESTION_LIMIT]
    ) -> None:
        await client.ask(interaction, question)

    return group
