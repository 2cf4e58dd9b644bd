"""Approval cards in Discord: an embed that asks its question, with the message's content as its state line.

The embed's title asks ("Approve: UPDATE 3 rows in customers?"), its description shows the before → after
lines of the changed columns in a code block (or the preview grid for INSERT/DELETE) and the change in words;
its fields say where it runs, who asked, when it expires and who may approve. The content above it is the card's
one state line, and while it waits it mentions the approvers (``<@id>`` for ``discord:`` users, ``<@&id>``
for ``discord-role:`` groups): the client sends with mentions switched off, so exactly those are allowed,
never a mention from the model's or the database's text. After a click the content becomes "Approved by @x —
running", then "Applied: UPDATE 3 in 12 ms", "Rejected by @y", "Failed: … (nothing changed)" or "Expired 14:05",
and the buttons go.
"""

from __future__ import annotations

import datetime as dt

import discord

from adapters.text_table import CODE_WIDTH, cut, grid
from core import ApprovalPrompt, Reply, display_table
from core import cards as core_cards
from core.card_state import CardState, CardStatus
from core.cards import mentionable, state_text, who_may_approve
from core.config import DISCORD_ROLE

PLATFORM = "discord:"
TITLE_LIMIT = 256
DESCRIPTION_BUDGET = 2000
FIELD_LIMIT = 1024
CONTENT_LIMIT = 2000


def mention(identity: str) -> str | None:
    """``discord:<id>`` → ``<@id>``, ``discord-role:<id>`` → ``<@&id>``; None for another platform."""
    if identity.startswith(DISCORD_ROLE):
        role = identity.removeprefix(DISCORD_ROLE)
        return f"<@&{role}>" if role.isdigit() else None
    user = identity.removeprefix(PLATFORM)
    return f"<@{user}>" if identity.startswith(PLATFORM) and user.isdigit() else None


def name(identity: str) -> str:
    return mention(identity) or identity


def clock(stamp: float) -> str:
    """Discord shows ``<t:…:t>`` in each reader's own time zone."""
    return f"<t:{int(stamp)}:t>"


def allowed_mentions(keys: tuple[str, ...]) -> discord.AllowedMentions:
    """Exactly these people and roles may be pinged (the client's default is none)."""
    users = [discord.Object(int(k.removeprefix(PLATFORM))) for k in keys
             if k.startswith(PLATFORM) and k.removeprefix(PLATFORM).isdigit()]
    roles = [discord.Object(int(k.removeprefix(DISCORD_ROLE))) for k in keys
             if k.startswith(DISCORD_ROLE) and k.removeprefix(DISCORD_ROLE).isdigit()]
    return discord.AllowedMentions(everyone=False, users=users, roles=roles, replied_user=False)


def with_mentions(text: str, reply: Reply) -> str:
    """The identities core named in a reply shown as mentions (shown, not pinged: mentions stay off)."""
    return core_cards.with_mentions(text, reply.mentions, mention=mention)


def state_content(state: CardState, *, elapsed_s: float | None = None) -> str:
    return cut(state_text(state, name=name, clock=clock, elapsed_s=elapsed_s), CONTENT_LIMIT)


def card_content(prompt: ApprovalPrompt) -> str:
    """The pending card's content: its state line and who may approve, as mentions that notify them."""
    pending = state_content(CardState(status=CardStatus.PENDING, at=prompt.expires_at))
    return cut(f"{pending}\n**May approve:** {who_may_approve(prompt.approvers, name=mention)}", CONTENT_LIMIT)


def card_mentions(prompt: ApprovalPrompt) -> discord.AllowedMentions:
    return allowed_mentions(mentionable(prompt.approvers))


def card_embed(prompt: ApprovalPrompt, *, colour: discord.Colour | None, attached: str | None) -> discord.Embed:
    """The card itself; ``attached`` names the file holding a statement too long for its SQL block."""
    parts: list[str] = []
    if prompt.diff:
        parts.append(_fence("\n".join(prompt.diff)))
        if prompt.diff_note:
            parts.append(f"-# {prompt.diff_note}")
    elif prompt.preview is not None and prompt.preview.columns:
        parts.append("-# Preview, from a run that was rolled back:")
        parts.append(_fence(grid(display_table(prompt.preview, width=CODE_WIDTH))))
    if prompt.details:
        parts.append("\n".join(prompt.details))
    embed = discord.Embed(title=cut(prompt.question or "Approval needed", TITLE_LIMIT),
                          description=cut("\n".join(parts), DESCRIPTION_BUDGET) or None, colour=colour)
    embed.add_field(name="Database", value=cut(prompt.database, 100))
    embed.add_field(name="Runs as", value=cut(prompt.role or "the login role", 100))
    embed.add_field(name="Requested by", value=cut(name(prompt.requested_by), 100))
    embed.add_field(name="Expires", value=f"<t:{int(prompt.expires_at)}:R>")
    embed.add_field(name="May approve", inline=False,
                    value=cut(who_may_approve(prompt.approvers, name=mention), FIELD_LIMIT))
    embed.timestamp = dt.datetime.fromtimestamp(prompt.expires_at, tz=dt.UTC)
    if attached:
        lines = prompt.sql.count("\n") + 1
        embed.add_field(name="📎 Full statement attached", inline=False,
                        value=f"Full statement ({lines} lines) attached: {attached}. The SQL block shows only its "
                              "start; read the file before you approve.")
    for note in prompt.notes:
        embed.add_field(name="⚠️ Note", value=cut(note, FIELD_LIMIT), inline=False)
    return embed


def _fence(text: str) -> str:
    return "```\n" + cut(text.replace("```", "``\u200b`"), DESCRIPTION_BUDGET - 300) + "\n```"
