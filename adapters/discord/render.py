"""Reply → message content + embeds + files, within Discord's limits.

Limits: 2000 chars of content, 4096 per embed description, 6000 over all embeds of one message. An answer
reads answer → data → context: the text (content), the result (an embed: core.display's formatted values in
a monospace block of at most :data:`CODE_WIDTH` columns and 15 rows, or fields for a one-row result), and
the context line (database · role · rows · time · time zone) in that embed's footer. An answer's SQL is
behind a "Show SQL" button (:mod:`adapters.discord.views`), or in a ```sql embed when ``[chat] show_sql =
"inline"``. What does not fit is not lost: a result the embed does not show whole is attached as
``result.csv``, and answer text over 2000 characters as ``answer.md``. An approval's statement longer
than its SQL block is attached as ``change.sql`` (the card says so; it never shows a cut statement without
the file). Markdown links show their real URL: ``[label](url)`` becomes ``label (<url>)``, so no label
disguises an address.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

import discord

from adapters.text_table import CODE_WIDTH, MAX_CELL, cut, grid, text_table
from core import DisplayTable, Reply, ReplyKind, ResultTable, context_line, display_table, pretty_sql

CONTENT_LIMIT = 2000
DESCRIPTION_LIMIT = 4096
EMBEDS_TOTAL_LIMIT = 6000
SQL_BUDGET = 1800
TABLE_BUDGET = 2000  # one message's worth: wider or longer results go to the CSV
CSV_NAME = "result.csv"
TEXT_NAME = "answer.md"
SQL_NAME = "change.sql"
NOTE_LIMIT = 1024  # an embed field's value
FILE_LIMIT = 8 * 1024 * 1024  # under the 10 MiB Discord allows every bot
SUMMARY_LIMIT = 600
FACT_LIMIT = 100
MAX_FIELDS = 25  # fields per embed
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048

_COLOURS = {
    ReplyKind.ANSWER: discord.Colour.blurple(),
    ReplyKind.RESULT: discord.Colour.blurple(),
    ReplyKind.APPROVAL: discord.Colour.gold(),
    ReplyKind.OUTCOME: discord.Colour.green(),
    ReplyKind.ERROR: discord.Colour.red(),
    ReplyKind.INFO: discord.Colour.light_grey(),
}
_ICONS = {ReplyKind.WORKING: "⏳ ", ReplyKind.ERROR: "⚠️ "}
QUESTION = "❓ **Question:** "


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
    # Mentions this message may ping (an approval card's approvers); None: none, the client's default.
    mentions: discord.AllowedMentions | None = None



# [label](url) and [label](<url>), optionally with a "title": Discord shows only the label of such a link.
_MD_LINK = re.compile(r"\[([^\]]*)\]\(\s*<?(https?://[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def shown_links(text: str) -> str:
    """Links as ``label (<url>)`` (the real address, without a preview), and any other ``](`` broken with a
    zero-width space, so text from the model or the database cannot disguise where a link goes."""
    def show(match: re.Match[str]) -> str:
        label, url = match.group(1).strip(), match.group(2)
        return f"<{url}>" if not label or label == url else f"{label} (<{url}>)"

    return _MD_LINK.sub(show, text).replace("](", "]\u200b(")


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


def sql_fits(sql: str) -> bool:
    """Whether the SQL block of an approval card shows ``sql`` whole (else it is attached as change.sql)."""
    body = (sql.rstrip().rstrip(";") + ";").replace("```", "``\u200b`")
    return len(body) <= SQL_BUDGET - len("```sql\n") - len("\n```")


def result_embed(reply: Reply, table: ResultTable, *, colour: discord.Colour | None) -> tuple[discord.Embed, bool]:
    """The result for people: fields for one row, else an aligned monospace block; the footer says what is
    not shown and the context line. True when the CSV should follow (something is not shown whole)."""
    embed = discord.Embed(colour=colour)
    if not table.columns:
        embed.description = "The statement returned no columns."
        return embed, False
    shown = display_table(table, width=CODE_WIDTH, one_row_fields=MAX_FIELDS)
    if shown.one_row:
        for name, value in zip(shown.columns, shown.rows[0], strict=True):
            embed.add_field(name=cut(name, 256), value=cut(value, FIELD_VALUE_LIMIT) or "\u200b", inline=True)
    else:
        embed.description = fence(grid(shown), limit=TABLE_BUDGET)
    embed.set_footer(text=cut(_footer(reply, shown), FOOTER_LIMIT))
    return embed, not shown.complete


def _footer(reply: Reply, shown: DisplayTable) -> str:
    note = shown.note(where=f"in {CSV_NAME}")
    if shown.more_exist and not reply.answer_id:
        note = " · ".join(n for n in (note, "more rows exist: /export with the query gives every row") if n)
    return "\n".join(line for line in (note, context_line(reply, shown)) if line)


def render(reply: Reply, *, show_sql: str = "button") -> DiscordMessage:
    """Content carries the text; embeds carry the approval facts, the SQL and the table; files the rest.

    ``show_sql``: "button" (an answer's SQL behind Show SQL, see views) or "inline" (``[chat] show_sql``)."""
    from adapters.discord import cards  # the card module builds on this one's helpers

    colour = _COLOURS.get(reply.kind)
    content, files = _content(reply)
    content = cards.with_mentions(content, reply)
    embeds: list[discord.Embed] = []
    mentions: discord.AllowedMentions | None = None
    if reply.approval is not None:  # the card says it all for people (adapters.discord.cards)
        prompt = reply.approval
        content, files = cards.card_content(prompt), []
        mentions = cards.card_mentions(prompt)
        fits = sql_fits(prompt.sql)
        embeds.append(cards.card_embed(prompt, colour=colour, attached=None if fits else SQL_NAME))
        embeds.append(sql_embed((prompt.sql,), colour=colour))
        if not fits:
            files.append(Attachment(SQL_NAME, prompt.sql.encode()))
    else:
        if reply.table is not None:
            embed, partial = result_embed(reply, reply.table, colour=colour)
            embeds.append(embed)
            if partial:
                files.append(Attachment(CSV_NAME, table_csv(reply.table)))
        if reply.sql and not (reply.answer_id and show_sql == "button"):
            embeds.append(sql_embed(tuple(pretty_sql(s) for s in reply.sql), colour=colour))
        if reply.table is None and reply.database and reply.kind in (ReplyKind.ANSWER, ReplyKind.RESULT):
            line = context_line(reply)
            if line:
                content = cut(f"{content}\n-# {line}" if content else f"-# {line}", CONTENT_LIMIT)
    files.extend(chart_files(reply))
    if reply.error_id and not embeds:
        content = cut(f"{content}\n-# error id: {reply.error_id}", CONTENT_LIMIT)
    return DiscordMessage(content=content or reply.kind.value, embeds=_within_total(embeds), files=files,
                          mentions=mentions)


def chart_files(reply: Reply) -> list[Attachment]:
    """The reply's chart as a PNG attachment (Discord shows images inline)."""
    return [Attachment(reply.chart.filename, reply.chart.png)] if reply.chart is not None else []


def _content(reply: Reply) -> tuple[str, list[Attachment]]:
    """The text within 2000 characters; longer text is cut there and attached whole as answer.md. Schedules
    are listed one per line, each led by the id its buttons name."""
    full = reply.text + "".join(f"\n• {card.summary}" for card in reply.schedules)
    if not full:
        return "", []
    icon = QUESTION if reply.clarification else _ICONS.get(reply.kind, "")
    text = icon + shown_links(full)
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
