"""A reply's chart into a Slack thread as a PNG: one path for answers, Chart clicks and scheduled reports."""

from __future__ import annotations

import structlog
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks
from core import Reply

log = structlog.get_logger(__name__)


async def upload_chart(
    client: AsyncWebClient, reply: Reply, *, channel: str, thread_ts: str, comment: str | None = None
) -> None:
    """The reply's chart as a PNG in the thread (``comment``: a message posted with it); a failed upload is
    said in the thread (the message it belongs to is already there)."""
    chart = reply.chart
    if chart is None:
        return
    try:
        await client.files_upload_v2(channel=channel, thread_ts=thread_ts, filename=chart.filename,
                                     title=chart.title, content=chart.png, initial_comment=comment)
    except (SlackApiError, SlackRequestError) as exc:
        why = str(exc.response.get("error")) if isinstance(exc, SlackApiError) else "the upload failed"
        log.warning("slack_chart_upload_failed", channel=channel, error=why)
        await client.chat_postMessage(
            channel=channel, thread_ts=thread_ts,
            text=f":warning: The chart could not be attached ({blocks.escape(why)}).",
        )
