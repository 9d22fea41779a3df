"""Who is who, and where to reach them: people of a tenant and the conversations the bot can write to.

A conversation's `address` is opaque to the planner (the bot stores whatever it needs to write there later);
the planner only knows its kind (personal, group chat, channel) and, for a personal chat, whose it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.engine import Row

from planner.domain.errors import InvalidValue
from planner.store import Store, upsert
from planner.store.schema import conversations, people


@dataclass(frozen=True, kw_only=True)
class Person:
    tenant_id: str
    user_id: str
    name: str
    time_zone: str | None


@dataclass(frozen=True, kw_only=True)
class Conversation:
    tenant_id: str
    conversation_id: str
    kind: str
    user_id: str | None
    address: dict[str, Any]
    updated_at: datetime


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""C0 controls but tab and line breaks, DEL, and the C1 controls."""


def printable(text: str) -> str:
    """`text` without NUL and the other control characters (tabs and line breaks are kept).

    PostgreSQL refuses NUL in text outright (every write holding one fails), and the others only hide or garble what
    is shown. Every text of an activity from Teams goes through this on arrival (bot/teams/), and a person's name
    once more here, whoever stores it.
    """
    return _CONTROL.sub("", text) if _CONTROL.search(text) else text


CONVERSATION_KINDS = ("personal", "groupChat", "channel")
"""Built once, as it runs for every message."""


class Directory:
    """People and conversations of one tenant."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self.tenant_id = tenant_id

    async def remember_person(self, user_id: str, name: str, time_zone: str | None = None) -> Person:
        """Create or refresh a person (their name and time zone change in Teams; we follow). A name is kept on one
        line, without control characters, at most 200 characters; an empty one is the user id."""
        if not user_id or user_id != printable(user_id):
            raise InvalidValue("user id", user_id, "the AAD object id of a Teams user")
        name = " ".join(printable(name).split())[:200] or user_id
        time_zone = printable(time_zone) if time_zone else None
        now = self._store.clock()
        key = and_(people.c.tenant_id == self.tenant_id, people.c.user_id == user_id)
        values: dict[str, Any] = {"name": name, "updated_at": now}
        if time_zone:
            values["time_zone"] = time_zone[:64]
        async with self._store.transaction() as conn:
            await upsert(
                conn,
                people,
                key,
                values,
                dict(tenant_id=self.tenant_id, user_id=user_id, name=name, time_zone=time_zone, updated_at=now),
            )
            row = (await conn.execute(select(people).where(key))).one()
        return Person(tenant_id=row.tenant_id, user_id=row.user_id, name=row.name, time_zone=row.time_zone)

    async def person(self, user_id: str) -> Person | None:
        async with self._store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(people).where(people.c.tenant_id == self.tenant_id, people.c.user_id == user_id)
                )
            ).first()
        if row is None:
            return None
        return Person(tenant_id=row.tenant_id, user_id=row.user_id, name=row.name, time_zone=row.time_zone)

    async def people(self, user_ids: Iterable[str]) -> dict[str, Person]:
        """The people among `user_ids` the directory knows, in one query (unknown ids are left out)."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return {}
        query = select(people).where(people.c.tenant_id == self.tenant_id, people.c.user_id.in_(wanted))
        async with self._store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {
            r.user_id: Person(tenant_id=r.tenant_id, user_id=r.user_id, name=r.name, time_zone=r.time_zone)
            for r in rows
        }

    async def people_named(self, name: str) -> list[Person]:
        """People whose name is `name`, or starts with it (case-insensitive): "Writer" finds "Writer One"."""
        wanted = " ".join(name.split()).casefold()
        if not wanted:
            return []
        async with self._store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(people).where(
                        people.c.tenant_id == self.tenant_id,
                        func.lower(people.c.name).startswith(wanted, autoescape=True),
                    )
                )
            ).all()
        found = [
            Person(tenant_id=r.tenant_id, user_id=r.user_id, name=r.name, time_zone=r.time_zone)
            for r in rows
            if r.name.casefold() == wanted or r.name.casefold().startswith(wanted + " ")
        ]
        exact = [p for p in found if p.name.casefold() == wanted]
        return exact or found

    async def names(self, user_ids: set[str]) -> dict[str, str]:
        """Display names of the given user ids (unknown ids are left out)."""
        if not user_ids:
            return {}
        async with self._store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(people.c.user_id, people.c.name).where(
                        people.c.tenant_id == self.tenant_id, people.c.user_id.in_(sorted(user_ids))
                    )
                )
            ).all()
        return {r.user_id: r.name for r in rows}

    async def remember_conversation(
        self, conversation_id: str, *, kind: str, address: dict[str, Any], user_id: str | None = None
    ) -> None:
        """Store (or refresh) where the bot can write to a conversation later."""
        if kind not in CONVERSATION_KINDS:
            raise InvalidValue("conversation kind", kind, " or ".join(CONVERSATION_KINDS))
        now = self._store.clock()
        key = and_(conversations.c.tenant_id == self.tenant_id, conversations.c.conversation_id == conversation_id)
        values = {
            "kind": kind,
            "user_id": user_id if kind == "personal" else None,
            "address": address,
            "updated_at": now,
        }
        async with self._store.transaction() as conn:
            await upsert(
                conn,
                conversations,
                key,
                values,
                dict(tenant_id=self.tenant_id, conversation_id=conversation_id, **values),
            )

    async def forget_conversation(self, conversation_id: str) -> None:
        """The bot was removed from a conversation: stop writing there."""
        async with self._store.transaction() as conn:
            await conn.execute(
                delete(conversations).where(
                    conversations.c.tenant_id == self.tenant_id, conversations.c.conversation_id == conversation_id
                )
            )

    async def conversations(
        self, *, kind: str | None = None, user_id: str | None = None, conversation_id: str | None = None
    ) -> list[Conversation]:
        """Stored conversations, most recently active first."""
        query = select(conversations).where(conversations.c.tenant_id == self.tenant_id)
        if conversation_id is not None:
            query = query.where(conversations.c.conversation_id == conversation_id)
        if kind is not None:
            query = query.where(conversations.c.kind == kind)
        if user_id is not None:
            query = query.where(conversations.c.user_id == user_id)
        async with self._store.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(conversations.c.updated_at.desc()))).all()
        return [_conversation(r) for r in rows]

    async def personal_chats(self, user_ids: Iterable[str]) -> dict[str, Conversation]:
        """Each person's personal chat with the bot, in one query: the most recently active one, as `conversations`
        lists first; people with none are left out."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return {}
        query = (
            select(conversations)
            .where(
                conversations.c.tenant_id == self.tenant_id,
                conversations.c.kind == "personal",
                conversations.c.user_id.in_(wanted),
            )
            .order_by(conversations.c.updated_at.desc())
        )
        chats: dict[str, Conversation] = {}
        async with self._store.engine.connect() as conn:
            for r in await conn.execute(query):
                if r.user_id not in chats:
                    chats[r.user_id] = _conversation(r)
        return chats


def _conversation(r: Row[Any]) -> Conversation:
    return Conversation(
        tenant_id=r.tenant_id,
        conversation_id=r.conversation_id,
        kind=r.kind,
        user_id=r.user_id,
        address=r.address,
        updated_at=r.updated_at,
    )
