"""Addressing: the conversation a proactive message goes to."""

from __future__ import annotations

from botbuilder.schema import ConversationReference

from planner.directory import Directory
from planner.outbox import Envelope
from planner.store import Store


class Undeliverable(Exception):
    """A message that no retry can deliver (nobody to send it to)."""


async def address(store: Store, envelope: Envelope) -> ConversationReference:
    """The recipient's personal chat with the bot (stored when they last wrote)."""
    directory = Directory(store, envelope.tenant_id)
    chats = await directory.conversations(kind="personal", user_id=envelope.recipient)
    if not chats:
        raise Undeliverable(f"{envelope.recipient} has no chat with the bot yet")
    return ConversationReference().deserialize(chats[0].address)
