"""The people and conversations tables: the one module that writes them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.engine import Row

from planner.domain.people import Conversation, Person
from planner.store import Connection, upsert
from planner.store.schema import conversations, people


def _person(row: Row[Any]) -> Person:
    return Person(tenant_id=row.tenant_id, user_id=row.user_id, name=row.name, time_zone=row.time_zone)


def _conversation(row: Row[Any]) -> Conversation:
    return Conversation(
        tenant_id=row.tenant_id,
        conversation_id=row.conversation_id,
        kind=row.kind,
        user_id=row.user_id,
        address=row.address,
        updated_at=row.updated_at,
    )


async def save_person(
    conn: Connection, tenant_id: str, user_id: str, *, name: str, time_zone: str | None, at: datetime
) -> Person:
    """Create or refresh a person; a time zone of None keeps the one stored. The person as stored."""
    key = and_(people.c.tenant_id == tenant_id, people.c.user_id == user_id)
    values: dict[str, Any] = {"name": name, "updated_at": at}
    if time_zone:
        values["time_zone"] = time_zone
    await upsert(
        conn,
        people,
        key,
        values,
        dict(tenant_id=tenant_id, user_id=user_id, name=name, time_zone=time_zone, updated_at=at),
    )
    return _person((await conn.execute(select(people).where(key))).one())


async def person(conn: Connection, tenant_id: str, user_id: str) -> Person | None:
    row = (
        await conn.execute(select(people).where(people.c.tenant_id == tenant_id, people.c.user_id == user_id))
    ).first()
    return None if row is None else _person(row)


async def people_by_id(conn: Connection, tenant_id: str, user_ids: Collection[str]) -> dict[str, Person]:
    """The people among `user_ids` (unknown ids are left out)."""
    query = select(people).where(people.c.tenant_id == tenant_id, people.c.user_id.in_(sorted(user_ids)))
    return {row.user_id: _person(row) for row in await conn.execute(query)}


async def people_named_like(conn: Connection, tenant_id: str, prefix: str) -> list[Person]:
    """People whose lowercased name starts with `prefix`."""
    query = select(people).where(
        people.c.tenant_id == tenant_id, func.lower(people.c.name).startswith(prefix, autoescape=True)
    )
    return [_person(row) for row in await conn.execute(query)]


async def names(conn: Connection, tenant_id: str, user_ids: Collection[str]) -> dict[str, str]:
    """Display names of `user_ids` (unknown ids are left out)."""
    query = select(people.c.user_id, people.c.name).where(
        people.c.tenant_id == tenant_id, people.c.user_id.in_(sorted(user_ids))
    )
    return {row.user_id: row.name for row in await conn.execute(query)}


async def save_conversation(
    conn: Connection,
    tenant_id: str,
    conversation_id: str,
    *,
    kind: str,
    user_id: str | None,
    address: dict[str, Any],
    at: datetime,
) -> None:
    """Create or refresh a conversation."""
    key = and_(conversations.c.tenant_id == tenant_id, conversations.c.conversation_id == conversation_id)
    values = {"kind": kind, "user_id": user_id, "address": address, "updated_at": at}
    await upsert(conn, conversations, key, values, dict(tenant_id=tenant_id, conversation_id=conversation_id, **values))


async def delete_conversation(conn: Connection, tenant_id: str, conversation_id: str) -> None:
    await conn.execute(
        delete(conversations).where(
            conversations.c.tenant_id == tenant_id, conversations.c.conversation_id == conversation_id
        )
    )


async def conversations_of(
    conn: Connection,
    tenant_id: str,
    *,
    kind: str | None = None,
    user_id: str | None = None,
    conversation_id: str | None = None,
) -> list[Conversation]:
    """Stored conversations matching what is given, most recently active first."""
    query = select(conversations).where(conversations.c.tenant_id == tenant_id)
    if conversation_id is not None:
        query = query.where(conversations.c.conversation_id == conversation_id)
    if kind is not None:
        query = query.where(conversations.c.kind == kind)
    if user_id is not None:
        query = query.where(conversations.c.user_id == user_id)
    rows = await conn.execute(query.order_by(conversations.c.updated_at.desc()))
    return [_conversation(row) for row in rows]


async def personal_chats(conn: Connection, tenant_id: str, user_ids: Collection[str]) -> dict[str, Conversation]:
    """Each of `user_ids`' most recently active personal chat (people with none are left out)."""
    query = (
        select(conversations)
        .where(
            conversations.c.tenant_id == tenant_id,
            conversations.c.kind == "personal",
            conversations.c.user_id.in_(sorted(user_ids)),
        )
        .order_by(conversations.c.updated_at.desc())
    )
    chats: dict[str, Conversation] = {}
    for row in await conn.execute(query):
        if row.user_id not in chats:
            chats[row.user_id] = _conversation(row)
    return chats
