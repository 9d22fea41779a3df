"""The outbox and firings tables: the one module that writes them.

A firing key is unique, so a second replica deciding the same firing gets `AlreadyFired` and its transaction
keeps nothing. Claims are one statement (with `FOR UPDATE SKIP LOCKED` on PostgreSQL), so two senders never take
the same row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from planner.domain.messages import (
    APPROVED,
    DEAD,
    DROPPED,
    FOLDED,
    HELD,
    PENDING,
    SENDING,
    SENT,
    DeadLetter,
    Envelope,
    Message,
    MessageKind,
    OutboxEntry,
)
from planner.store import Connection
from planner.store.schema import firings, outbox

KEY_LENGTH = 300
_FIRE = insert(firings)
_QUEUE = insert(outbox)


class AlreadyFired(Exception):
    """The firing key is recorded already: what it would queue was queued by whoever recorded it."""

    def __init__(self, tenant_id: str, key: str) -> None:
        self.tenant_id = tenant_id
        self.key = key
        super().__init__(f"{key!r} has fired already in tenant {tenant_id}.")


async def record_firing(conn: Connection, tenant_id: str, key: str, *, at: datetime) -> None:
    """Record that `key` fired. Raises AlreadyFired (the caller's transaction must then be given up)."""
    try:
        await conn.execute(_FIRE, dict(tenant_id=tenant_id, key=key[:KEY_LENGTH], fired_at=at))
    except IntegrityError:
        raise AlreadyFired(tenant_id, key) from None


async def forget_firing(conn: Connection, tenant_id: str, key: str) -> None:
    """Forget that `key` fired, so it may fire again (a welcome after the bot was removed and added back)."""
    await conn.execute(delete(firings).where(firings.c.tenant_id == tenant_id, firings.c.key == key[:KEY_LENGTH]))


async def queue(conn: Connection, tenant_id: str, key: str, messages: Sequence[Message], *, now: datetime) -> None:
    """Queue `messages`, labelled `key`, due at their `not_before` (now when they have none)."""
    if not messages:
        return
    await conn.execute(
        _QUEUE,
        [
            dict(
                tenant_id=tenant_id,
                firing_key=key[:KEY_LENGTH],
                recipient=m.recipient,
                kind=m.kind,
                payload=m.payload,
                status=PENDING,
                not_before=m.not_before or now,
                attempts=0,
                created_at=now,
            )
            for m in messages
        ],
    )


async def claim(conn: Connection, worker: str, *, now: datetime, until: datetime, limit: int) -> list[Envelope]:
    """Lease to `worker` until `until` up to `limit` due messages: pending ones, and those whose lease ran out."""
    due = or_(
        and_(outbox.c.status == PENDING, outbox.c.not_before <= now),
        and_(outbox.c.status == SENDING, outbox.c.lease_until < now),
    )
    chosen = select(outbox.c.id).where(due).order_by(outbox.c.not_before, outbox.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    # One statement, so even two processes on one SQLite file cannot both take a row.
    statement = (
        update(outbox)
        .where(outbox.c.id.in_(chosen.scalar_subquery()))
        .values(status=SENDING, leased_by=worker, lease_until=until, attempts=outbox.c.attempts + 1)
        .returning(outbox)
    )
    rows = sorted((await conn.execute(statement)).all(), key=lambda r: (r.not_before, r.id))
    return [
        Envelope(
            id=r.id,
            tenant_id=r.tenant_id,
            firing_key=r.firing_key,
            recipient=r.recipient,
            kind=MessageKind.of(r.kind),
            payload=r.payload,
            attempts=r.attempts,
            lease_until=r.lease_until,
        )
        for r in rows
    ]


async def _finish(conn: Connection, message_id: int, worker: str, **values: Any) -> bool:
    result = await conn.execute(
        update(outbox)
        .where(outbox.c.id == message_id, outbox.c.leased_by == worker, outbox.c.status == SENDING)
        .values(**values)
    )
    return bool(result.rowcount)


async def mark_sent(
    conn: Connection, message_ids: Sequence[int], worker: str, *, at: datetime, folded: bool = False
) -> set[int]:
    """Mark these messages of `worker`'s lease delivered (`folded`: inside another one, a summary card); the ids
    marked (not those whose lease was lost)."""
    statement = (
        update(outbox)
        .where(outbox.c.id.in_(sorted(set(message_ids))), outbox.c.leased_by == worker, outbox.c.status == SENDING)
        .values(status=FOLDED if folded else SENT, sent_at=at, lease_until=None)
        .returning(outbox.c.id)
    )
    return {row.id for row in await conn.execute(statement)}


async def delivered_since(
    conn: Connection, recipients: Sequence[tuple[str, str]], since: datetime
) -> dict[tuple[str, str], list[datetime]]:
    """When each (tenant, recipient) was sent a message (one per activity: folded ones are not counted) since
    `since`."""
    if not recipients:
        return {}
    wanted = set(recipients)
    statement = select(outbox.c.tenant_id, outbox.c.recipient, outbox.c.sent_at).where(
        outbox.c.status == SENT,
        outbox.c.sent_at >= since,
        outbox.c.tenant_id.in_(sorted({tenant for tenant, _ in wanted})),
        outbox.c.recipient.in_(sorted({recipient for _, recipient in wanted})),
    )
    found: dict[tuple[str, str], list[datetime]] = {}
    for row in await conn.execute(statement):
        if (row.tenant_id, row.recipient) in wanted:
            found.setdefault((row.tenant_id, row.recipient), []).append(row.sent_at)
    return found


async def retry_at(conn: Connection, message_id: int, worker: str, *, at: datetime, error: str) -> bool:
    """Give a leased message back, due again at `at`; False when the lease was lost."""
    return await _finish(
        conn, message_id, worker, status=PENDING, not_before=at, lease_until=None, leased_by=None, last_error=error
    )


async def put_off(conn: Connection, message_id: int, worker: str, *, until: datetime) -> bool:
    """Give a leased message back unsent, due at `until`, without counting the claim as an attempt (nothing was
    tried); False when the lease was lost."""
    return await _finish(
        conn,
        message_id,
        worker,
        status=PENDING,
        not_before=until,
        lease_until=None,
        leased_by=None,
        attempts=outbox.c.attempts - 1,
    )


async def mark_held(conn: Connection, message_id: int, worker: str, *, reason: str) -> bool:
    """Hold a leased message unsent; False when the lease was lost."""
    return await _finish(conn, message_id, worker, status=HELD, lease_until=None, last_error=reason)


async def mark_dropped(conn: Connection, message_id: int, worker: str, *, at: datetime) -> bool:
    """Mark a leased message dropped unsent as of `at` (no longer needed); False when the lease was lost."""
    return await _finish(conn, message_id, worker, status=DROPPED, sent_at=at, lease_until=None)


async def mark_dead(conn: Connection, message_id: int, worker: str, *, error: str) -> bool:
    """Move a leased message to the dead letters; False when the lease was lost."""
    return await _finish(conn, message_id, worker, status=DEAD, lease_until=None, last_error=error)


async def release_held(conn: Connection, tenant_id: str, message_id: int, *, approval: int, now: datetime) -> bool:
    """Make a held message due now, its payload marked with the `approval` that let it through; False when it is
    not held."""
    held = (outbox.c.tenant_id == tenant_id) & (outbox.c.id == message_id) & (outbox.c.status == HELD)
    row = (await conn.execute(select(outbox.c.payload).where(held))).first()
    if row is None:
        return False
    result = await conn.execute(
        update(outbox)
        .where(held)
        .values(status=PENDING, payload={**row.payload, APPROVED: approval}, not_before=now, last_error=None)
    )
    return result.rowcount == 1


async def counts(conn: Connection, tenant_id: str | None = None) -> dict[str, int]:
    """How many messages are in each state (of one tenant, when given)."""
    query = select(outbox.c.status, func.count().label("n")).group_by(outbox.c.status)
    if tenant_id is not None:
        query = query.where(outbox.c.tenant_id == tenant_id)
    return {row.status: row.n for row in await conn.execute(query)}


async def dead_letters(conn: Connection, *, tenant_id: str | None, limit: int) -> list[DeadLetter]:
    """Dead letters, newest first."""
    query = select(outbox).where(outbox.c.status == DEAD).order_by(outbox.c.id.desc()).limit(limit)
    if tenant_id is not None:
        query = query.where(outbox.c.tenant_id == tenant_id)
    return [
        DeadLetter(
            id=r.id,
            tenant_id=r.tenant_id,
            recipient=r.recipient,
            kind=r.kind,
            attempts=r.attempts,
            last_error=r.last_error or "",
            created_at=r.created_at,
        )
        for r in await conn.execute(query)
    ]


async def replay(conn: Connection, message_ids: Sequence[int], *, tenant_id: str | None, now: datetime) -> int:
    """Put these dead letters back, due `now` with a fresh count of attempts; how many were."""
    condition = and_(outbox.c.id.in_(list(message_ids)), outbox.c.status == DEAD)
    if tenant_id is not None:
        condition = and_(condition, outbox.c.tenant_id == tenant_id)
    result = await conn.execute(
        update(outbox)
        .where(condition)
        .values(status=PENDING, attempts=0, not_before=now, leased_by=None, lease_until=None)
    )
    return int(result.rowcount)


async def last_message_id(conn: Connection) -> int:
    """The id of the newest message in the outbox (0 when it is empty)."""
    return int((await conn.execute(select(func.coalesce(func.max(outbox.c.id), 0)))).scalar_one())


async def entries_since(conn: Connection, *, after_id: int, sent_at: datetime) -> list[OutboxEntry]:
    """The messages queued after `after_id`, and the earlier ones marked sent at `sent_at`, oldest first."""
    query = select(outbox).where(or_(outbox.c.id > after_id, outbox.c.sent_at == sent_at)).order_by(outbox.c.id)
    return [
        OutboxEntry(
            id=r.id,
            tenant_id=r.tenant_id,
            firing_key=r.firing_key,
            recipient=r.recipient,
            kind=r.kind,
            status=r.status,
            not_before=r.not_before,
        )
        for r in await conn.execute(query)
    ]
