"""The outbox: proactive messages decided once, delivered at least once, by whichever replica gets there first.

A trigger that fires writes its firing key (trigger, subject, time window) and its messages in one transaction;
the key is unique, so a second replica deciding the same firing writes nothing. Senders claim due messages
with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serves one process), and the messages of a sender
that died are taken over once its lease runs out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from planner.store import Store
from planner.store.schema import firings, outbox

PENDING, SENDING, SENT, DEAD, HELD = "pending", "sending", "sent", "dead", "held"
APPROVED = "approved"
"""The payload key a held message gets when its approval let it through: the gate asked once, a person said yes."""
_FIRE = insert(firings)
_QUEUE = insert(outbox)


class MessageKind(StrEnum):
    """What an outbox message is, which decides how it is written when it is sent (`bot.nudges.COMPOSERS` has one
    composer per kind). The values are stored in the outbox table: never change one, only add."""

    DEADLINE_APPROACHING = "deadline_approaching"
    """To a task's owner, `approaching_days` before it is due."""
    DEADLINE_SLIPPED = "deadline_slipped"
    """To a task's owner, once it is past due and still open."""
    ESCALATION = "escalation"
    """To the plan's owner, when a slipped task's owner left the reminder unanswered for `escalate_after`."""
    MILESTONE_COMPLETED = "milestone_completed"
    """To the master plan's owner, when someone else finished a milestone."""
    METRIC_DRIFT = "metric_drift"
    """To a plan's owner, when a metric falls behind its pace to target (in the hourly sweep)."""
    PLAN_HEALTH = "plan_health"
    """To a plan's owner (and its master's), when the plan's health changes (in the hourly sweep)."""
    WEEK_PLAN = "week_plan"
    """To each member on Monday morning: their week; dropped when nothing is due that week."""
    WEEK_SUMMARY = "week_summary"
    """To each channel the bot is in on Monday morning: the week's plans and what is due."""
    WEEK_REVIEW = "week_review"
    """To each member on Friday afternoon: what is still open this week; dropped when nothing is."""
    DIGEST = "digest"
    """To each leader on Friday afternoon: their master plans' week, figures and recommendations."""
    DELEGATION_RESULT = "delegation_result"
    """To a task's owner (or who delegated it): how its delegation ended."""
    DELEGATION_DEFERRED = "delegation_deferred"
    """To a task's owner: its delegation waits for an agent that is down."""
    DELEGATION_HELD = "delegation_held"
    """To a task's owner: its delegation waits for an approval; dropped once decided (the result follows)."""
    DELEGATION_UNKNOWN = "delegation_unknown"
    """To a task's owner: the agent may or may not have done it, so a person retries or cancels it."""
    DELEGATION_OVERDUE = "delegation_overdue"
    """To a task's owner, instead of a slip nudge: its delegation produced nothing by the due date."""
    APPROVAL_REQUEST = "approval_request"
    """To each approver: the approval card; dropped when decided or expired before it went out."""
    APPROVAL_DECIDED = "approval_decided"
    """To the person who asked: the outcome (approved, rejected, expired)."""
    RETROSPECTIVE = "retrospective"
    """To a tactical plan's owner and its master plan's owner, once the plan has ended."""
    QUESTION = "question"
    """To the person a delegation acts for: an agent's question (a 2FA code), `payload.text`, answered by reply."""
    NOTICE = "notice"
    """To one person: a plain message (`payload.text`), such as how an approved action went."""

    @classmethod
    def of(cls, stored: str) -> MessageKind | str:
        """The kind a stored row names; the text itself when this release has no such kind (a message queued by
        a newer release), which sending then refuses as undeliverable instead of failing the whole claim."""
        try:
            return cls(stored)
        except ValueError:
            return stored


@dataclass(frozen=True, kw_only=True)
class Message:
    """A message to write: to whom (a user id or a conversation id), what kind, and what (JSON).

    Raises ValueError when `kind` is not a MessageKind: nothing could write such a message later.
    """

    recipient: str
    kind: MessageKind
    payload: dict[str, Any] = field(default_factory=dict)
    not_before: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", MessageKind(self.kind))


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """A claimed outbox row."""

    id: int
    tenant_id: str
    firing_key: str
    recipient: str
    kind: MessageKind | str
    """A MessageKind, or the stored text when this release has none by that name (see `MessageKind.of`)."""
    payload: dict[str, Any]
    attempts: int
    lease_until: datetime


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
                await conn.execute(_FIRE, dict(tenant_id=tenant_id, key=key[:300], fired_at=self._store.clock()))
                await self.queue_in(conn, tenant_id, key, messages)
        except IntegrityError:
            return False
        return True

    async def queue_in(self, conn: AsyncConnection, tenant_id: str, key: str, messages: Sequence[Message]) -> None:
        """Queue messages in the caller's transaction, with the change that makes them due, so both commit or
        neither. No firing is recorded: the change itself must happen once (a delegation ends once, under its
        lease), which makes its messages once-only; `key` only labels them."""
        if not messages:
            return
        now = self._store.clock()
        await conn.execute(
            _QUEUE,
            [
                dict(
                    tenant_id=tenant_id,
                    firing_key=key[:300],
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

    async def claim(self, worker: str, *, limit: int = 50, lease: timedelta = timedelta(minutes=2)) -> list[Envelope]:
        """Take up to `limit` due messages for `worker`: pending ones, and those whose sender's lease ran out."""
        now = self._store.clock()
        until = now + lease
        due = or_(
            and_(outbox.c.status == PENDING, outbox.c.not_before <= now),
            and_(outbox.c.status == SENDING, outbox.c.lease_until < now),
        )
        chosen = select(outbox.c.id).where(due).order_by(outbox.c.not_before, outbox.c.id).limit(limit)
        if self._store.engine.dialect.name == "postgresql":
            chosen = chosen.with_for_update(skip_locked=True)
        # One statement, so even two processes on one SQLite file cannot both take a row.
        claim = (
            update(outbox)
            .where(outbox.c.id.in_(chosen.scalar_subquery()))
            .values(status=SENDING, leased_by=worker, lease_until=until, attempts=outbox.c.attempts + 1)
            .returning(outbox)
        )
        async with self._store.transaction() as conn:
            rows = sorted((await conn.execute(claim)).all(), key=lambda r: (r.not_before, r.id))
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

    async def _finish(self, envelope: Envelope, worker: str, **values: Any) -> bool:
        async with self._store.transaction() as conn:
            result = await conn.execute(
                update(outbox)
                .where(outbox.c.id == envelope.id, outbox.c.leased_by == worker, outbox.c.status == SENDING)
                .values(**values)
            )
        return bool(result.rowcount)

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
        statement = (
            update(outbox)
            .where(
                outbox.c.id.in_(sorted({e.id for e in envelopes})),
                outbox.c.leased_by == worker,
                outbox.c.status == SENDING,
            )
            .values(status=SENT, sent_at=self._store.clock(), lease_until=None)
            .returning(outbox.c.id)
        )
        async with self._store.transaction() as conn:
            return {row.id for row in await conn.execute(statement)}

    async def retry_later(self, envelope: Envelope, worker: str, *, at: datetime, error: str) -> bool:
        """Put a message back for another attempt at `at`."""
        return await self._finish(
            envelope, worker, status=PENDING, not_before=at, lease_until=None, leased_by=None, last_error=error[:2000]
        )

    async def hold(self, envelope: Envelope, worker: str, *, reason: str) -> bool:
        """A policy flagged the message: it waits, unsent, until a person approves it (`release`)."""
        return await self._finish(envelope, worker, status=HELD, lease_until=None, last_error=reason[:2000])

    async def release(self, tenant_id: str, message_id: int, *, approval: int) -> bool:
        """A held message was approved: it goes out at the next delivery, marked so the gate is not asked again.
        False when it is not held (released already)."""
        async with self._store.transaction() as conn:
            row = (
                await conn.execute(
                    select(outbox.c.payload).where(
                        outbox.c.tenant_id == tenant_id, outbox.c.id == message_id, outbox.c.status == HELD
                    )
                )
            ).first()
            if row is None:
                return False
            result = await conn.execute(
                update(outbox)
                .where(outbox.c.tenant_id == tenant_id, outbox.c.id == message_id, outbox.c.status == HELD)
                .values(
                    status=PENDING,
                    payload={**row.payload, APPROVED: approval},
                    not_before=self._store.clock(),
                    last_error=None,
                )
            )
            return result.rowcount == 1

    async def dead(self, envelope: Envelope, worker: str, *, error: str) -> bool:
        """Give up on a message: it goes to the dead-letter list admins can see and replay."""
        return await self._finish(envelope, worker, status=DEAD, lease_until=None, last_error=error[:2000])

    async def counts(self, tenant_id: str | None = None) -> dict[str, int]:
        """How many messages are in each state."""
        query = select(outbox.c.status, func.count()).group_by(outbox.c.status)
        if tenant_id is not None:
            query = query.where(outbox.c.tenant_id == tenant_id)
        async with self._store.engine.connect() as conn:
            return {status: n for status, n in (await conn.execute(query)).all()}


@dataclass(frozen=True, kw_only=True)
class DeadLetter:
    id: int
    tenant_id: str
    recipient: str
    kind: str
    attempts: int
    last_error: str
    created_at: datetime


async def dead_letters(store: Store, *, tenant_id: str | None = None, limit: int = 100) -> list[DeadLetter]:
    """Messages given up on, newest first (for admins to read and replay)."""
    query = select(outbox).where(outbox.c.status == DEAD).order_by(outbox.c.id.desc()).limit(limit)
    if tenant_id is not None:
        query = query.where(outbox.c.tenant_id == tenant_id)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
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
        for r in rows
    ]


async def replay(store: Store, ids: Sequence[int], *, tenant_id: str | None = None) -> int:
    """Put dead letters back in the queue, due now with a fresh count of attempts; how many were."""
    condition = and_(outbox.c.id.in_(list(ids)), outbox.c.status == DEAD)
    if tenant_id is not None:
        condition = and_(condition, outbox.c.tenant_id == tenant_id)
    async with store.transaction() as conn:
        result = await conn.execute(
            update(outbox)
            .where(condition)
            .values(status=PENDING, attempts=0, not_before=store.clock(), leased_by=None, lease_until=None)
        )
    return int(result.rowcount)
