"""The assistant_turns table: the one module that writes it (see planner/domain/memory.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Row

from planner.domain.memory import Exchange
from planner.store import Connection
from planner.store.schema import assistant_turns


def _exchange(row: Row[Any]) -> Exchange:
    return Exchange(id=row.id, at=row.at, messages=tuple(row.messages), size=row.size)


async def insert_exchange(conn: Connection, tenant_id: str, conversation: str, exchange: Exchange) -> int:
    """Store an exchange of a conversation; its id."""
    values = dict(
        tenant_id=tenant_id,
        conversation_id=conversation,
        at=exchange.at,
        messages=list(exchange.messages),
        size=exchange.size,
    )
    query = insert(assistant_turns).values(**values).returning(assistant_turns.c.id)
    return int((await conn.execute(query)).scalar_one())


async def newest(conn: Connection, tenant_id: str, conversation: str, *, limit: int) -> list[Exchange]:
    """The newest `limit` exchanges of a conversation, oldest first."""
    query = (
        select(assistant_turns)
        .where(assistant_turns.c.tenant_id == tenant_id, assistant_turns.c.conversation_id == conversation)
        .order_by(assistant_turns.c.id.desc())
        .limit(limit)
    )
    return [_exchange(row) for row in reversed((await conn.execute(query)).all())]


async def forget_before(conn: Connection, tenant_id: str, conversation: str, first_kept: int | None) -> None:
    """Delete a conversation's exchanges older than the one with id `first_kept` (all of them for None)."""
    where = [assistant_turns.c.tenant_id == tenant_id, assistant_turns.c.conversation_id == conversation]
    if first_kept is not None:
        where.append(assistant_turns.c.id < first_kept)
    await conn.execute(delete(assistant_turns).where(*where))


async def forget_older(conn: Connection, tenant_id: str, before: datetime) -> None:
    """Delete the tenant's exchanges made before `before`, in every conversation."""
    await conn.execute(
        delete(assistant_turns).where(assistant_turns.c.tenant_id == tenant_id, assistant_turns.c.at < before)
    )
