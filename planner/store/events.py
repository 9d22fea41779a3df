"""The event record: every state change written beside the change itself, with who, when, before and after.

It is the base of the decision log; entries are only ever inserted. This module is the one writer of `events`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Row

from planner.domain.model import Event
from planner.store import Connection
from planner.store.schema import events

_INSERT = insert(events)


def entry(
    *,
    tenant_id: str,
    at: datetime,
    actor: str,
    kind: str,
    subject_type: str,
    subject_id: int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> dict[str, Any]:
    """One event, for `record_all`."""
    return dict(
        tenant_id=tenant_id,
        at=at,
        actor=actor,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        before=before,
        after=after,
    )


async def record(conn: Connection, **fields: Any) -> None:
    """Append one event (the fields of `entry`) in the caller's transaction, so the change and its record commit
    together."""
    await record_all(conn, [entry(**fields)])


async def record_all(conn: Connection, entries: list[dict[str, Any]]) -> None:
    """Append several events (made by `entry`) in the caller's transaction, in one statement."""
    if entries:
        await conn.execute(_INSERT, entries)


def event_from(row: Row[Any]) -> Event:
    """The event in a row of `events`."""
    return Event(
        id=row.id,
        tenant_id=row.tenant_id,
        at=row.at,
        actor=row.actor,
        kind=row.kind,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        before=row.before,
        after=row.after,
    )


async def recent(
    conn: Connection, tenant_id: str, *, subject_type: str | None = None, subject_id: int | None = None, limit: int
) -> list[Event]:
    """A tenant's events, newest first, optionally of one subject."""
    query = select(events).where(events.c.tenant_id == tenant_id)
    if subject_type is not None:
        query = query.where(events.c.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(events.c.subject_id == subject_id)
    rows = (await conn.execute(query.order_by(events.c.id.desc()).limit(limit))).all()
    return [event_from(r) for r in rows]


async def of_kind_since(
    conn: Connection,
    tenant_id: str,
    kind: str | Collection[str],
    since: datetime,
    *,
    subject_id: int | None = None,
    actor: str | None = None,
) -> list[Event]:
    """A tenant's events of one kind (or of any of several) at or after `since`, newest first, optionally of one
    subject or actor."""
    kinds = [kind] if isinstance(kind, str) else list(kind)
    query = select(events).where(events.c.tenant_id == tenant_id, events.c.kind.in_(kinds), events.c.at >= since)
    if subject_id is not None:
        query = query.where(events.c.subject_id == subject_id)
    if actor is not None:
        query = query.where(events.c.actor == actor)
    return [event_from(r) for r in (await conn.execute(query.order_by(events.c.id.desc()))).all()]


async def after(conn: Connection, tenant_id: str, subject_type: str, subject_id: int, event_id: int) -> list[Event]:
    """The events of one subject recorded after event `event_id`, oldest first."""
    query = select(events).where(
        events.c.tenant_id == tenant_id,
        events.c.subject_type == subject_type,
        events.c.subject_id == subject_id,
        events.c.id > event_id,
    )
    return [event_from(r) for r in (await conn.execute(query.order_by(events.c.id))).all()]
