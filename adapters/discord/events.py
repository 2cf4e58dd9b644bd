"""discord.Message / slash command → :class:`core.Message`: which messages pgbot answers, and the text it sees.

pgbot answers: a guild message that mentions it (directly or through its managed role), a message in a thread
pgbot opened or has talked in (no mention needed there: the context store knows, so this survives restarts and
is shared by replicas), and direct messages. Bots, system messages and places outside ``allowed_guilds`` /
``allowed_channels`` are ignored; when either is set DMs are ignored too, since a DM belongs to no guild.

Conversation keys: a mention in a channel starts a thread created from that message, and Discord gives
such a thread the message's id, so ``thread`` is the same before and after the thread exists.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import discord

from core import Message

PLATFORM = "discord"
ROLE_GROUP = "discord-role:"  # a guild role as a core group; the roles table maps discord-role:<id> to a db role
THREAD_NAME_LIMIT = 100
_ANSWERED_TYPES = (discord.MessageType.default, discord.MessageType.reply)

Channel = (
    discord.abc.GuildChannel | discord.Thread | discord.DMChannel | discord.GroupChannel | discord.PartialMessageable
)


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


def allowed_place(
    *, guild_id: int | None, channel: Any, allowed_guilds: Sequence[int], allowed_channels: Sequence[int]
) -> bool:
    """Whether config lets pgbot talk here; a thread counts as its parent channel."""
    if guild_id is None:
        return not allowed_guilds and not allowed_channels
    if allowed_guilds and guild_id not in allowed_guilds:
        return False
    if not allowed_channels:
        return True
    parent = channel.parent_id if isinstance(channel, discord.Thread) else None
    return channel.id in allowed_channels or parent in allowed_channels


def never_answered(message: discord.Message, *, bot_user_id: int, allowed_guilds: Sequence[int]) -> bool:
    """Bots (pgbot too), system messages and other guilds: cheap checks on the message alone."""
    if message.author.bot or message.author.id == bot_user_id or message.type not in _ANSWERED_TYPES:
        return True
    return bool(allowed_guilds) and message.guild is not None and message.guild.id not in allowed_guilds


def to_core_message(
    message: discord.Message, *, channel: Channel, bot_user_id: int, allowed_guilds: Sequence[int],
    allowed_channels: Sequence[int] = (),
) -> Message | None:
    """The core message for a Discord message pgbot may answer, else None (bots, system messages, places
    config does not allow). ``channel`` is the message's channel, resolved when the cache did not know it.
    Whether pgbot is addressed at all is :func:`addressed` (plus core's ``in_conversation`` for threads)."""
    if never_answered(message, bot_user_id=bot_user_id, allowed_guilds=allowed_guilds):
        return None
    guild_id = message.guild.id if message.guild is not None else None
    if not allowed_place(guild_id=guild_id, channel=channel, allowed_guilds=allowed_guilds,
                         allowed_channels=allowed_channels):
        return None
    if guild_id is None:
        if not isinstance(channel, discord.DMChannel):
            return None
        workspace, parent, thread = "dm", str(channel.id), str(channel.id)
    elif isinstance(channel, discord.Thread):
        workspace, parent, thread = str(guild_id), str(channel.parent_id), str(channel.id)
    else:
        workspace, parent, thread = str(guild_id), str(channel.id), str(message.id)
    return Message(
        platform=PLATFORM,
        workspace=workspace,
        channel=parent,
        thread=thread,
        user=str(message.author.id),
        text=clean_text(message, bot_user_id=bot_user_id),
        user_name=message.author.display_name,
        event_id=str(message.id),  # gateway replays on resume, and every replica on one shard, see the same id
        groups=member_groups(message.author),
    )


def member_groups(user: discord.abc.User) -> tuple[str, ...]:
    """A guild member's roles as core groups (``discord-role:<id>``), @everyone left out; none in DMs, where the
    author is a plain User and belongs to no guild."""
    if not isinstance(user, discord.Member):
        return ()
    return tuple(f"{ROLE_GROUP}{role.id}" for role in user.roles if not role.is_default())


def addressed(message: discord.Message, *, channel: Channel, bot_user_id: int) -> bool:
    """Answered without asking core: a mention, a DM, or a thread pgbot opened itself."""
    if message.guild is None or mentions_bot(message, bot_user_id=bot_user_id):
        return True
    return isinstance(channel, discord.Thread) and channel.owner_id == bot_user_id


def command_message(
    *, question: str, guild_id: int | None, channel: Any, user: discord.abc.User, thread: str | None = None
) -> Message:
    """The core message for ``/pgbot ask``: in a thread it continues that thread's conversation; in a channel
    the conversation is keyed by the reply message (``thread``), on which pgbot then opens a thread."""
    if guild_id is None:
        workspace, parent, key = "dm", str(channel.id), str(channel.id)
    elif isinstance(channel, discord.Thread):
        workspace, parent, key = str(guild_id), str(channel.parent_id), str(channel.id)
    else:
        workspace, parent, key = str(guild_id), str(channel.id), thread or str(channel.id)
    return Message(platform=PLATFORM, workspace=workspace, channel=parent, thread=key, user=str(user.id),
                   text=question.strip(), user_name=user.display_name, groups=member_groups(user))


def click_thread_key(interaction: discord.Interaction[Any]) -> str | None:
    """The core thread of the message a button is on, so core can refuse a button of another conversation;
    None when the channel is not known well enough to say (then core does not check)."""
    place = click_place(interaction)
    if place is None:
        return None
    workspace, parent, thread = place
    return Message(platform=PLATFORM, workspace=workspace, channel=parent, thread=thread, user="", text="").thread_key


def click_place(interaction: discord.Interaction[Any]) -> tuple[str, str, str] | None:
    """(workspace, channel, thread) of the conversation a button or modal belongs to, as messages there get
    them; None when the channel is not known well enough to say."""
    channel, guild_id = interaction.channel, interaction.guild_id
    if channel is None:
        return None
    if guild_id is None:
        workspace, parent, thread = "dm", str(channel.id), str(channel.id)
    elif isinstance(channel, discord.Thread):
        workspace, parent, thread = str(guild_id), str(channel.parent_id), str(channel.id)
    elif isinstance(channel, discord.TextChannel) and interaction.message is not None:
        # /pgbot ask in a channel: the answer message keys the conversation (its thread gets the same id)
        workspace, parent, thread = str(guild_id), str(channel.id), str(interaction.message.id)
    else:
        return None
    return workspace, parent, thread
