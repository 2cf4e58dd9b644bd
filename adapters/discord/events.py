"""discord.Message → :class:`core.Message`: which messages pgbot answers, and the text it sees.

pgbot answers: a guild message that mentions it (directly or through its managed role), any message in a
thread pgbot created (no mention needed there), and direct messages. Bots, system messages and guilds
outside ``allowed_guilds`` are ignored; when ``allowed_guilds`` is set DMs are ignored too, since a DM
cannot be tied to an allowed guild.

Conversation keys: a mention in a channel starts a thread created from that message, and Discord gives
such a thread the message's id, so ``thread`` is the same before and after the thread exists.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import discord

from core import Message

PLATFORM = "discord"
THREAD_NAME_LIMIT = 100
_ANSWERED_TYPES = (discord.MessageType.default, discord.MessageType.reply)


def _bot_role_id(message: discord.Message) -> int | None:
    role = message.guild.self_role if message.guild is not None else None
    return role.id if role is not None else None


def mentions_bot(message: discord.Message, *, bot_user_id: int) -> bool:
    """Mentioned by user (``<@id>``) or through the bot's managed role (``<@&role>``); @everyone does not count."""
    role_id = _bot_role_id(message)
    return bot_user_id in message.raw_mentions or (role_id is not None and role_id in message.raw_role_mentions)


def clean_text(message: discord.Message, *, bot_user_id: int) -> str:
    """The message text without pgbot's own mentions."""
    text = re.sub(rf"<@!?{bot_user_id}>", " ", message.content)
    role_id = _bot_role_id(message)
    if role_id is not None:
        text = text.replace(f"<@&{role_id}>", " ")
    return text.strip()


def thread_name(text: str) -> str:
    """A thread title from the question: first line, within Discord's 100 characters."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "") or "pgbot"
    return first if len(first) <= THREAD_NAME_LIMIT else first[: THREAD_NAME_LIMIT - 1] + "…"


def to_core_message(
    message: discord.Message, *, bot_user_id: int, allowed_guilds: Sequence[int]
) -> Message | None:
    """The core message for a Discord message pgbot should answer, else None."""
    if message.author.bot or message.author.id == bot_user_id or message.type not in _ANSWERED_TYPES:
        return None
    channel = message.channel
    if message.guild is None:
        if allowed_guilds or not isinstance(channel, discord.DMChannel):
            return None
        workspace, parent, thread = "dm", str(channel.id), str(channel.id)
    else:
        if allowed_guilds and message.guild.id not in allowed_guilds:
            return None
        mentioned = mentions_bot(message, bot_user_id=bot_user_id)
        if isinstance(channel, discord.Thread):
            if not mentioned and channel.owner_id != bot_user_id:
                return None
            workspace, parent, thread = str(message.guild.id), str(channel.parent_id), str(channel.id)
        else:
            if not mentioned:
                return None
            workspace, parent, thread = str(message.guild.id), str(channel.id), str(message.id)
    return Message(
        platform=PLATFORM,
        workspace=workspace,
        channel=parent,
        thread=thread,
        user=str(message.author.id),
        text=clean_text(message, bot_user_id=bot_user_id),
        user_name=message.author.display_name,
        event_id=str(message.id),  # gateway replays on resume, and every replica on one shard, see the same id
    )
