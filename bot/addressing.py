"""Addressing: the conversation a proactive message goes to.

A person is written to in their personal chat with the bot, as stored when they last wrote. A member who never
wrote to the bot but is in a team where it is installed gets a new 1:1 conversation, created through the Bot
Connector and stored for next time. A recipient `conversation:<id>` is a channel or group chat.
"""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import BotAdapter, TurnContext
from botbuilder.schema import ChannelAccount, ConversationParameters, ConversationReference
from msrest.exceptions import ClientRequestError, HttpOperationError

from bot.prefetch import Prefetch
from planner.directory import Conversation, Directory
from planner.outbox import Envelope
from planner.store import Store
from planner.triggers import CONVERSATION

logger = logging.getLogger(__name__)


class Undeliverable(Exception):
    """A message that no retry can deliver (nobody to send it to)."""


async def address(
    store: Store,
    envelope: Envelope,
    *,
    adapter: BotAdapter | None = None,
    app_id: str | None = None,
    prefetch: Prefetch | None = None,
) -> ConversationReference:
    """The conversation to send `envelope` to; with an adapter, a new 1:1 chat for a member who never wrote.

    With `prefetch`, a personal chat read for the message's chunk of its batch is used instead of reading it again.
    Raises Undeliverable when there is nowhere to send it.
    """
    facts = await prefetch.facts(envelope) if prefetch is not None else None
    chat = facts.chats.get((envelope.tenant_id, envelope.recipient)) if facts is not None else None
    if chat is not None:
        return ConversationReference().deserialize(chat.address)
    directory = Directory(store, envelope.tenant_id)
    if envelope.recipient.startswith(CONVERSATION):
        conversation_id = envelope.recipient.removeprefix(CONVERSATION)
        found = await directory.conversations(conversation_id=conversation_id)
        if not found:
            raise Undeliverable(f"the bot is no longer in conversation {conversation_id}")
        return ConversationReference().deserialize(found[0].address)
    chats = await directory.conversations(kind="personal", user_id=envelope.recipient)
    if chats:
        return ConversationReference().deserialize(chats[0].address)
    if adapter is not None:
        for team in await directory.conversations(kind="channel"):
            reference = await _open_personal_chat(adapter, app_id, directory, team, envelope.recipient)
            if reference is not None:
                return reference
    raise Undeliverable(f"{envelope.recipient} has no chat with the bot yet and is in none of its teams")


async def _open_personal_chat(
    adapter: BotAdapter, app_id: str | None, directory: Directory, team: Conversation, user_id: str
) -> ConversationReference | None:
    """Find `user_id` among the members of `team` and create their 1:1 chat with the bot; None if not a member."""
    team_reference = ConversationReference().deserialize(team.address)
    found: list[ChannelAccount] = []
    created: list[ConversationReference] = []

    async def find_member(turn_context: TurnContext) -> None:
        connector: Any = turn_context.turn_state[BotAdapter.BOT_CONNECTOR_CLIENT_KEY]
        members = await connector.conversations.get_conversation_members(team_reference.conversation.id)
        found.extend(m for m in members if user_id in (m.aad_object_id, m.id))

    async def remember(turn_context: TurnContext) -> None:
        created.append(TurnContext.get_conversation_reference(turn_context.activity))

    try:
        await adapter.continue_conversation(team_reference, find_member, app_id)
        if not found:
            return None
        member = found[0]
        tenant = {"id": directory.tenant_id}
        parameters = ConversationParameters(
            is_group=False,
            bot=team_reference.bot,
            members=[ChannelAccount(id=member.id)],
            tenant_id=directory.tenant_id,
            channel_data={"tenant": tenant},
        )
        await adapter.create_conversation(
            app_id or "", remember, parameters, team_reference.channel_id, team_reference.service_url, None
        )
    except (HttpOperationError, ClientRequestError) as error:
        logger.warning("could not open a 1:1 chat through conversation %s: %s", team.conversation_id, error)
        return None
    if not created:
        return None
    reference = created[0]
    reference.user = ChannelAccount(id=member.id, name=member.name, aad_object_id=user_id)
    reference.conversation.tenant_id = directory.tenant_id
    await directory.remember_conversation(
        reference.conversation.id, kind="personal", user_id=user_id, address=reference.serialize()
    )
    if member.name:
        await directory.remember_person(user_id, member.name)
    return reference
