"""The single-prompt baseline: the whole schema in one prompt, one completion, SQL taken from the reply.

This is "ask the same model once", as a team would without pgbot: no tools, no retries, no value hints, no
resolved dates, no examples. The schema is every table's full description (columns, types, keys, indexes,
comments), which is what pasting the DDL into a chat window gives the model.
"""

from __future__ import annotations

import re

from core.db.catalog import describe_table, list_tables
from core.db.postgres import PgDatabase
from core.llm.base import ChatTurn
from core.llm.textcalls import extract_sql_block, strip_reasoning

SYSTEM = """You are an expert PostgreSQL data analyst. Write one PostgreSQL query that answers the user's
question about the database below. Reply with only the SQL, in one ```sql code block.

Database schema:
{schema}"""

_STATEMENT_START = re.compile(r"\b(WITH|SELECT|VALUES|TABLE)\b", re.I)


async def whole_schema(db: PgDatabase) -> str:
    """Every visible table's description, as the login role."""
    tables = await list_tables(db, role=None)
    parts = [(await describe_table(db, role=None, table=t.qualified)).render() for t in tables]
    return "\n\n".join(parts)


def baseline_messages(schema: str, question: str) -> list[ChatTurn]:
    return [ChatTurn(role="system", content=SYSTEM.format(schema=schema)), ChatTurn(role="user", content=question)]


def extract_sql(reply: str | None) -> str | None:
    """The SQL of a reply: its fenced ```sql block, else the text from the first SELECT/WITH on."""
    text = strip_reasoning(reply or "")
    _, sql = extract_sql_block(text)
    if sql is None:
        fence = re.search(r"```[A-Za-z]*\s*\n(.*?)```", text, re.S)
        candidate = fence.group(1) if fence else text
        start = _STATEMENT_START.search(candidate)
        sql = candidate[start.start():] if start else None
    if sql is None:
        return None
    sql = sql.strip().rstrip(";").strip()
    return sql or None
