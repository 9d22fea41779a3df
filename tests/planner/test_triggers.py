from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from planner.model import TaskChanges, TaskStatus, Window
from planner.outbox import Outbox
from planner.store import Store
from planner.triggers import TriggerEngine
from tests.conftest import Database

FEB = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))
MORNING = datetime(2026, 2, 10, 9, tzinfo=UTC)


async def plan_with_tasks(store: Store) -> dict[str, int]:
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
    assert await engine.evaluate(datetime(2026, 2, 13, 9, tzinfo=UTC)) == 2
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
