"""The outbox: proactive messages decided once, delivered at least once, by whichever replica gets there first.

A trigger that fires writes its firing key (trigger, subject, time window) and its messages in one transaction;
the key is unique, so a second replica deciding the same firing writes nothing. Senders claim due messages
with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serves one process), and the messages of a sender
that died are taken over once its lease runs out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from planner.domain.messages import DeadLetter, Envelope, Message, OutboxEntry
from planner.store import Connection, Store
from planner.store import outbox as outbox_store
from planner.store.outbox import AlreadyFired

ERROR_LENGTH = 2000


class Outbox:
    """Firings and the messages they produce, for every tenant (senders work across tenants)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._marks: list[tuple[Envelope, str, asyncio.Future[bool]]] = []
        self._marking: asyncio.Task[None] | None = None

    async def fire(self, tenant_id: str, key: str, messages: Sequence[Message]) -> bool:
        """Record the firing `key` with its messages; False (and nothing written) if it had fired already."""
        try:
            async with self._store.transaction() as conn:
                await outbox_store.record_firing(conn, tenant_id, key, at=self._store.clock())
                await self.queue_in(conn, tenant_id, key, messages)
        except AlreadyFired:
            return False
        return True

    async def queue_in(self, conn: Connection, tenant_id: str, key: str, messages: Sequence[Message]) -> None:
        """Queue messages in the caller's transaction, with the change that makes them due, so both commit or
        neither. No firing is recorded: the change itself must happen once (a delegation ends once, under its
        lease), which makes its messages once-only; `key` only labels them."""
        await outbox_store.queue(conn, tenant_id, key, messages, now=self._store.clock())

    async def claim(self, worker: str, *, limit: int = 50, lease: timedelta = timedelta(minutes=2)) -> list[Envelope]:
        """Take up to `limit` due messages for `worker`: pending ones, and those whose sender's lease ran out."""
        now = self._store.clock()
        async with self._store.transaction() as conn:
            return await outbox_store.claim(conn, worker, now=now, until=now + lease, limit=limit)

    async def sent(self, envelope: Envelope, worker: str) -> bool:
        """Mark delivered; False if the lease had been lost to another sender meanwhile.

        Messages marked while this outbox writes other marks wait and go together in its next transaction: a sender
        finishing many messages at once then commits once for all of them instead of once each.
        """
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._marks.append((envelope, worker, answer))
        if self._marking is None:
            self._marking = asyncio.create_task(self._mark_queued())
        return await answer

    async def _mark_queued(self) -> None:
        batch: list[tuple[Envelope, str, asyncio.Future[bool]]] = []
        try:
            while self._marks:
                batch, self._marks = self._marks, []
                by_worker: dict[str, list[Envelope]] = {}
                for envelope, worker, _answer in batch:
                    by_worker.setdefault(worker, []).append(envelope)
                try:
                    marked = {worker: await self.sent_many(mine, worker) for worker, mine in by_worker.items()}
                except Exception as error:
                    for *_, answer in batch:
                        if not answer.done():
                            answer.set_exception(error)
                    continue
                for envelope, worker, answer in batch:
                    if not answer.done():
                        answer.set_result(envelope.id in marked[worker])
        finally:
            self._marking = None
            for *_, answer in batch + self._marks:  # when cancelled: nothing will mark these now
                if not answer.done():
                    answer.cancel()

    async def sent_many(self, envelopes: Sequence[Envelope], worker: str) -> set[int]:
        """Mark these delivered, in one statement; the ids marked (not those whose lease was lost meanwhile)."""
        if not envelopes:
            return set()
        async with self._store.transaction() as conn:
            return await outbox_store.mark_sent(conn, [e.id for e in envelopes], worker, at=self._store.clock())

    async def folded(self, envelopes: Sequence[Envelope], worker: str) -> set[int]:
        """Mark these delivered inside another message (a summary card), in one statement; the ids marked."""
        if not envelopes:
            return set()
        async with self._store.transaction() as conn:
            ids = [e.id for e in envelopes]
            return await outbox_store.mark_sent(conn, ids, worker, at=self._store.clock(), folded=True)

    async def put_off(self, envelope: Envelope, worker: str, *, until: datetime) -> bool:
        """Give a message back unsent until `until` (the person's day is full); not counted as an attempt."""
        async with self._store.transaction() as conn:
            return await outbox_store.put_off(conn, envelope.id, worker, until=until)

    async def delivered_since(
        self, recipients: Sequence[tuple[str, str]], since: datetime
    ) -> dict[tuple[str, str], list[datetime]]:
        """When each (tenant, recipient) was sent a message since `since` (a summary card counts once)."""
        async with self._store.read() as conn:
            return await outbox_store.delivered_since(conn, recipients, since)

    async def retry_later(self, envelope: Envelope, worker: str, *, at: datetime, error: str) -> bool:
        """Put a message back for another attempt at `at`."""
        async with self._store.transaction() as conn:
            return await outbox_store.retry_at(conn, envelope.id, worker, at=at, error=error[:ERROR_LENGTH])

    async def hold(self, envelope: Envelope, worker: str, *, reason: str) -> bool:
        """A policy flagged the message: it waits, unsent, until a person approves it (`release`)."""
        async with self._store.transaction() as conn:
            return await outbox_store.mark_held(conn, envelope.id, worker, reason=reason[:ERROR_LENGTH])

    async def release(self, tenant_id: str, message_id: int, *, approval: int) -> bool:
        """A held message was approved: it goes out at the next delivery, marked so the gate is not asked again.
        False when it is not held (released already)."""
        async with self._store.transaction() as conn:
            return await outbox_store.release_held(
                conn, tenant_id, message_id, approval=approval, now=self._store.clock()
            )

    async def dropped(self, envelope: Envelope, worker: str) -> bool:
        """The message is no longer needed (what it asked about was settled meanwhile): not sent, and not counted as
        a message its recipient got."""
        async with self._store.transaction() as conn:
            return await outbox_store.mark_dropped(conn, envelope.id, worker, at=self._store.clock())

    async def dead(self, envelope: Envelope, worker: str, *, error: str) -> bool:
        """Give up on a message: it goes to the dead-letter list admins can see and replay."""
        async with self._store.transaction() as conn:
            return await outbox_store.mark_dead(conn, envelope.id, worker, error=error[:ERROR_LENGTH])

    async def counts(self, tenant_id: str | None = None) -> dict[str, int]:
        """How many messages are in each state."""
        async with self._store.read() as conn:
            return await outbox_store.counts(conn, tenant_id)


async def dead_letters(store: Store, *, tenant_id: str | None = None, limit: int = 100) -> list[DeadLetter]:
    """Messages given up on, newest first (for admins to read and replay)."""
    async with store.read() as conn:
        return await outbox_store.dead_letters(conn, tenant_id=tenant_id, limit=limit)


async def replay(store: Store, ids: Sequence[int], *, tenant_id: str | None = None) -> int:
    """Put dead letters back in the queue, due now with a fresh count of attempts; how many were."""
    async with store.transaction() as conn:
        return await outbox_store.replay(conn, ids, tenant_id=tenant_id, now=store.clock())


async def last_message_id(store: Store) -> int:
    """The id of the newest message in the outbox (0 when it is empty): what came after it is new."""
    async with store.read() as conn:
        return await outbox_store.last_message_id(conn)


async def entries_since(store: Store, *, after_id: int, sent_at: datetime) -> list[OutboxEntry]:
    """The messages queued after `after_id` and the earlier ones sent at `sent_at` (what one tick did)."""
    async with store.read() as conn:
        return await outbox_store.entries_since(conn, after_id=after_id, sent_at=sent_at)
