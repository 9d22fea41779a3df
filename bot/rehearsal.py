"""A tick rehearsed: what `cos tick --at` would fire, queue, send and expire, found by running the real tick on a copy
of the database with a channel that sends nothing. The database itself is never written."""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.scheduler import tick
from bot.sender import OUTBOX_ID, Delivery, Sender
from bot.teams.channel import Address, Member, Outgoing
from planner.domain.approvals import ApprovalRequest
from planner.domain.messages import DEAD, DROPPED, FOLDED, HELD, SENT, OutboxEntry
from planner.services.approvals import tenants_with_expired
from planner.services.outbox import entries_since, last_message_id
from planner.services.tenants import Tenants
from planner.store import Store, copy_sqlite_file, create_engine, sqlite_file
from planner.store.migrate import upgrade

if TYPE_CHECKING:
    from planner.domain.decisions import DecisionKeys


class CannotRehearse(ValueError):
    """Only a SQLite database can be copied for a rehearsal."""

    def __init__(self) -> None:
        super().__init__(
            "a rehearsal runs the tick on a copy of the SQLite database, and DATABASE_URL names another kind. Run it "
            "against a copy (pg_dump, then DATABASE_URL=<the copy> cos tick --at …), or pass --apply to change "
            "this database"
        )


@dataclass
class RecordingChannel:
    """A TeamsChannel that sends nothing and remembers what it was asked to send."""

    sent: list[tuple[Address, Outgoing]] = field(default_factory=list)

    async def send(self, address: Address, message: Outgoing) -> str | None:
        self.sent.append((address, message))
        return f"rehearsal-{len(self.sent)}"

    @property
    def outbox_ids(self) -> set[int]:
        """The outbox messages it was asked to send."""
        return {int(m.channel_data[OUTBOX_ID]) for _, m in self.sent if OUTBOX_ID in m.channel_data}

    async def update(self, address: Address, activity_id: str, message: Outgoing) -> None:
        self.sent.append((address, message))

    async def member(self, conversation: Address, user_id: str) -> Member | None:
        return Member(id=user_id, aad_object_id=user_id)

    async def open_personal_chat(self, via: Address, member: Member) -> Address:
        return Address(
            service_url=via.service_url,
            conversation_id=f"rehearsal:{member.id}",
            tenant_id=via.tenant_id,
            user_id=member.id,
        )


@dataclass(frozen=True, kw_only=True)
class Recipient:
    """What one person (or channel) would get from the tick."""

    tenant_id: str
    recipient: str
    name: str
    queued: Counter[str]
    """Messages the tick would queue for them, by kind."""
    outcomes: Counter[str]
    """What would become of their new messages, and of their earlier ones this tick sends or drops: `sent`,
    `dropped` (no longer needed), `waiting` (quiet hours, their daily budget, a later time), `held` (for an approval),
    `undeliverable` (no way to reach them)."""


@dataclass(frozen=True, kw_only=True)
class Rehearsal:
    at: datetime
    fired: int
    delivery: Delivery
    firings: tuple[str, ...]
    """The firing keys of the triggers that would queue messages (trigger, subject, window)."""
    recipients: tuple[Recipient, ...]
    expiring: tuple[ApprovalRequest, ...]
    handled_earlier: Counter[str] = field(default_factory=Counter)
    """What an earlier run at the same time (`cos tick --at` with `--apply`) did with the messages it handled, by
    outcome (`sent`, `sent in a summary card`, `dropped`). Left out of `recipients`: this tick does nothing to them."""
    names: dict[tuple[str, str], str] = field(default_factory=dict)
    """Display names of the people it mentions, by (tenant, user id)."""

    def name(self, tenant_id: str, user_id: str) -> str:
        return self.names.get((tenant_id, user_id), user_id)

    @property
    def queued(self) -> int:
        return sum(sum(r.queued.values()) for r in self.recipients)


async def rehearse_tick(database_url: str, at: datetime, *, decision_keys: DecisionKeys | None = None) -> Rehearsal:
    """Run the tick as of `at` on a copy of the SQLite database at `database_url`; what it did there.

    Raises CannotRehearse for another database.
    """
    source = sqlite_file(database_url)
    if source is None:
        raise CannotRehearse()
    with tempfile.TemporaryDirectory(prefix="cos-rehearsal-") as folder:
        copy = Path(folder) / "rehearsal.db"
        await asyncio.to_thread(copy_sqlite_file, source, copy)
        store = Store(create_engine(f"sqlite+aiosqlite:///{copy}"), clock=lambda: at, decision_keys=decision_keys)
        try:
            await upgrade(store.engine)
            return await _rehearse(store, at)
        finally:
            await store.close()


async def _rehearse(store: Store, at: datetime) -> Rehearsal:
    tenants = Tenants(store)
    before = await last_message_id(store)
    expiring: list[ApprovalRequest] = []
    for tenant_id in await tenants_with_expired(store, at):
        expiring.extend(await tenants(tenant_id).approvals.due_to_expire(at))
    # A message is known as one this tick handled by its time; those marked at `at` already were an earlier run's.
    earlier = {e.id: e.status for e in await entries_since(store, after_id=before, sent_at=at)}
    channel = RecordingChannel()
    report = await tick(store, channel, at=at, sender=Sender(store, channel, worker="rehearsal", tenants=tenants))
    entries = [e for e in await entries_since(store, after_id=before, sent_at=at) if e.id not in earlier]
    names: dict[tuple[str, str], str] = {}
    for tenant_id in {r.tenant_id for r in expiring}:
        known = await tenants(tenant_id).directory.names({r.requester for r in expiring if r.tenant_id == tenant_id})
        names |= {(tenant_id, user): name for user, name in known.items()}
    return Rehearsal(
        at=at,
        fired=report.fired,
        delivery=report.delivery,
        firings=tuple(dict.fromkeys(e.firing_key for e in entries if e.id > before)),
        recipients=await _recipients(tenants, entries, before, channel.outbox_ids),
        expiring=tuple(expiring),
        handled_earlier=Counter(_HANDLED.get(status, status) for status in earlier.values()),
        names=names,
    )


_HANDLED = {SENT: "sent", FOLDED: "sent in a summary card", DROPPED: "dropped"}
"""A message's outcome, by the status a tick left it in."""


async def _recipients(
    tenants: Tenants, entries: list[OutboxEntry], before: int, sent: set[int]
) -> tuple[Recipient, ...]:
    by_recipient: dict[tuple[str, str], list[OutboxEntry]] = {}
    for entry in entries:
        by_recipient.setdefault((entry.tenant_id, entry.recipient), []).append(entry)
    names: dict[tuple[str, str], str] = {}
    for tenant_id in {tenant for tenant, _ in by_recipient}:
        known = await tenants(tenant_id).directory.names({r for t, r in by_recipient if t == tenant_id})
        names |= {(tenant_id, user): name for user, name in known.items()}

    def outcome(entry: OutboxEntry) -> str:
        if entry.id in sent:
            return "sent"
        return (_HANDLED | {HELD: "held", DEAD: "undeliverable"}).get(entry.status, "waiting")

    return tuple(
        Recipient(
            tenant_id=tenant_id,
            recipient=recipient,
            name=names.get((tenant_id, recipient), recipient),
            queued=Counter(e.kind for e in mine if e.id > before),
            outcomes=Counter(outcome(e) for e in mine),
        )
        for (tenant_id, recipient), mine in sorted(by_recipient.items())
    )
