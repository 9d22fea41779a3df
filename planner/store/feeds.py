"""Metric feeds (what to pull from which agent, and how the last pull went) and the ids of signed metric events.

The one writer of `metric_feeds` and `signed_event_ids`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from planner.domain.ingestion import MetricFeed
from planner.store import Connection
from planner.store.schema import metric_feeds, signed_event_ids


def _feed(row: Row[Any]) -> MetricFeed:
    return MetricFeed(
        id=row.id,
        tenant_id=row.tenant_id,
        metric_id=row.metric_id,
        adapter=row.adapter,
        capability=row.capability,
        input=dict(row.input),
        field=row.field,
        unit=row.unit,
        every_minutes=row.every_minutes,
        spend=row.spend,
        last_pulled_at=row.last_pulled_at,
        last_error=row.last_error,
    )


async def add_feed(
    conn: Connection,
    tenant_id: str,
    *,
    metric_id: int,
    adapter: str,
    capability: str,
    input: Mapping[str, Any],
    field: str,
    unit: str,
    every_minutes: int,
    spend: bool = False,
    created_by: str,
    created_at: datetime,
) -> MetricFeed | None:
    """The new feed; None when the metric has a feed from that adapter and capability already (nothing written)."""
    statement = (
        insert(metric_feeds)
        .values(
            tenant_id=tenant_id,
            metric_id=metric_id,
            adapter=adapter,
            capability=capability,
            input=dict(input),
            field=field,
            unit=unit,
            every_minutes=every_minutes,
            spend=spend,
            created_by=created_by,
            created_at=created_at,
        )
        .returning(metric_feeds)
    )
    try:
        async with conn.begin_nested():
            row = (await conn.execute(statement)).one()
    except IntegrityError:
        return None
    return _feed(row)


async def feeds_of(conn: Connection, tenant_id: str) -> list[MetricFeed]:
    """The tenant's feeds, oldest first."""
    query = select(metric_feeds).where(metric_feeds.c.tenant_id == tenant_id).order_by(metric_feeds.c.id)
    return [_feed(row) for row in await conn.execute(query)]


async def remove_feed(conn: Connection, tenant_id: str, feed_id: int) -> bool:
    """Whether the tenant had the feed (now removed)."""
    result = await conn.execute(
        delete(metric_feeds).where(metric_feeds.c.id == feed_id, metric_feeds.c.tenant_id == tenant_id)
    )
    return result.rowcount == 1


async def mark_pulled(conn: Connection, feed_id: int, *, at: datetime, error: str | None) -> None:
    """Keep when the feed was last pulled and how it failed (None: it did not)."""
    await conn.execute(
        update(metric_feeds).where(metric_feeds.c.id == feed_id).values(last_pulled_at=at, last_error=error)
    )


async def feeds_pulled_by(conn: Connection, at: datetime) -> list[MetricFeed]:
    """Every tenant's feeds never pulled or last pulled by `at` (the candidates for a turn), oldest first."""
    query = (
        select(metric_feeds)
        .where(or_(metric_feeds.c.last_pulled_at.is_(None), metric_feeds.c.last_pulled_at <= at))
        .order_by(metric_feeds.c.id)
    )
    return [_feed(row) for row in await conn.execute(query)]


async def remember_event_ids(
    conn: Connection, tenant_id: str, source: str, event_ids: Sequence[str], *, received_at: datetime
) -> bool:
    """Record the ids of a source's events; False, recording none, when one was recorded before."""
    rows = [
        {"tenant_id": tenant_id, "source": source, "event_id": event_id, "received_at": received_at}
        for event_id in event_ids
    ]
    try:
        async with conn.begin_nested():
            await conn.execute(insert(signed_event_ids), rows)
    except IntegrityError:
        return False
    return True


async def seen_event_ids(conn: Connection, tenant_id: str, source: str, event_ids: Sequence[str]) -> list[str]:
    """Those of `event_ids` the source's events were recorded with, sorted."""
    query = select(signed_event_ids.c.event_id).where(
        signed_event_ids.c.tenant_id == tenant_id,
        signed_event_ids.c.source == source,
        signed_event_ids.c.event_id.in_(list(event_ids)),
    )
    return sorted((await conn.execute(query)).scalars())


async def forget_event_ids(conn: Connection, received_before: datetime) -> int:
    """Forget the event ids received before `received_before`; returns how many."""
    result = await conn.execute(delete(signed_event_ids).where(signed_event_ids.c.received_at < received_before))
    return int(result.rowcount or 0)
