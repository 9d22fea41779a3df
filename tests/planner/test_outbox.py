"""The outbox on every backend: a firing is decided once; a message is claimed by one sender at a time."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from planner.domain.messages import Message, MessageKind
from planner.services.outbox import Outbox, dead_letters, replay
from planner.store import Store
from tests.conftest import Database, FakeClock


def nudge(user: str) -> Message:
    return Message(recipient=user, kind=MessageKind.DEADLINE_SLIPPED, payload={"task": 1})


async def test_a_firing_is_decided_once_with_its_messages(store: Store) -> None:
    outbox = Outbox(store)
    assert await outbox.fire("contoso", "deadline-slipped:task:1:2026-01-05", [nudge("aad-1"), nudge("aad-2")])
    assert not await outbox.fire("contoso", "deadline-slipped:task:1:2026-01-05", [nudge("aad-1")])
    assert await outbox.fire("fabrikam", "deadline-slipped:task:1:2026-01-05", [nudge("aad-9")])
    assert await outbox.counts("contoso") == {"pending": 2}


async def test_a_message_waits_for_its_time_and_is_claimed_once(store: Store, clock: FakeClock) -> None:
    outbox = Outbox(store)
    later = clock.now + timedelta(hours=8)  # e.g. the recipient's quiet hours end then
    waiting = Message(recipient="aad-1", kind=MessageKind.DEADLINE_SLIPPED, not_before=later)
    await outbox.fire("contoso", "k", [waiting, nudge("aad-2")])
    [now_due] = await outbox.claim("sender-a")
    assert now_due.recipient == "aad-2"
    assert await outbox.claim("sender-b") == []
    assert await outbox.sent(now_due, "sender-a")
    clock.advance(hours=8)
    [morning] = await outbox.claim("sender-b")
    assert morning.recipient == "aad-1"
    assert await outbox.sent(morning, "sender-b")
    assert await outbox.counts() == {"sent": 2}


async def test_a_crashed_senders_messages_are_taken_over_when_its_lease_runs_out(
    store: Store, clock: FakeClock
) -> None:
    outbox = Outbox(store)
    await outbox.fire("contoso", "k", [nudge("aad-1")])
    [taken] = await outbox.claim("sender-a", lease=timedelta(minutes=2))
    clock.advance(minutes=1)
    assert await outbox.claim("sender-b") == []
    clock.advance(minutes=2)
    [again] = await outbox.claim("sender-b")
    assert (again.id, again.attempts) == (taken.id, 2)
    assert not await outbox.sent(taken, "sender-a")  # the lease was lost: the late sender cannot finish it
    assert await outbox.sent(again, "sender-b")


async def test_failed_messages_retry_later_or_go_to_the_dead_letters(store: Store, clock: FakeClock) -> None:
    outbox = Outbox(store)
    await outbox.fire("contoso", "k", [nudge("aad-1"), nudge("aad-2")])
    first, second = await outbox.claim("s")
    await outbox.retry_later(first, "s", at=clock.now + timedelta(seconds=30), error="429 Too Many Requests")
    await outbox.dead(second, "s", error="403 Forbidden: the bot was removed")
    assert await outbox.claim("s") == []
    clock.advance(seconds=31)
    [retried] = await outbox.claim("s")
    assert (retried.id, retried.attempts) == (first.id, 2)
    assert await outbox.counts() == {"sending": 1, "dead": 1}


async def test_concurrent_senders_never_claim_the_same_message(store: Store, database: Database) -> None:
    outbox = Outbox(store)
    for n in range(60):
        await outbox.fire("contoso", f"k{n}", [nudge(f"aad-{n}")])
    senders = [Store(database.engine(), clock=store.clock) for _ in range(3)]
    try:
        claimed = await asyncio.gather(
            *(Outbox(s).claim(f"sender-{i}", limit=25) for i, s in enumerate(senders)),
        )
    finally:
        for s in senders:
            await s.close()
    ids = [e.id for batch in claimed for e in batch]
    assert len(ids) == len(set(ids))
    assert len(ids) == 60


async def test_dead_letters_are_listed_and_can_be_replayed_once(store: Store) -> None:
    outbox = Outbox(store)
    await outbox.fire("contoso", "k", [nudge("aad-1")])
    await outbox.fire("fabrikam", "k", [nudge("aad-9")])
    for envelope in await outbox.claim("s"):
        await outbox.dead(envelope, "s", error="403 Forbidden")
    [letter] = await dead_letters(store, tenant_id="contoso")
    assert (letter.recipient, letter.attempts, letter.last_error) == ("aad-1", 1, "403 Forbidden")
    assert await replay(store, [letter.id], tenant_id="fabrikam") == 0  # not that tenant's letter
    assert await replay(store, [letter.id]) == 1
    assert await replay(store, [letter.id]) == 0
    [again] = await outbox.claim("s")
    assert (again.id, again.attempts) == (letter.id, 1)


async def test_messages_finished_together_are_marked_in_few_transactions_and_a_lost_lease_is_not(
    store: Store, clock: FakeClock
) -> None:
    outbox = Outbox(store)
    await outbox.fire("contoso", "k", [nudge(f"aad-{n}") for n in range(10)])
    claimed = await outbox.claim("sender-a", lease=timedelta(minutes=2))
    clock.advance(minutes=3)
    [taken_over, *_] = await outbox.claim("sender-b", limit=1)
    updates: list[str] = []

    def count_updates(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE OUTBOX"):
            updates.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count_updates)
    try:
        marked = await asyncio.gather(*(outbox.sent(envelope, "sender-a") for envelope in claimed))
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count_updates)
    assert marked == [envelope.id != taken_over.id for envelope in claimed]
    # The first mark goes alone; the nine asked for while it was written go together in the next transaction.
    assert len(updates) <= 2
    assert await outbox.counts() == {"sent": 9, "sending": 1}
    assert await outbox.sent_many([taken_over], "sender-a") == set()
    assert await outbox.sent_many([taken_over], "sender-b") == {taken_over.id}
