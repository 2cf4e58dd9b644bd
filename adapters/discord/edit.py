"""Edit SQL in Discord: ``pgbot:edit:<answer_id>`` opens a modal with the answer's statement; submitting it
runs the edit in the conversation, as the person who submits it.

The button is a :class:`discord.ui.DynamicItem` (works on messages posted before a restart). The modal is a
:class:`discord.ui.Modal` held in this process for :data:`MODAL_TIMEOUT_S`: it keeps the answer id, the
conversation and who opened it on pgbot's side, so nothing in the submission can point it elsewhere
(a submission from another user is refused; core checks the answer's thread again). A modal opened before
a restart is gone: Discord then shows its own "something went wrong", and clicking Edit SQL again works.

Discord's paragraph input holds at most 4000 characters: a longer statement gets a disabled button saying
to use /sql. Discord cannot show a problem inside a submitted modal, so an empty, oversized, unparseable,
several-statement or forbidden text is answered to the submitter alone, with their SQL to copy. A valid
one is answered in the conversation ("pgbot is thinking…" then the new answer or the approval card).
Submitting twice (two modals) runs twice: two answers, or two proposals decided on their own.
"""

from __future__ import annotations

import re
from typing import Any, Self

import discord
import structlog

from adapters.discord.events import PLATFORM, click_place, click_thread_key, member_groups
from adapters.discord.host import button_host, refused_here
from adapters.discord.render import render
from adapters.text_table import cut
from core import Message, Reply, ReplyKind, editable_sql, render_error

log = structlog.get_logger(__name__)
_ID = r"[A-Za-z0-9_.-]{1,80}"
MODAL_LIMIT = 4000  # a paragraph TextInput's max_length
MODAL_TIMEOUT_S = 900.0  # an edit window left open longer is forgotten (Discord never says it was closed)
LABEL_LIMIT = 45  # a TextInput label
TOO_LONG_LABEL = "SQL too long to edit here; use /sql"
TOO_LONG = "This answer's SQL is too long to edit here; use /sql with your edited statement."
NOT_YOURS = "This edit window was opened by someone else, so pgbot ignored it."
NO_PLACE = "pgbot cannot tell which conversation this is in, so it cannot edit here."


async def _private(interaction: discord.Interaction[Any], reply: Reply) -> None:
    """A reply only the clicker sees, as the interaction's response or (after a defer) a followup."""
    shown = render(reply)
    if interaction.response.is_done():
        await interaction.followup.send(content=shown.content, embeds=shown.embeds, ephemeral=True)
    else:
        await interaction.response.send_message(content=shown.content, embeds=shown.embeds, ephemeral=True)


class EditSqlButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=rf"pgbot:edit:(?P<answer_id>{_ID})",
):
    """Opens the Edit SQL modal on the answer's last statement, for anyone with a role on its database."""

    def __init__(self, *, answer_id: str) -> None:
        super().__init__(discord.ui.Button(label="Edit SQL", emoji="✏️", style=discord.ButtonStyle.secondary,
                                           custom_id=f"pgbot:edit:{answer_id}"))
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(answer_id=match["answer_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if await refused_here(interaction):
            return
        where = click_thread_key(interaction)
        if where is None:
            await _private(interaction, Reply(kind=ReplyKind.ERROR, text=NO_PLACE))
            return
        try:  # a Redis look-up: well within Discord's 3 seconds, so the modal can be the response
            source = await button_host(interaction).agent.edit_source(
                answer_id=self.answer_id, thread_key=where, user=f"{PLATFORM}:{interaction.user.id}",
                groups=member_groups(interaction.user))
        except Exception as exc:  # noqa: BLE001 - the error policy: one reply (to the clicker), traceback logged
            await _private(interaction, render_error(exc))
            return
        text = editable_sql(source.sql, max_chars=MODAL_LIMIT)
        if text is None:
            await _private(interaction, Reply(kind=ReplyKind.INFO, text=TOO_LONG))
            return
        await interaction.response.send_modal(EditModal(answer_id=source.answer_id, database=source.database,
                                                        sql=text, opener=interaction.user.id, thread_key=where))


class EditModal(discord.ui.Modal, title="Edit SQL"):
    """The answer's statement in a paragraph input; submitting runs it as the submitter (see module)."""

    def __init__(self, *, answer_id: str, database: str, sql: str, opener: int, thread_key: str) -> None:
        super().__init__(timeout=MODAL_TIMEOUT_S)  # the custom_id is random: nobody can guess another's
        self.answer_id = answer_id
        self.opener = opener
        self.thread_key = thread_key
        self.sql: discord.ui.TextInput[Self] = discord.ui.TextInput(
            label=cut(f"SQL on {database}", LABEL_LIMIT), style=discord.TextStyle.paragraph, default=sql,
            max_length=MODAL_LIMIT, required=True)
        self.add_item(self.sql)

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        if interaction.user.id != self.opener:
            log.warning("discord_edit_not_opener", user=interaction.user.id, opener=self.opener)
            await _private(interaction, Reply(kind=ReplyKind.ERROR, text=NOT_YOURS))
            return
        if await refused_here(interaction):
            return
        client = button_host(interaction)
        sql = self.sql.value or ""
        problem = client.agent.check_edit(sql, max_chars=MODAL_LIMIT)
        if problem is not None:
            text = f"{problem}\nNothing ran." + ("\nYour SQL, to copy:" if sql.strip() else "")
            await _private(interaction, Reply(kind=ReplyKind.ERROR, text=text,
                                              sql=(sql,) if sql.strip() else ()))
            return
        place = click_place(interaction)
        if place is None:
            await _private(interaction, Reply(kind=ReplyKind.ERROR, text=NO_PLACE))
            return
        workspace, channel, thread = place
        incoming = Message(platform=PLATFORM, workspace=workspace, channel=channel, thread=thread,
                           user=str(interaction.user.id), text=sql, user_name=interaction.user.display_name,
                           groups=member_groups(interaction.user), edit_of=self.answer_id)
        if incoming.thread_key != self.thread_key:  # cannot happen through Discord: said, never run
            log.warning("discord_edit_moved", opened=self.thread_key, submitted=incoming.thread_key)
            await _private(interaction, Reply(kind=ReplyKind.ERROR, text=NO_PLACE))
            return
        try:
            await interaction.response.defer(thinking=True)  # answered in the conversation, for everyone
            await client._answer_interaction(interaction, incoming)  # as /pgbot ask is answered
        except discord.HTTPException as exc:
            log.error("discord_edit_failed", status=exc.status, code=exc.code, error=exc.text[:200])


def edit_button(reply: Reply) -> list[discord.ui.Item[Any]]:
    """Edit SQL under an answer that ran SQL; disabled, saying to use /sql, when it is too long for a modal."""
    if not reply.answer_id or not reply.sql:
        return []
    if editable_sql(reply.sql[-1], max_chars=MODAL_LIMIT) is None:
        return [discord.ui.Button(label=TOO_LONG_LABEL, emoji="✏️", style=discord.ButtonStyle.secondary,
                                  disabled=True, custom_id=f"pgbot:edit-too-long:{reply.answer_id}")]
    return [EditSqlButton(answer_id=reply.answer_id)]
