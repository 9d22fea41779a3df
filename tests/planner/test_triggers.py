from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from planner.directory import Directory
from planner.model import TaskChanges, TaskStatus, Window
from planner.outbox import Outbox
from planner.store import Store
from planner.triggers import TriggerEngine, TriggerRules, after_quiet_hours
from tests.conftest import Database, FakeClock

FEB = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))
MORNING = datetime(2026, 2, 10, 9, tzinfo=UTC)


async def plan_with_tasks(store: Store) -> dict[str, int]:
    """A plan's tasks around 10 February; the store's clock is set to that morning, as a tick would see it."""
    store.clock.now = MORNING  # type: ignore[attr-defined]
    tenant = store.tenant("contoso")
    master = await tenant.create_master_plan(title="Q1", owner="aad-lead", window=FEB, actor="aad-lead")
    tactical = await tenant.create_tactical_plan(master.id, title="Launch", owner="aad-lead", window=FEB, actor="x")
    ids = {}
    for name, day, owner in [
        ("slipped", 9, "aad-writer"),
        ("tomorrow", 11, None),
        ("later", 20, "aad-writer"),
        ("old", 1, "aad-writer"),
    ]:
        ids[name] = (
            await tenant.add_task(tactical.id, title=name, due_on=date(2026, 2, day), owner=owner, actor="x")
        ).id
    return ids


async def test_slipped_deadline_nudges_owner_once_and_approaching_one_goes_to_the_plan_owner(store: Store) -> None:
    ids = await plan_with_tasks(store)
    engine = TriggerEngine(store)
    assert await engine.evaluate(MORNING) == 2  # "old" slipped 9 days ago: beyond the catch-up window
    assert await engine.evaluate(MORNING + timedelta(minutes=1)) == 0
    claimed = await Outbox(store).claim("s")
    assert sorted((e.kind, e.recipient, e.payload["task"]) for e in claimed) == [
        ("deadline_approaching", "aad-lead", ids["tomorrow"]),
        ("deadline_slipped", "aad-writer", ids["slipped"]),
    ]


async def test_done_and_snoozed_tasks_are_left_alone(store: Store) -> None:
    ids = await plan_with_tasks(store)
    tenant = store.tenant("contoso")
    await tenant.update_task(ids["slipped"], TaskChanges(status=TaskStatus.DONE), actor="x")
    await tenant.update_task(ids["tomorrow"], TaskChanges(snoozed_until=MORNING + timedelta(hours=4)), actor="x")
    engine = TriggerEngine(store)
    assert await engine.evaluate(MORNING) == 0
    assert await engine.evaluate(MORNING + timedelta(hours=5)) == 1


async def test_a_moved_deadline_can_slip_again(store: Store) -> None:
    ids = await plan_with_tasks(store)
    engine = TriggerEngine(store)
    await engine.evaluate(MORNING)
    await store.tenant("contoso").update_task(ids["slipped"], TaskChanges(due_on=date(2026, 2, 12)), actor="x")
    # On the 13th: the moved task slipped again, and the one due on the 11th has slipped too.
    store.clock.now = datetime(2026, 2, 13, 9, tzinfo=UTC)  # type: ignore[attr-defined]
    assert await engine.evaluate(store.clock.now) == 2  # type: ignore[attr-defined]
    keys = {e.firing_key for e in await Outbox(store).claim("s", limit=10)}
    assert f"deadline_slipped:task:{ids['slipped']}:2026-02-12" in keys
    assert f"deadline_slipped:task:{ids['tomorrow']}:2026-02-11" in keys


async def test_several_engines_evaluating_at_once_fire_each_trigger_once(store: Store, database: Database) -> None:
    await plan_with_tasks(store)
    replicas = [Store(database.engine(), clock=store.clock) for _ in range(3)]
    try:
        fired = await asyncio.gather(*(TriggerEngine(s).evaluate(MORNING) for s in replicas))
    finally:
        for s in replicas:
            await s.close()
    assert sum(fired) == 2
    assert await Outbox(store).counts() == {"pending": 2}


def test_quiet_hours_hold_a_night_nudge_until_the_recipients_morning() -> None:
    rules = TriggerRules()
    evening_utc = datetime(2026, 2, 10, 21, 30, tzinfo=UTC)
    # 21:30 in London is quiet: wait until 08:00 London the next day.
    assert after_quiet_hours(evening_utc, "Europe/London", rules) == datetime(2026, 2, 11, 8, tzinfo=UTC)
    # 21:30 UTC is 13:30 in Los Angeles: send now.
    assert after_quiet_hours(evening_utc, "America/Los_Angeles", rules) == evening_utc
    # 03:00 in Tokyo (18:00 UTC the day before) waits for 08:00 Tokyo, 23:00 UTC.
    assert after_quiet_hours(datetime(2026, 2, 10, 18, tzinfo=UTC), "Asia/Tokyo", rules) == datetime(
        2026, 2, 10, 23, tzinfo=UTC
    )
    assert after_quiet_hours(evening_utc, "Not/AZone", rules) == datetime(2026, 2, 11, 8, tzinfo=UTC)


async def test_a_nudge_due_at_night_waits_for_the_morning_in_the_recipients_time_zone(
    store: Store, clock: FakeClock
) -> None:
    await plan_with_tasks(store)
    await Directory(store, "contoso").remember_person("aad-writer", "Writer", "Asia/Tokyo")
    night_in_tokyo = datetime(2026, 2, 10, 15, tzinfo=UTC)  # 00:00 in Tokyo
    clock.now = night_in_tokyo
    await TriggerEngine(store).evaluate(night_in_tokyo)
    [for_the_lead] = await Outbox(store).claim("s")  # the plan owner has no time zone: UTC, 15:00, not quiet
    assert for_the_lead.recipient == "aad-lead"
    assert await Outbox(store).sent(for_the_lead, "s")
    clock.now = datetime(2026, 2, 10, 23, tzinfo=UTC)  # 08:00 in Tokyo
    [for_the_writer] = await Outbox(store).claim("s")
    assert for_the_writer.recipient == "aad-writer"


async def test_a_slipped_task_left_unanswered_escalates_to_the_plan_owner_once(store: Store, clock: FakeClock) -> None:
    ids = await plan_with_tasks(store)
    engine = TriggerEngine(store)
    await engine.evaluate(MORNING)
    outbox = Outbox(store)
    for envelope in await outbox.claim("s"):
        await outbox.sent(envelope, "s")
    clock.advance(hours=23)
    assert await engine.evaluate(clock.now) == 0  # nudged 23 hours ago: not yet
    clock.advance(hours=2)
    assert await engine.evaluate(clock.now) == 1
    [escalation] = await outbox.claim("s")
    assert (escalation.kind, escalation.recipient, escalation.payload["task"]) == (
        "escalation",
        "aad-lead",
        ids["slipped"],
    )
    assert escalation.payload["owner"] == "aad-writer"
    assert await engine.evaluate(clock.now + timedelta(hours=1)) == 0


async def test_a_person_gets_at_most_the_daily_budget_and_the_rest_tomorrow_morning(
    store: Store, clock: FakeClock
) -> None:
    await plan_with_tasks(store)
    tenant = store.tenant("contoso")
    [tactical] = [p for p in await tenant.list_plans() if p.title == "Launch"]
    for n in range(6):
        await tenant.add_task(tactical.id, title=f"extra {n}", due_on=date(2026, 2, 9), owner="aad-writer", actor="x")
    engine = TriggerEngine(store, rules=TriggerRules(daily_budget=3))
    assert await engine.evaluate(MORNING) == 8  # 7 slipped for the writer, 1 approaching for the lead
    outbox = Outbox(store)
    claimed = await outbox.claim("s", limit=50)
    for envelope in claimed:
        await outbox.sent(envelope, "s")
    assert len([e for e in claimed if e.recipient == "aad-writer"]) == 3
    clock.now = datetime(2026, 2, 11, 7, 59, tzinfo=UTC)
    assert await outbox.claim("s", limit=50) == []  # the rest waits for the morning
    clock.now = datetime(2026, 2, 11, 8, tzinfo=UTC)
    tomorrow = await outbox.claim("s", limit=50)
    assert [e.recipient for e in tomorrow] == ["aad-writer"] * 4
