"""Prefetch: a chunk of a batch's messages is written from facts read together, and still from the plan as it is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from bot.addressing import address
from bot.nudges import compose
from bot.prefetch import Prefetch
from bot.teams.channel import Outgoing
from planner.domain.messages import Envelope
from planner.domain.model import TaskChanges, TaskStatus
from planner.services.outbox import Outbox
from planner.services.plans import Plans
from planner.services.tenants import Tenants
from planner.store import Store
from tests.conftest import FakeClock
from tests.fakes.members import Member, add_members, nudge

TENANT = "contoso"
AT = datetime(2026, 2, 11, 10, tzinfo=UTC)


async def claimed(store: Store, clock: FakeClock, count: int) -> tuple[list[Member], list[Envelope]]:
    clock.now = AT
    people = await add_members(store.engine, tenant=TENANT, count=count, service_url="http://127.0.0.1:1/", at=AT)
    await nudge(store, TENANT, people, at=AT)
    return people, await Outbox(store).claim("w1", limit=count)


@contextmanager
def selects(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)


def wire(message: Outgoing) -> str:
    return json.dumps({"text": message.text, "cards": message.cards}, sort_keys=True, default=str)


async def test_a_chunk_of_messages_is_read_in_one_query_per_kind_of_fact(store: Store, clock: FakeClock) -> None:
    _people, envelopes = await claimed(store, clock, 12)
    prefetch = Prefetch(Tenants(store), envelopes, chunk=5)
    with selects(store) as seen:
        first = await prefetch.facts(envelopes[0])
        assert await prefetch.facts(envelopes[4]) is first
        third = await prefetch.facts(envelopes[10])
    assert first is not None
    assert third is not None
    # Recipients with the tasks' owners, tasks, their plans, personal chats: four queries for each chunk read.
    assert len(seen) == 8
    assert {user for _tenant, user in first.chats} == {e.recipient for e in envelopes[:5]}
    assert {user for _tenant, user in third.chats} == {e.recipient for e in envelopes[10:]}
    assert await prefetch.facts(Envelope(**{**vars(envelopes[0]), "id": -1})) is None
    prefetch.close()


async def test_a_prefetched_nudge_is_the_message_written_alone_and_goes_to_the_same_chat(
    store: Store, clock: FakeClock
) -> None:
    _people, envelopes = await claimed(store, clock, 3)
    prefetch = Prefetch(Tenants(store), envelopes)
    for envelope in envelopes:
        alone, together = await compose(Tenants(store), envelope), await compose(Tenants(store), envelope, prefetch)
        assert alone is not None
        assert together is not None
        assert wire(together) == wire(alone)
        assert "is not done yet" in together.text
        assert await address(Tenants(store), envelope, prefetch=prefetch) == await address(Tenants(store), envelope)
    prefetch.close()


async def test_a_task_done_before_its_chunk_is_read_drops_its_nudge(store: Store, clock: FakeClock) -> None:
    people, envelopes = await claimed(store, clock, 4)
    prefetch = Prefetch(Tenants(store), envelopes, chunk=2)
    assert await compose(Tenants(store), envelopes[0], prefetch) is not None
    tenant = Plans(store, TENANT)
    late = next(p for p in people if p.user_id == envelopes[3].recipient)
    await tenant.update_task(late.task_id, TaskChanges(status=TaskStatus.DONE), actor=late.user_id)
    assert await compose(Tenants(store), envelopes[2], prefetch) is not None
    assert await compose(Tenants(store), envelopes[3], prefetch) is None
    prefetch.close()
