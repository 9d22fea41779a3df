"""The sender fanning out: messages side by side up to a bound, one person's in order, never past Teams' limits.

The connector here is the Teams-limits fake: it answers 429 to anything past Teams' limits as it arrives, so
a sender that paces itself exactly must never get one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.sender import Sender
from bot.settings import Settings
from bot.teams.botbuilder import create_channel
from planner.domain.messages import Message, MessageKind
from planner.services.outbox import Outbox
from planner.store import Store
from tests.conftest import FakeClock
from tests.fakes.members import Member, add_members, nudge
from tests.fakes.teams_limits import TeamsLimitsConnector

TENANT = "contoso"
AT = datetime(2026, 2, 11, 10, tzinfo=UTC)


@pytest.fixture
async def teams() -> AsyncIterator[TeamsLimitsConnector]:
    fake = TeamsLimitsConnector()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def unlimited() -> AsyncIterator[TeamsLimitsConnector]:
    """The fake without Teams' limits, to watch concurrency alone."""
    fake = TeamsLimitsConnector(per_conversation=(), per_tenant=())
    await fake.start()
    yield fake
    await fake.close()


async def members(store: Store, connector: TeamsLimitsConnector, clock: FakeClock, count: int) -> list[Member]:
    clock.now = AT
    return await add_members(store.engine, tenant=TENANT, count=count, service_url=connector.url, at=AT)


def sender(store: Store, concurrency: int = 16) -> Sender:
    return Sender(store, create_channel(Settings.from_env({})), worker="w1", concurrency=concurrency)


async def test_a_fan_out_keeps_the_configured_number_of_sends_in_flight_and_no_more(
    store: Store, unlimited: TeamsLimitsConnector, clock: FakeClock
) -> None:
    people = await members(store, unlimited, clock, 10)
    await nudge(store, TENANT, people, at=AT)
    unlimited.hold()
    delivering = asyncio.create_task(sender(store, concurrency=4).deliver())
    await unlimited.wait_until(lambda fake: fake.held == 4)
    unlimited.release()
    report = await asyncio.wait_for(delivering, timeout=30)
    assert report.sent == 10
    assert unlimited.max_held == 4
    assert unlimited.duplicates == 0
    assert len(unlimited.deliveries) == 10


async def test_one_persons_messages_arrive_in_the_order_they_fell_due(
    store: Store, unlimited: TeamsLimitsConnector, clock: FakeClock
) -> None:
    [first, *others] = await members(store, unlimited, clock, 6)
    await nudge(store, TENANT, others, at=AT)
    outbox = Outbox(store)
    for n in range(4):
        # Notices, which someone waits for, go one by one (reminders of one pass would arrive as one summary card).
        message = Message(
            recipient=first.user_id, kind=MessageKind.NOTICE, payload={"text": f"Notice {n}"}, not_before=AT
        )
        assert await outbox.fire(TENANT, f"several:{n}", [message])
    assert (await sender(store).deliver()).sent == 9
    theirs = [i for conversation, i in unlimited.arrivals if conversation == first.conversation_id and i is not None]
    assert len(theirs) == 4
    assert theirs == sorted(theirs)


async def test_a_fan_out_past_the_tenants_limit_is_paced_and_never_throttled(
    store: Store, teams: TeamsLimitsConnector, clock: FakeClock
) -> None:
    people = await members(store, teams, clock, 120)
    await nudge(store, TENANT, people, at=AT)
    report = await sender(store, concurrency=32).deliver(limit=200)
    assert report.sent == 120
    assert teams.throttled == 0
    assert (len(teams.deliveries), teams.duplicates) == (120, 0)


async def test_many_messages_to_one_person_are_paced_to_teams_limits_for_a_conversation(
    store: Store, teams: TeamsLimitsConnector, clock: FakeClock
) -> None:
    [person] = await members(store, teams, clock, 1)
    message = Message(recipient=person.user_id, kind=MessageKind.NOTICE, payload={"text": "A notice"}, not_before=AT)
    assert await Outbox(store).fire(TENANT, "burst", [message] * 18)
    report = await sender(store).deliver()
    assert report.sent == 18
    assert teams.throttled == 0  # 8 in any 2 s: three windows' worth, each starting as the last one closes
    assert len(teams.deliveries) == 18


async def test_a_message_whose_lease_runs_out_before_its_turn_is_left_for_the_next_claim(
    store: Store, unlimited: TeamsLimitsConnector, clock: FakeClock
) -> None:
    people = await members(store, unlimited, clock, 2)
    await nudge(store, TENANT, people, at=AT)
    hurried = Sender(store, create_channel(Settings.from_env({})), worker="w1", lease=timedelta(seconds=10))
    report = await hurried.deliver()
    assert (report.left, report.sent) == (2, 0)
    assert unlimited.accepted == 0
    clock.advance(seconds=11)  # the lease has run out: another sender takes the messages over
    assert (await sender(store).deliver()).sent == 2
    assert (len(unlimited.deliveries), unlimited.duplicates) == (2, 0)
