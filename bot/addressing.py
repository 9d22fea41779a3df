"""Addressing: the conversation a proactive message goes to.

A person is written to in their personal chat with the bot, as stored when they last wrote. A member who never
wrote to the bot but is in a team where it is installed (looked up there by id, not by reading the team's
roster) gets a new 1:1 conversation, opened through the Bot Connector and stored for next time. A recipient
`conversation:<id>` is a channel or group chat.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.prefetch import Prefetch
from bot.teams.channel import Address, TeamsChannel, TeamsError
from planner.domain.messages import Envelope
from planner.domain.people import Conversation
from planner.services.directory import Directory
from planner.services.tenants import Tenants
from planner.services.triggers import CONVERSATION

logger = logging.getLogger(__name__)


class Undeliverable(Exception):
    """A message that no retry can deliver (nobody to send it to)."""


async def address(
    tenants: Tenants,
    envelope: Envelope,
    *,
    channel: TeamsChannel | None = None,
    prefetch: Prefetch | None = None,
) -> Address:
    """The conversation to send `envelope` to; with a channel, a new 1:1 chat for a member who never wrote.

    With `prefetch`, a personal chat read for the message's chunk of its batch is used instead of reading it again.
    Raises Undeliverable when there is nowhere to send it.
    """
    facts = await prefetch.facts(envelope) if prefetch is not None else None
    chat = facts.chats.get((envelope.tenant_id, envelope.recipient)) if facts is not None else None
    if chat is not None:
        return _stored(chat)
    return await address_of(tenants, envelope.tenant_id, envelope.recipient, channel=channel)


async def address_of(
    tenants: Tenants, tenant_id: str, recipient: str, *, channel: TeamsChannel | None = None
) -> Address:
    """The conversation to write to `recipient` (a user id, or `conversation:<id>`) in; see `address`.

    Raises Undeliverable when there is nowhere to send it.
    """
    directory = tenants(tenant_id).directory
    if recipient.startswith(CONVERSATION):
        conversation_id = recipient.removeprefix(CONVERSATION)
        found = await directory.conversations(conversation_id=conversation_id)
        if not found:
            raise Undeliverable(f"the bot is no longer in conversation {conversation_id}")
        return _stored(found[0])
    chats = await directory.conversations(kind="personal", user_id=recipient)
    if chats:
        return _stored(chats[0])
    if channel is not None:
        for team in await directory.conversations(kind="channel"):
            opened = await _open_personal_chat(channel, directory, team, recipient)
            if opened is not None:
                return opened
    raise Undeliverable(f"{recipient} has no chat with the bot yet and is in none of its teams")


def _stored(conversation: Conversation) -> Address:
    try:
        return Address.from_stored(conversation.address)
    except ValueError as error:
        raise Undeliverable(
            f"conversation {conversation.conversation_id} is stored without an address: {error}"
        ) from error


async def _open_personal_chat(
    channel: TeamsChannel, directory: Directory, team: Conversation, user_id: str
) -> Address | None:
    """Look `user_id` up among the members of `team` and open their 1:1 chat with the bot; None if not a member."""
    try:
        via = replace(Address.from_stored(team.address), tenant_id=directory.tenant_id)
        member = await channel.member(via, user_id)
        if member is None:
            return None
        chat = await channel.open_personal_chat(via, member)
    except (TeamsError, ValueError) as error:
        logger.warning("could not open a 1:1 chat through conversation %s: %s", team.conversation_id, error)
        return None
    await directory.remember_conversation(chat.conversation_id, kind="personal", user_id=user_id, address=chat.stored())
    if member.name:
        await directory.remember_person(user_id, member.name)
    return chat
