"""Who is who, and where to reach them: people of a tenant and the conversations the bot can write to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# By its full name: the store package also holds the people table under the name `people`.
import planner.store.people as people_store
from planner.domain.errors import Expected, Field, InvalidValue
from planner.domain.people import CONVERSATION_KINDS, Conversation, Person, has_name, printable
from planner.store import Store
from planner.store import outbox as outbox_store


class Directory:
    """People and conversations of one tenant."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self.tenant_id = tenant_id

    async def remember_person(self, user_id: str, name: str, time_zone: str | None = None) -> Person:
        """Create or refresh a person (their name and time zone change in Teams; we follow). A name is kept on one
        line, without control characters, at most 200 characters; an empty one is the user id."""
        if not user_id or user_id != printable(user_id):
            raise InvalidValue(Field.USER_ID, user_id, Expected.TEAMS_USER_ID)
        name = " ".join(printable(name).split())[:200] or user_id
        time_zone = printable(time_zone)[:64] if time_zone else None
        async with self._store.transaction() as conn:
            return await people_store.save_person(
                conn, self.tenant_id, user_id, name=name, time_zone=time_zone, at=self._store.clock()
            )

    async def person(self, user_id: str) -> Person | None:
        async with self._store.read() as conn:
            return await people_store.person(conn, self.tenant_id, user_id)

    async def people(self, user_ids: Iterable[str]) -> dict[str, Person]:
        """The people among `user_ids` the directory knows, in one query (unknown ids are left out)."""
        wanted = set(user_ids)
        if not wanted:
            return {}
        async with self._store.read() as conn:
            return await people_store.people_by_id(conn, self.tenant_id, wanted)

    async def people_named(self, name: str) -> list[Person]:
        """People whose name is `name`, or starts with it (case-insensitive): "Writer" finds "Writer One"."""
        wanted = " ".join(name.split()).casefold()
        if not wanted:
            return []
        async with self._store.read() as conn:
            candidates = await people_store.people_named_like(conn, self.tenant_id, wanted)
        found = [p for p in candidates if has_name(p, wanted)]
        exact = [p for p in found if p.name.casefold() == wanted]
        return exact or found

    async def names(self, user_ids: set[str]) -> dict[str, str]:
        """Display names of the given user ids (unknown ids are left out)."""
        if not user_ids:
            return {}
        async with self._store.read() as conn:
            return await people_store.names(conn, self.tenant_id, user_ids)

    async def remember_conversation(
        self, conversation_id: str, *, kind: str, address: dict[str, Any], user_id: str | None = None
    ) -> None:
        """Store (or refresh) where the bot can write to a conversation later."""
        if kind not in CONVERSATION_KINDS:
            raise InvalidValue(Field.CONVERSATION_KIND, kind, Expected.ONE_OF, choices=tuple(CONVERSATION_KINDS))
        async with self._store.transaction() as conn:
            await people_store.save_conversation(
                conn,
                self.tenant_id,
                conversation_id,
                kind=kind,
                user_id=user_id if kind == "personal" else None,
                address=address,
                at=self._store.clock(),
            )

    async def forget_conversation(self, conversation_id: str) -> None:
        """The bot was removed from a conversation: stop writing there (and welcome it again if it comes back)."""
        async with self._store.transaction() as conn:
            await people_store.delete_conversation(conn, self.tenant_id, conversation_id)
            await outbox_store.forget_firing(conn, self.tenant_id, _welcome_key(conversation_id))

    async def first_welcome(self, conversation_id: str) -> bool:
        """Whether the bot should welcome this conversation now: True once per install, across replicas and however
        many of Teams' install events (conversationUpdate, installationUpdate, one per member) arrive."""
        try:
            async with self._store.transaction() as conn:
                await outbox_store.record_firing(
                    conn, self.tenant_id, _welcome_key(conversation_id), at=self._store.clock()
                )
        except outbox_store.AlreadyFired:
            return False
        return True

    async def conversations(
        self, *, kind: str | None = None, user_id: str | None = None, conversation_id: str | None = None
    ) -> list[Conversation]:
        """Stored conversations, most recently active first."""
        async with self._store.read() as conn:
            return await people_store.conversations_of(
                conn, self.tenant_id, kind=kind, user_id=user_id, conversation_id=conversation_id
            )

    async def personal_chats(self, user_ids: Iterable[str]) -> dict[str, Conversation]:
        """Each person's personal chat with the bot, in one query: the most recently active one, as `conversations`
        lists first; people with none are left out."""
        wanted = set(user_ids)
        if not wanted:
            return {}
        async with self._store.read() as conn:
            return await people_store.personal_chats(conn, self.tenant_id, wanted)


def _welcome_key(conversation_id: str) -> str:
    return f"welcome:{conversation_id}"
