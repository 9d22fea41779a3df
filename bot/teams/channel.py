"""The seam to Teams: what the rest of the bot asks of it, in the bot's own values and errors.

`TeamsChannel` is declared here once; each Teams SDK implements it in a module of its own (`bot.teams.botbuilder`
today). Callers see only `Address`, `Outgoing`, `Member` and the `TeamsError` family: no SDK model or exception
crosses this seam.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

PERSONAL = "personal"
CONVERSATION_KINDS = frozenset({PERSONAL, "groupChat", "channel"})


@dataclass(frozen=True, kw_only=True)
class Address:
    """Where a message goes: one conversation of one tenant, reached through one Bot Connector.

    Stored as the Bot Framework's conversation reference (JSON, see `stored`), which is what an inbound activity
    carries, so an address kept by an earlier version of the bot is read as it was written.
    """

    service_url: str
    conversation_id: str
    tenant_id: str | None = None
    bot_id: str | None = None
    user_id: str | None = None
    """The person's account id on the channel (Teams' `29:…`), in a personal chat."""
    conversation_kind: str = PERSONAL
    channel_id: str = "msteams"
    activity_id: str | None = None
    """The last activity seen there: Teams threads what is sent to this address under it."""

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Address:
        """The address in a stored conversation reference. Raises ValueError when it names no service or
        conversation."""
        conversation = _mapping(data.get("conversation"))
        service_url, conversation_id = data.get("serviceUrl"), conversation.get("id")
        if not isinstance(service_url, str) or not service_url or not isinstance(conversation_id, str):
            raise ValueError("a stored conversation reference without a serviceUrl or a conversation id")
        kind = conversation.get("conversationType")
        return cls(
            service_url=service_url,
            conversation_id=conversation_id,
            tenant_id=_text(conversation.get("tenantId")),
            bot_id=_text(_mapping(data.get("bot")).get("id")),
            user_id=_text(_mapping(data.get("user")).get("id")),
            conversation_kind=kind if kind in CONVERSATION_KINDS else PERSONAL,
            channel_id=_text(data.get("channelId")) or "msteams",
            activity_id=_text(data.get("activityId")),
        )

    def stored(self) -> dict[str, Any]:
        """The address as a Bot Framework conversation reference (JSON), as `from_stored` reads it."""
        conversation: dict[str, Any] = {"id": self.conversation_id, "conversationType": self.conversation_kind}
        if self.tenant_id:
            conversation["tenantId"] = self.tenant_id
        reference: dict[str, Any] = {
            "serviceUrl": self.service_url,
            "channelId": self.channel_id,
            "conversation": conversation,
        }
        if self.bot_id:
            reference["bot"] = {"id": self.bot_id}
        if self.user_id:
            reference["user"] = {"id": self.user_id}
        if self.activity_id:
            reference["activityId"] = self.activity_id
        return reference


@dataclass(frozen=True, kw_only=True)
class Posted:
    """A message sent already: where it lies, to update it in place."""

    address: Address
    activity_id: str

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Posted:
        """The message in what `stored` wrote. Raises ValueError when it names no conversation or activity."""
        activity_id = data.get("activity")
        if not isinstance(activity_id, str) or not activity_id:
            raise ValueError("a stored message without an activity id")
        return cls(address=Address.from_stored(_mapping(data.get("address"))), activity_id=activity_id)

    def stored(self) -> dict[str, Any]:
        """The message's place as JSON, as `from_stored` reads it."""
        return {"address": self.address.stored(), "activity": self.activity_id}


@dataclass(frozen=True, kw_only=True)
class Outgoing:
    """A message to send: text, Adaptive Cards (1.5, as dicts) or both."""

    text: str | None = None
    cards: tuple[Mapping[str, Any], ...] = ()
    channel_data: Mapping[str, Any] = field(default_factory=dict)
    """Passed to Teams as the activity's channelData (the outbox id that tells a message sent twice apart)."""
    updates: Posted | None = None
    """A message the sender updates with this one rather than sending a new one (a delegation's result in the card
    that followed it); sent as a new message when Teams refuses the update (the message was deleted)."""
    summary: str | None = None
    """What a notification of a message of cards alone says (Teams' own is only that the bot sent a card)."""


@dataclass(frozen=True, kw_only=True)
class Member:
    """A member of a conversation, as Teams names them."""

    id: str
    """The account id on the channel (Teams' `29:…`), what a new conversation is opened with."""
    aad_object_id: str | None = None
    name: str | None = None


class TeamsError(RuntimeError):
    """Teams did not take a request; the subclass says whether trying again may help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class Throttled(TeamsError):
    """Teams asks the bot to slow down (429): try again after `retry_after` seconds (None: it named no time)."""

    def __init__(self, retry_after: float | None, detail: str = "") -> None:
        self.retry_after = retry_after
        wait = f"after {retry_after:g} s" if retry_after is not None else "later, backing off"
        super().__init__(f"Teams throttled the request (429): send it again {wait}. {detail}".strip(), status=429)


class TransientFailure(TeamsError):
    """Teams, or the way to it, failed for now (412, 5xx, no connection, a timeout): the same request may succeed
    later."""

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        shown = f" ({status})" if status is not None else ""
        super().__init__(f"Teams could not take the request for now{shown}: {detail}. Try again later.", status=status)


class Rejected(TeamsError):
    """Teams refused the request (a 4xx other than 412 and 429): sending it again will not help."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(
            f"Teams refused the request ({status}): {detail}. Sending it again will not help; check the address "
            "(the bot may have been removed from the conversation) and the bot's credentials.",
            status=status,
        )


class TeamsChannel(Protocol):
    """What the bot asks of Teams outside a turn: send, update, open a personal chat, look up one member."""

    async def send(self, address: Address, message: Outgoing) -> str | None:
        """Send `message` to `address`; the new activity's id (None when Teams gave none).

        Raises Throttled, TransientFailure or Rejected.
        """
        ...

    async def update(self, address: Address, activity_id: str, message: Outgoing) -> None:
        """Replace the message `activity_id` at `address` with `message` (a card updated in place).

        Raises Throttled, TransientFailure or Rejected.
        """
        ...

    async def member(self, conversation: Address, user_id: str) -> Member | None:
        """The member `user_id` (account id or Entra object id) of `conversation`, looked up by id, not by reading
        every member; None when they are not a member.

        Raises Throttled, TransientFailure or Rejected.
        """
        ...

    async def open_personal_chat(self, via: Address, member: Member) -> Address:
        """Open (or find again) `member`'s personal chat with the bot, through the Bot Connector and tenant of `via`
        (a conversation they share with the bot); its address.

        Raises Throttled, TransientFailure or Rejected.
        """
        ...


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
