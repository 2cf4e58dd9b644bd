"""Reply → message content + embeds + files, within Discord's limits.

Limits: 2000 chars of content, 4096 per embed description, 6000 over all embeds of one message. The SQL goes
in a ```sql fence and the table in a monospace code block of at most 2000 characters. What does not fit is
not lost: a result with more rows (or longer cells) than the block shows is attached as ``result.csv``, and
answer text over 2000 characters as ``answer.md``. Buttons live in :mod:`adapters.discord.views`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

import discord

from adapters.text_table import MAX_CELL, cut, text_table
from core import ApprovalPrompt, Reply, ReplyKind, ResultTable

CONTENT_LIMIT = 2000
DESCRIPTION_LIMIT = 4096
EMBEDS_TOTAL_LIMIT = 6000
SQL_BUDGET = 1800
TABLE_BUDGET = 2000  # one message's worth: wider or longer results go to the CSV
CSV_NAME = "result.csv"
TEXT_NAME = "answer.md"
FILE_LIMIT = 8 * 1024 * 1024  # under the 10 MiB Discord allows every bot
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


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file to upload with the message; bytes, so a retried send can build a fresh ``discord.File``."""

    filename: str
    data: bytes

    def to_file(self) -> discord.File:
        return discord.File(io.BytesIO(self.data), filename=self.filename)


@dataclass(slots=True)
class DiscordMessage:
    """The keyword arguments of ``send`` / ``edit`` (the view is added by the caller)."""

    content: str
    embeds: list[discord.Embed] = field(default_factory=list)
    files: list[Attachment] = field(default_factory=list)



def fence(code: str, *, lang: str = "", limit: int) -> str:
    """A code block that stays a code block: inner fences are broken and the cut keeps the closing fence."""
    body = code.replace("```", "``\u200b`")
    head, tail = f"```{lang}\n", "\n```"
    return head + cut(body, limit - len(head) - len(tail)) + tail


def table_embed(
    table: ResultTable, *, title: str, colour: discord.Colour | None, csv_name: str | None = None
) -> tuple[discord.Embed, bool]:
    """The table in a code block; True when it does not show everything (so the caller attaches the CSV)."""
    embed = discord.Embed(title=title, colour=colour)
    if not table.columns:
        embed.description = "The statement returned no columns."
        return embed, False
    grid, shown = text_table(table, max_chars=TABLE_BUDGET - 8)
    embed.description = fence(grid, limit=TABLE_BUDGET)
    partial = shown < table.row_count or _cells_cut(table)
    notes = [f"{table.row_count} row{'s' if table.row_count != 1 else ''}"]
    if shown < table.row_count:
        notes.append(f"… {table.row_count - shown} more rows")
    if partial and csv_name:
        notes.append(f"all fetched rows in {csv_name}")
    if table.truncated:
        notes.append(f"cut at {table.row_cap} rows; more exist")
    embed.set_footer(text=" · ".join(notes))
    return embed, partial


def _cells_cut(table: ResultTable) -> bool:
    return any(isinstance(v, str) and (len(v) > MAX_CELL or "\n" in v) for row in table.rows for v in row)


def table_csv(table: ResultTable) -> bytes:
    """Every row pgbot fetched, as CSV (NULL as an empty field), kept under Discord's upload size."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(table.columns)
    size = buffer.tell()
    for row in table.rows:
        before = buffer.tell()
        writer.writerow(["" if v is None else v for v in row])
        size += buffer.tell() - before
        if size > FILE_LIMIT:
            buffer.seek(before)
            buffer.truncate()
            break
    return buffer.getvalue().encode()


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
    """Content carries the text; embeds carry the approval facts, the SQL and the table; files the rest."""
    colour = _COLOURS.get(reply.kind)
    content, files = _content(reply)
    embeds: list[discord.Embed] = []
    if reply.approval is not None:
        embeds.append(approval_embed(reply.approval))
        embeds.append(sql_embed((reply.approval.sql,), colour=colour))
        if reply.approval.preview is not None:
            embeds.append(table_embed(reply.approval.preview, title="Preview", colour=colour)[0])
    else:
        if reply.sql:
            embeds.append(sql_embed(reply.sql, colour=colour))
        if reply.table is not None:
            embed, partial = table_embed(reply.table, title="Result", colour=colour, csv_name=CSV_NAME)
            if reply.database:
                embed.set_author(name=f"database: {reply.database}")
            embeds.append(embed)
            if partial:
                files.append(Attachment(CSV_NAME, table_csv(reply.table)))
    if reply.error_id and not embeds:
        content = cut(f"{content}\n-# error id: {reply.error_id}", CONTENT_LIMIT)
    return DiscordMessage(content=content or reply.kind.value, embeds=_within_total(embeds), files=files)


def _content(reply: Reply) -> tuple[str, list[Attachment]]:
    """The text within 2000 characters; longer text is cut there and attached whole as answer.md. Schedules
    are listed one per line, each led by the id its buttons name."""
    full = reply.text + "".join(f"\n• {card.summary}" for card in reply.schedules)
    if not full:
        return "", []
    text = _ICONS.get(reply.kind, "") + full
    if len(text) <= CONTENT_LIMIT:
        return text, []
    note = f"\n-# cut here: the whole answer is in {TEXT_NAME}"
    return cut(text, CONTENT_LIMIT - len(note)) + note, [Attachment(TEXT_NAME, full.encode())]


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
