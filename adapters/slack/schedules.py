"""Scheduled posts into Slack: core's :class:`core.schedules.Sender` over the app's Web API client.

A schedule is addressed as the adapter addresses a conversation (channel id and thread ts); its replies are
rendered like any other (Block Kit, with the whole result as CSV when the message shows only part of it, and a
report's chart uploaded as a PNG the way an answer's is).
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import render
from adapters.slack.chart_upload import upload_chart
from core import Destination, Reply


class SlackSender:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    def ready(self) -> bool:
        return True  # the Web API needs no open connection

    async def send(self, destination: Destination, replies: Sequence[Reply]) -> None:
        """Post each reply in the schedule's thread; Slack's errors propagate (the run is then "not delivered")."""
        for reply in replies:
            shown = render.render(reply)
            await self.client.chat_postMessage(channel=destination.channel, thread_ts=destination.thread,
                                               text=shown.text, blocks=shown.blocks)
            if shown.file is not None:
                await self.client.files_upload_v2(channel=destination.channel, thread_ts=destination.thread,
                                                  filename=shown.file.filename, title=shown.file.title,
                                                  content=shown.file.content)
            await upload_chart(self.client, reply, channel=destination.channel, thread_ts=destination.thread)

    async def current_groups(self, destination: Destination, identity: str) -> tuple[str, ...] | None:
        return None  # no platform groups here: the roles table maps identities only
