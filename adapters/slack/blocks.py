"""Block Kit pieces every Slack message is made of: escaped text, sections, code blocks, buttons, a result.

Below the modules that draw whole messages (render) and their parts (cards, questions, progress), so each
builds on the same pieces without importing another. Every text goes through :func:`escape`: Slack parses
``&``, ``<`` and ``>`` as markup, even in code blocks.
"""

from __future__ import annotations

import re
from typing import Any

from adapters.text_table import CODE_WIDTH, cut, grid
from core import DisplayTable, ResultTable, display_table

SECTION_LIMIT = 3000
MAX_BLOCKS = 50
TABLE_MAX_ROWS = 100  # Slack's table block: rows including the header
TABLE_MAX_COLUMNS = 20
FIELDS_PER_SECTION = 10

Block = dict[str, Any]


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(text: str) -> str:
    """Markdown as models write it → Slack mrkdwn (bold, headings, links and fence languages differ), escaped."""
    text = escape(text)
    text = re.sub(r"```[A-Za-z0-9_+-]+\n", "```\n", text)
    text = re.sub(r"^#{1,6} +(.+)$", r"*\1*", text, flags=re.MULTILINE)
    text = re.sub(r"\*\*(.+?)\*\*", r"*\1*", text)
    return _MD_LINK.sub(_shown_link, text)


# [label](url) as models write links; the URL stops at characters that would end or relabel Slack's <url|…>.
_MD_LINK = re.compile(r"\[([^\]]*)\]\(\s*(https?://[^)\s|]+)\s*\)")


def _shown_link(match: re.Match[str]) -> str:
    """A link shows where it goes: ``label (<url>)``, never Slack's ``<url|label>``, which would let text from
    the model or the database ("re-login") hide an address. Raw ``<url|label>`` was escaped already."""
    label, url = match.group(1).strip(), match.group(2)
    if not label or label.rstrip("/") in (url.rstrip("/"), url.split("://", 1)[1].rstrip("/")):
        return f"<{url}>"
    return f"{label} (<{url}>)"


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_LIMIT)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, SECTION_LIMIT)}]}


def code_block(code: str) -> Block:
    """A ``` block whose fences survive truncation."""
    body = escape(code.replace("```", "` ` `"))
    room = SECTION_LIMIT - 8
    return section(f"```\n{cut(body, room)}\n```")


def fits_code_block(code: str) -> bool:
    """Whether :func:`code_block` shows ``code`` whole."""
    return len(escape(code.replace("```", "` ` `"))) <= SECTION_LIMIT - 8


def button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    return element


def result_blocks(table: ResultTable, *, native_table: bool = True) -> tuple[list[Block], DisplayTable | None]:
    """The result as people read it: fields for one row, else a native table or a code block; plus what
    was shown (None when the statement returned no columns)."""
    if not table.columns:
        return [context("The statement returned no columns.")], None
    shown = display_table(table, width=None if native_table else CODE_WIDTH)
    if shown.one_row:
        return _field_sections(shown), shown
    if native_table and len(shown.rows) < TABLE_MAX_ROWS and len(shown.columns) <= TABLE_MAX_COLUMNS:
        return [table_block(shown)], shown
    max_rows = len(shown.rows)
    body = escape(grid(shown))
    while len(body) > SECTION_LIMIT - 8 and max_rows > 1:  # escaping grew it (& → &amp;): fewer rows
        max_rows -= 1
        shown = display_table(table, width=CODE_WIDTH, max_rows=max_rows)
        body = escape(grid(shown))
    return [section(f"```\n{cut(body, SECTION_LIMIT - 8)}\n```")], shown


def table_block(shown: DisplayTable) -> Block:
    """Slack's native table: a bold header row, then the formatted cells; numbers right-aligned."""
    header = [{"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [
        {"type": "text", "text": name or " ", "style": {"bold": True}}]}]} for name in shown.columns]
    rows = [header, *([{"type": "raw_text", "text": text or "\u200b"} for text in row] for row in shown.rows)]
    settings = [{"align": "right"} if right else None for right in shown.right]
    block: Block = {"type": "table", "rows": rows}
    if any(settings):
        block["column_settings"] = settings
    return block


def _field_sections(shown: DisplayTable) -> list[Block]:
    """A one-row result as "name / value" fields, ten per section (Slack's limit)."""
    fields = [{"type": "mrkdwn", "text": cut(f"*{escape(name)}*\n{escape(value)}", 2000)}
              for name, value in zip(shown.columns, shown.rows[0], strict=True)]
    return [{"type": "section", "fields": fields[i:i + FIELDS_PER_SECTION]}
            for i in range(0, len(fields), FIELDS_PER_SECTION)]
