"""Reply → message content + embeds, within Discord's limits.

Limits: 2000 chars of content, 4096 per embed description, 6000 over all embeds of one
message. The SQL goes in a ```sql fence and the table in a monospace code block; both are cut to fit with
a note saying what was left out. Buttons live in :mod:`adapters.discord.views`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import discord

from adapters.text_table import cut, text_table
from core import ApprovalPrompt, Reply, ReplyKind, ResultTable

CONTENT_LIMIT = 2000
DESCRIPTION_LIMIT = 4096
EMBEDS_TOTAL_LIMIT = 6000
SQL_BUDGET = 1800
TABLE_BUDGET = 3300  # SQL + table + titles/fields stay under the 6000 total
SUMMARY_LIMIT = 600
FACT_LIMIT = 100

_COLOURS = {
    ReplyKind.ANSWER: discord.Colour.blurple(),
    ReplyKind.RESULT: discord.Colour.blurple(),
    ReplyKind.APPROVAL: discord.Colour.gold(),
    ReplyKind.OUTCOME: discord.Colour.green(),
    ReplyKind.ERROR: discord.Colour.red(),
    ReplyKind.INFO: discord.Colour.light_grey(),
}
_ICONS = {ReplyKind.WORKING: "⏳ ", ReplyKind.ERROR: "⚠️ "}


@dataclass(slots=True)
class DiscordMessage:
    """The keyword arguments of ``send`` / ``edit`` (the view is added by the caller)."""

    content: str
    embeds: list[discord.Embed] = field(default_factory=list)



def fence(code: str, *, lang: str = "", limit: int) -> str:
    """A code block that stays a code block: inner fences are broken and the cut keeps the closing fence."""
    body = code.replace("```", "``\u200b`")
    head, tail = f"```{lang}\n", "\n```"
    return head + cut(body, limit - len(head) - len(tail)) + tail


def table_embed(table: ResultTable, *, title: str, colour: discord.Colour | None) -> discord.Embed:
    embed = discord.Embed(title=title, colour=colour)
    if not table.columns:
        embed.description = "The statement returned no columns."
        return embed
    grid, shown = text_table(table, max_chars=TABLE_BUDGET - 8)
    embed.description = fence(grid, limit=TABLE_BUDGET)
    notes = [f"{table.row_count} row{'s' if table.row_count != 1 else ''}"]
    if shown < table.row_count:
        notes.append(f"… {table.row_count - shown} more rows")
    if table.truncated:
        notes.append(f"cut at {table.row_cap} rows; more exist")
    embed.set_footer(text=" · ".join(notes))
    return embed


def sql_embed(statements: tuple[str, ...], *, colour: discord.Colour | None) -> discord.Embed:
    code = "\n\n".join(s.rstrip().rstrip(";") + ";" for s in statements)
    return discord.Embed(title="SQL", description=fence(code, lang="sql", limit=SQL_BUDGET), colour=colour)


def approval_embed(prompt: ApprovalPrompt) -> discord.Embed:
    who = prompt.requested_by
    if who.startswith("discord:"):
        who = f"<@{who.removeprefix('discord:')}>"
    embed = discord.Embed(
        title="Approval needed", description=cut(prompt.summary or prompt.kind, SUMMARY_LIMIT),
        colour=_COLOURS[ReplyKind.APPROVAL],
    )
    embed.add_field(name="Database", value=cut(prompt.database, FACT_LIMIT))
    embed.add_field(name="Runs as", value=cut(prompt.role or "the login role", FACT_LIMIT))
    embed.add_field(name="Requested by", value=cut(who, FACT_LIMIT))
    embed.add_field(name="Expires", value=f"<t:{int(prompt.expires_at)}:R>")
    embed.timestamp = dt.datetime.fromtimestamp(prompt.expires_at, tz=dt.UTC)
    return embed


def render(reply: Reply) -> DiscordMessage:
    """Content carries the text; embeds carry the approval facts, the SQL and the table."""
    colour = _COLOURS.get(reply.kind)
    content = cut(_ICONS.get(reply.kind, "") + reply.text, CONTENT_LIMIT) if reply.text else ""
    embeds: list[discord.Embed] = []
    if reply.approval is not None:
        embeds.append(approval_embed(reply.approval))
        embeds.append(sql_embed((reply.approval.sql,), colour=colour))
        if reply.approval.preview is not None:
            embeds.append(table_embed(reply.approval.preview, title="Preview", colour=colour))
    else:
        if reply.sql:
            embeds.append(sql_embed(reply.sql, colour=colour))
        if reply.table is not None:
            embed = table_embed(reply.table, title="Result", colour=colour)
            if reply.database:
                embed.set_author(name=f"database: {reply.database}")
            embeds.append(embed)
    if reply.error_id and not embeds:
        content = cut(f"{content}\n-# error id: {reply.error_id}", CONTENT_LIMIT)
    return DiscordMessage(content=content or reply.kind.value, embeds=_within_total(embeds))


def _within_total(embeds: list[discord.Embed]) -> list[discord.Embed]:
    """Drop trailing embeds past the 6000-char total (by construction this should not happen)."""
    kept: list[discord.Embed] = []
    total = 0
    for embed in embeds:
        total += len(embed)
        if total > EMBEDS_TOTAL_LIMIT:
            break
        kept.append(embed)
    return kept
