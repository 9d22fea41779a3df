"""The store suite: every test runs on SQLite, and on PostgreSQL when COS_TEST_DATABASE_URL is set."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.text.health import reason_text
from planner.domain.errors import (
    Expected,
    InvalidValue,
    MetricNotFound,
    PlanNotFound,
    StaleEdit,
    TaskNotFound,
    TenantMismatch,
    WindowConflict,
)
from planner.domain.model import Health, MetricSpec, TaskChanges, TaskStatus, Tier, Window
from planner.services.directory import Directory
from planner.services.plans import Plans
from planner.store import AlreadyProcessed, Store, create_engine
from planner.store.schema import events, metric_readings, plans, tasks
from tests.conftest import Database, FakeClock
from tests.saying import raises_saying

Q1 = Window(start=date(2026, 1, 1), end=date(2026, 3, 31))
FEB = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))
LEADER = "aad-leader"


async def count(store: Store, table) -> int:
    async with store.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def new_master(tenant: Plans) -> int:
    plan = await tenant.create_master_plan(
        title="500 SQLs by 31 March",
        owner=LEADER,
        window=Q1,
        constraints=["no paid social"],
        metrics=[MetricSpec(name="SQLs", target=500, unit="SQL")],
        actor=LEADER,
    )
    return plan.id


async def test_master_plan_with_metrics_persists_across_store_instances(store: Store, database: Database) -> None:
    tenant = Plans(store, "contoso")
    master_id = await new_master(tenant)

    reopened = Store(database.engine())
    try:
        plan = await Plans(reopened, "contoso").get_plan(master_id)
        assert (plan.title, plan.owner, plan.window, plan.constraints) == (
            "500 SQLs by 31 March",
            LEADER,
            Q1,
            ("no paid social",),
        )
        assert plan.tier is Tier.MASTER
        [sqls] = await Plans(reopened, "contoso").list_metrics(master_id)
        assert (sqls.name, sqls.target, sqls.unit, sqls.tolerance) == ("SQLs", 500, "SQL", 0.1)
    finally:
        await reopened.close()


async def test_tactical_plan_outside_master_window_is_refused_and_nothing_is_written(store: Store) -> None:
    tenant = Plans(store, "contoso")
    master_id = await new_master(tenant)
    before = await count(store, plans)
    with raises_saying(WindowConflict, r"ends Wed 15 Apr 2026, after master plan \d+ ends Tue 31 Mar 2026"):
        await tenant.create_tactical_plan(
            master_id,
            title="Launch",
            owner=LEADER,
            window=Window(start=date(2026, 3, 1), end=date(2026, 4, 15)),
            actor=LEADER,
        )
    assert await count(store, plans) == before


async def test_task_due_outside_its_plan_is_refused(store: Store) -> None:
    tenant = Plans(store, "contoso")
    tactical = await tenant.create_tactical_plan(
        await new_master(tenant), title="Feb", owner=LEADER, window=FEB, actor=LEADER
    )
    with pytest.raises(WindowConflict, match="2026-03-02"):
        await tenant.add_task(tactical.id, title="Late", due_on=date(2026, 3, 2), actor=LEADER)
    with pytest.raises(InvalidValue) as refused:
        await tenant.add_task(tactical.master_id or 0, title="On the master", due_on=date(2026, 2, 2), actor=LEADER)
    assert refused.value.expected is Expected.TASK_HOME
    assert await count(store, tasks) == 0


async def test_other_tenants_rows_are_invisible(store: Store) -> None:
    contoso = Plans(store, "contoso")
    master_id = await new_master(contoso)
    tactical = await contoso.create_tactical_plan(master_id, title="Feb", owner=LEADER, window=FEB, actor=LEADER)
    task = await contoso.add_task(tactical.id, title="Brief", due_on=date(2026, 2, 3), actor=LEADER)

    fabrikam = Plans(store, "fabrikam")
    with pytest.raises(PlanNotFound):
        await fabrikam.get_plan(master_id)
    with pytest.raises(TaskNotFound):
        await fabrikam.get_task(task.id)
    with pytest.raises(TaskNotFound):
        await fabrikam.update_task(task.id, TaskChanges(status=TaskStatus.DONE), actor="intruder")
    with pytest.raises(PlanNotFound):
        await fabrikam.create_tactical_plan(master_id, title="Hijack", owner="x", window=FEB, actor="intruder")
    with pytest.raises(TaskNotFound):
        await fabrikam.edit_task(task.id, lambda t: t, actor="intruder")
    assert await fabrikam.list_plans() == []
    assert await fabrikam.tasks_due(date(2026, 1, 1), date(2026, 12, 31)) == []
    assert (await contoso.get_task(task.id)).status is TaskStatus.TODO


async def test_handing_a_foreign_object_to_a_tenant_is_a_tenant_mismatch(store: Store) -> None:
    contoso = Plans(store, "contoso")
    tactical = await contoso.create_tactical_plan(
        await new_master(contoso), title="Feb", owner=LEADER, window=FEB, actor=LEADER
    )
    task = await contoso.add_task(tactical.id, title="Brief", due_on=date(2026, 2, 3), actor=LEADER)
    with pytest.raises(TenantMismatch, match="fabrikam"):
        await contoso.edit_task(task.id, lambda t: replace(t, tenant_id="fabrikam"), actor=LEADER)
    assert (await contoso.get_task(task.id)).version == 1


async def test_task_lifecycle_is_recorded_as_events_with_before_and_after(store: Store, clock: FakeClock) -> None:
    tenant = Plans(store, "contoso")
    tactical = await tenant.create_tactical_plan(
        await new_master(tenant), title="Feb", owner=LEADER, window=FEB, actor=LEADER
    )
    task = await tenant.add_task(tactical.id, title="Draft brief", due_on=date(2026, 2, 6), actor=LEADER)
    clock.advance(hours=1)
    task = await tenant.update_task(task.id, TaskChanges(owner="aad-member"), actor=LEADER)
    clock.advance(hours=1)
    task = await tenant.update_task(task.id, TaskChanges(status=TaskStatus.DOING), actor="aad-member")
    started = clock.now
    clock.advance(hours=3)
    task = await tenant.update_task(task.id, TaskChanges(status=TaskStatus.DONE), actor="aad-member")

    assert (task.status, task.version, task.started_at, task.done_at) == (TaskStatus.DONE, 4, started, clock.now)
    history = await tenant.events(subject_type="task", subject_id=task.id)
    assert [e.kind for e in history] == ["task.status.done", "task.status.doing", "task.assigned", "task.created"]
    done = history[0]
    assert done.actor == "aad-member"
    assert done.at == clock.now
    assert done.before is not None
    assert done.after is not None
    assert (done.before["status"], done.after["status"]) == ("doing", "done")
    assert history[-1].before is None


async def test_stale_edit_is_refused_not_lost(store: Store) -> None:
    tenant = Plans(store, "contoso")
    tactical = await tenant.create_tactical_plan(
        await new_master(tenant), title="Feb", owner=LEADER, window=FEB, actor=LEADER
    )
    task = await tenant.add_task(tactical.id, title="Brief", due_on=date(2026, 2, 3), actor=LEADER)
    await tenant.update_task(task.id, TaskChanges(title="Brief v2"), actor="a", expected_version=1)
    with raises_saying(StaleEdit, "version 1, it is now at version 2"):
        await tenant.update_task(task.id, TaskChanges(title="Brief v1 edit"), actor="b", expected_version=1)
    assert (await tenant.get_task(task.id)).title == "Brief v2"


async def test_concurrent_edits_of_one_task_never_lose_an_update(store: Store, database: Database) -> None:
    tenant = Plans(store, "contoso")
    tactical = await tenant.create_tactical_plan(
        await new_master(tenant), title="Feb", owner=LEADER, window=FEB, actor=LEADER
    )
    task = await tenant.add_task(tactical.id, title="notes:", due_on=date(2026, 2, 3), actor=LEADER)
    editors = 12
    # Each editor uses its own engine (its own connections), like separate replicas of the bot.
    stores = [Store(database.engine()) for _ in range(editors)]
    try:
        await asyncio.gather(
            *(
                Plans(s, "contoso").edit_task(
                    task.id, lambda t, n=n: replace(t, title=f"{t.title} {n}"), actor=f"editor-{n}"
                )
                for n, s in enumerate(stores)
            )
        )
    finally:
        for s in stores:
            await s.close()
    final = await tenant.get_task(task.id)
    assert sorted(final.title.split()[1:], key=int) == [str(n) for n in range(editors)]
    assert final.version == 1 + editors
    assert len(await tenant.events(subject_type="task", subject_id=task.id)) == 1 + editors


async def test_tasks_due_in_a_window_are_listed_by_due_date(store: Store) -> None:
    tenant = Plans(store, "contoso")
    tactical = await tenant.create_tactical_plan(
        await new_master(tenant), title="Feb", owner=LEADER, window=FEB, actor=LEADER
    )
    ids = {}
    for day, owner in [(10, "a"), (3, "b"), (12, "a"), (20, "a")]:
        ids[day] = (
            await tenant.add_task(tactical.id, title=f"t{day}", due_on=date(2026, 2, day), owner=owner, actor=LEADER)
        ).id
    await tenant.update_task(ids[12], TaskChanges(status=TaskStatus.DONE), actor="a")

    due = await tenant.tasks_due(date(2026, 2, 1), date(2026, 2, 14))
    assert [t.id for t in due] == [ids[3], ids[10]]
    assert [t.id for t in await tenant.tasks_due(date(2026, 2, 1), date(2026, 2, 14), open_only=False)] == [
        ids[3],
        ids[10],
        ids[12],
    ]
    assert [t.id for t in await tenant.tasks_of_owner("a")] == [ids[10], ids[20]]


async def test_weekly_plan_takes_the_weeks_tasks_and_carries_over_unfinished_ones(store: Store) -> None:
    tenant = Plans(store, "contoso")
    tactical = await tenant.create_tactical_plan(
        await new_master(tenant), title="Feb", owner=LEADER, window=FEB, actor=LEADER
    )
    last_week_open = await tenant.add_task(tactical.id, title="open", due_on=date(2026, 2, 4), actor=LEADER)
    last_week_done = await tenant.add_task(tactical.id, title="done", due_on=date(2026, 2, 5), actor=LEADER)
    this_week = await tenant.add_task(tactical.id, title="this", due_on=date(2026, 2, 11), actor=LEADER)
    await tenant.add_task(tactical.id, title="next", due_on=date(2026, 2, 17), actor=LEADER)
    await tenant.update_task(last_week_done.id, TaskChanges(status=TaskStatus.DONE), actor=LEADER)

    weekly, items = await tenant.derive_weekly_plan(tactical.id, "2026-W07", actor=LEADER)
    assert (weekly.tier, weekly.iso_week, weekly.parent_id) == (Tier.WEEKLY, "2026-W07", tactical.id)
    assert weekly.window == Window(start=date(2026, 2, 9), end=date(2026, 2, 15))
    assert [(i.task.id, i.carried_over) for i in items] == [(last_week_open.id, True), (this_week.id, False)]

    # Deriving again is idempotent; a task added later for that week joins it at once.
    late = await tenant.add_task(tactical.id, title="late", due_on=date(2026, 2, 13), actor=LEADER)
    again, items = await tenant.derive_weekly_plan(tactical.id, "2026-w07", actor=LEADER)
    assert again.id == weekly.id
    assert [i.task.id for i in items] == [last_week_open.id, this_week.id, late.id]
    assert len(await tenant.list_plans(Tier.WEEKLY)) == 1


async def test_week_only_partly_inside_the_tactical_plan_is_clipped_to_it(store: Store) -> None:
    tenant = Plans(store, "contoso")
    tactical = await tenant.create_tactical_plan(
        await new_master(tenant), title="Feb", owner=LEADER, window=FEB, actor=LEADER
    )
    weekly, _ = await tenant.derive_weekly_plan(tactical.id, "2026-W05", actor=LEADER)  # 26 Jan to 1 Feb
    assert weekly.window == Window(start=date(2026, 2, 1), end=date(2026, 2, 1))
    with pytest.raises(WindowConflict, match="tactical plan"):
        await tenant.derive_weekly_plan(tactical.id, "2026-W20", actor=LEADER)
    with pytest.raises(PlanNotFound):
        await tenant.derive_weekly_plan(tactical.master_id or 0, "2026-W07", actor=LEADER)


async def test_metric_readings_are_idempotent_by_metric_time_and_source(store: Store) -> None:
    tenant = Plans(store, "contoso")
    master_id = await new_master(tenant)
    sqls = await tenant.find_metric("sqls")
    at = datetime(2026, 2, 1, 12, tzinfo=UTC)
    first = await tenant.record_reading(sqls.id, 120, at=at, source="hubspot", actor="hubspot")
    again = await tenant.record_reading(sqls.id, 120, at=at, source="hubspot", actor="hubspot")
    other_source = await tenant.record_reading(sqls.id, 118, at=at, source="chat", actor=LEADER)
    corrected = await tenant.record_reading(sqls.id, 125, at=at, source="hubspot", actor="hubspot")
    assert first.id == again.id == corrected.id != other_source.id
    assert [(r.value, r.source) for r in await tenant.readings(sqls.id)] == [(125, "hubspot"), (118, "chat")]
    assert await count(store, metric_readings) == 2
    kinds = [e.kind for e in await tenant.events(subject_type="metric")]
    assert kinds.count("metric.reading") == 2
    assert kinds.count("metric.reading.corrected") == 1
    with raises_saying(MetricNotFound, "Known metrics: SQLs"):
        await tenant.find_metric("MQLs", plan_id=master_id)
    with pytest.raises(MetricNotFound):
        await Plans(store, "fabrikam").record_reading(sqls.id, 1, actor="intruder")


async def test_rollup_through_the_store_matches_hand_computed_health(store: Store) -> None:
    tenant = Plans(store, "contoso")
    master_id = await new_master(tenant)  # 1 Jan to 31 Mar: on 14 Feb, 45 of 90 days gone
    jan = await tenant.create_tactical_plan(
        master_id,
        title="January",
        owner=LEADER,
        window=Window(start=date(2026, 1, 1), end=date(2026, 1, 31)),
        actor=LEADER,
    )
    feb = await tenant.create_tactical_plan(master_id, title="February", owner=LEADER, window=FEB, actor=LEADER)
    for day in (5, 12, 19, 26):
        t = await tenant.add_task(jan.id, title=f"jan {day}", due_on=date(2026, 1, day), actor=LEADER)
        await tenant.update_task(t.id, TaskChanges(status=TaskStatus.DONE), actor=LEADER)
    feb_tasks = [
        await tenant.add_task(feb.id, title=f"feb {d}", due_on=date(2026, 2, d), actor=LEADER)
        for d in (3, 6, 10, 11, 12, 13, 20, 24, 26, 27)
    ]
    for t in feb_tasks[:2]:
        await tenant.update_task(t.id, TaskChanges(status=TaskStatus.DONE), actor=LEADER)
    await tenant.update_task(feb_tasks[2].id, TaskChanges(status=TaskStatus.BLOCKED), actor=LEADER)
    sqls = await tenant.find_metric("SQLs")
    await tenant.record_reading(sqls.id, 240, at=datetime(2026, 2, 13, tzinfo=UTC), actor=LEADER)
    await tenant.record_reading(
        sqls.id, 999, at=datetime(2026, 2, 20, tzinfo=UTC), actor=LEADER
    )  # after as_of: ignored

    tree = await tenant.rollup(feb.id, as_of=date(2026, 2, 14))
    assert tree.plan.id == master_id
    # February: 2 of 10 done with 14 of 28 days gone (gap 0.3): off track; 10, 11, 12 and 13 Feb are overdue.
    feb_rollup = tree.find(feb.id)
    assert feb_rollup is not None
    assert (feb_rollup.counts.total, feb_rollup.counts.done, feb_rollup.counts.overdue, feb_rollup.counts.blocked) == (
        10,
        2,
        4,
        1,
    )
    assert feb_rollup.health is Health.OFF_TRACK
    # Master: 6 of 14 done, half the window gone (gap 0.07); SQLs 240 vs 250 expected (4% behind): on track;
    # but tasks are overdue and February is off track: at risk.
    assert tree.progress == pytest.approx(6 / 14)
    assert tree.metrics[0].actual == 240
    assert tree.metrics[0].health is Health.ON_TRACK
    assert tree.health is Health.AT_RISK
    assert [reason_text(reason) for reason in tree.reasons] == [
        "4 tasks overdue",
        "tactical plan 'February' is off track",
    ]


async def test_rollup_counts_a_weekly_plan_by_its_items_and_keeps_every_kpi_of_a_plan(store: Store) -> None:
    tenant = Plans(store, "contoso")
    master_id = await new_master(tenant)
    await tenant.add_metric(master_id, MetricSpec(name="Pipeline", target=900_000, unit="USD"), actor=LEADER)
    feb = await tenant.create_tactical_plan(master_id, title="February", owner=LEADER, window=FEB, actor=LEADER)
    done = await tenant.add_task(feb.id, title="done early", due_on=date(2026, 2, 3), actor=LEADER)
    await tenant.update_task(done.id, TaskChanges(status=TaskStatus.DONE), actor=LEADER)
    await tenant.add_task(feb.id, title="left open", due_on=date(2026, 2, 5), actor=LEADER)  # carried into W07
    finished = await tenant.add_task(feb.id, title="this week", due_on=date(2026, 2, 10), actor=LEADER)
    stuck = await tenant.add_task(feb.id, title="stuck", due_on=date(2026, 2, 12), actor=LEADER)
    await tenant.add_task(feb.id, title="next week", due_on=date(2026, 2, 17), actor=LEADER)
    weekly, _ = await tenant.derive_weekly_plan(feb.id, "2026-W07", actor=LEADER)
    await tenant.update_task(finished.id, TaskChanges(status=TaskStatus.DONE), actor=LEADER)
    await tenant.update_task(stuck.id, TaskChanges(status=TaskStatus.BLOCKED), actor=LEADER)

    tree = await tenant.rollup(weekly.id, as_of=date(2026, 2, 14))
    assert tree.plan.id == master_id
    assert [pace.metric.name for pace in tree.metrics] == ["SQLs", "Pipeline"]
    week = tree.find(weekly.id)
    assert week is not None
    # Its items: the task left open on 5 Feb, and this week's two; one done, two overdue, one of them blocked.
    assert (week.counts.total, week.counts.done, week.counts.overdue, week.counts.blocked) == (3, 1, 2, 1)
    february = tree.find(feb.id)
    assert february is not None
    assert (february.counts.total, february.counts.done, february.counts.overdue) == (5, 2, 2)
    assert february.metrics == ()
    assert tree.counts.total == 5


async def shown_by_default(tenant: Plans, day: date) -> int | None:
    found = await tenant.owned_rollup(None, day)
    return found.rollup.plan.id if found is not None else None


async def test_the_master_plan_shown_by_default_is_the_one_active_that_day(store: Store) -> None:
    tenant = Plans(store, "contoso")
    assert await shown_by_default(tenant, date(2026, 2, 14)) is None
    q1 = await new_master(tenant)
    await Plans(store, "fabrikam").create_master_plan(
        title="Another tenant's plan", owner="aad-other", window=Q1, actor="aad-other"
    )
    assert await shown_by_default(tenant, date(2026, 2, 14)) == q1
    assert await shown_by_default(tenant, date(2026, 5, 1)) == q1  # none active that day, but only one

    q2 = await tenant.create_master_plan(
        title="Q2", owner=LEADER, window=Window(start=date(2026, 4, 1), end=date(2026, 6, 30)), actor=LEADER
    )
    assert await shown_by_default(tenant, date(2026, 5, 1)) == q2.id
    assert await shown_by_default(tenant, date(2026, 8, 1)) is None  # none active, two to choose from
    await tenant.create_master_plan(title="Also Q1", owner=LEADER, window=Q1, actor=LEADER)
    assert await shown_by_default(tenant, date(2026, 2, 14)) is None  # two active
    with pytest.raises(PlanNotFound):
        await tenant.owned_rollup(999, date(2026, 2, 14))


async def test_a_rollup_names_the_owners_the_directory_knows(store: Store) -> None:
    tenant = Plans(store, "contoso")
    master_id = await new_master(tenant)
    await tenant.create_tactical_plan(master_id, title="February", owner="aad-member", window=FEB, actor=LEADER)
    await tenant.create_tactical_plan(
        master_id,
        title="March",
        owner="a name typed in chat",
        window=Window(start=date(2026, 3, 1), end=date(2026, 3, 31)),
        actor=LEADER,
    )
    await Directory(store, "contoso").remember_person(LEADER, "Leader")
    await Directory(store, "contoso").remember_person("aad-member", "Member")
    await Directory(store, "fabrikam").remember_person("a name typed in chat", "Another tenant's person")

    found = await tenant.owned_rollup(master_id, date(2026, 2, 14))
    assert found.owner_names == {LEADER: "Leader", "aad-member": "Member"}


async def test_plan_window_change_keeps_children_inside(store: Store) -> None:
    tenant = Plans(store, "contoso")
    master_id = await new_master(tenant)
    tactical = await tenant.create_tactical_plan(master_id, title="Feb", owner=LEADER, window=FEB, actor=LEADER)
    with pytest.raises(WindowConflict, match="tactical plan"):
        await tenant.update_plan(master_id, window=Window(start=date(2026, 2, 10), end=date(2026, 3, 31)), actor=LEADER)
    await tenant.add_task(tactical.id, title="t", due_on=date(2026, 2, 20), actor=LEADER)
    with raises_saying(WindowConflict, "due date of task"):
        await tenant.update_plan(
            tactical.id, window=Window(start=date(2026, 2, 1), end=date(2026, 2, 14)), actor=LEADER
        )
    updated = await tenant.update_plan(master_id, title="600 SQLs by 31 March", expected_version=1, actor=LEADER)
    assert (updated.title, updated.version) == ("600 SQLs by 31 March", 2)
    with pytest.raises(StaleEdit):
        await tenant.update_plan(master_id, title="stale", expected_version=1, actor=LEADER)
    [change] = [e for e in await tenant.events(subject_type="plan", subject_id=master_id) if e.kind == "plan.updated"]
    assert change.before is not None
    assert change.after is not None
    assert (change.before["title"], change.after["title"]) == ("500 SQLs by 31 March", "600 SQLs by 31 March")


async def test_deleting_a_plan_removes_its_tree_and_keeps_the_record(store: Store) -> None:
    tenant = Plans(store, "contoso")
    master_id = await new_master(tenant)
    tactical = await tenant.create_tactical_plan(master_id, title="Feb", owner=LEADER, window=FEB, actor=LEADER)
    await tenant.add_task(tactical.id, title="t", due_on=date(2026, 2, 20), actor=LEADER)
    await tenant.delete_plan(master_id, actor=LEADER)
    assert await tenant.list_plans() == []
    assert await count(store, tasks) == 0
    [deleted] = await tenant.events(subject_type="plan", subject_id=master_id, limit=1)
    assert deleted.kind == "plan.deleted"
    assert deleted.after is None
    assert await count(store, events) > 0


async def test_blank_text_and_bad_values_are_refused(store: Store) -> None:
    tenant = Plans(store, "contoso")
    with pytest.raises(InvalidValue, match="title"):
        await tenant.create_master_plan(title="   ", owner=LEADER, window=Q1, actor=LEADER)
    with pytest.raises(InvalidValue, match="tenant_id"):
        Plans(store, "")
    sqls_plan = await new_master(tenant)
    sqls = await tenant.find_metric("SQLs", plan_id=sqls_plan)
    with pytest.raises(InvalidValue) as refused:
        await tenant.record_reading(sqls.id, float("nan"), actor=LEADER)
    assert refused.value.expected is Expected.FINITE_NUMBER
    with pytest.raises(InvalidValue) as refused:
        await tenant.add_metric(sqls_plan, MetricSpec(name="SQLs", target=1), actor=LEADER)
    assert (refused.value.expected, refused.value.details) == (Expected.UNUSED_METRIC_NAME, {"plan": sqls_plan})
    assert len(await tenant.list_plans()) == 1


async def test_a_sqlite_file_is_written_ahead_and_synced_at_checkpoints(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'cos.db'}")
    try:
        async with engine.connect() as conn:
            journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
            synchronous = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar_one()
    finally:
        await engine.dispose()
    # WAL with NORMAL (1) stays consistent through a crash; FULL (2) would wait for the disk at every commit.
    assert (journal, synchronous) == ("wal", 1)


async def test_a_write_transaction_that_broke_or_was_cancelled_rolls_back_and_leaves_the_next_one_to_run(
    store: Store,
) -> None:
    tenant = Plans(store, "contoso")
    window = Window(start=date(2026, 1, 1), end=date(2026, 1, 31))
    master = await tenant.create_master_plan(title="Q1", owner="aad-lead", window=window, actor="aad-lead")
    renaming = update(plans).where(plans.c.id == master.id).values(title="renamed")

    async def broken_half_way() -> None:
        async with store.transaction() as conn:
            await conn.execute(renaming)
            await conn.invalidate()  # as SQLAlchemy does to a connection whose statement was cancelled
            raise RuntimeError("the connection broke")

    with pytest.raises(RuntimeError, match="broke"):
        await broken_half_way()
    holding = asyncio.Event()

    async def cancelled_half_way() -> None:
        async with store.transaction() as conn:
            await conn.execute(renaming)
            holding.set()
            await asyncio.sleep(60)

    writer = asyncio.create_task(cancelled_half_way())
    await holding.wait()
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    # Neither kept its write, nor the process's write lock (on SQLite): the next write runs at once.
    await asyncio.wait_for(tenant.create_master_plan(title="Q2", owner="x", window=window, actor="x"), timeout=5)
    assert sorted(p.title for p in await tenant.list_plans()) == ["Q1", "Q2"]


# ---- receipts: what a delivered activity writes, it writes once ---------------------------------------------------


async def test_under_a_receipt_the_first_write_records_the_key_and_a_second_attempt_keeps_nothing(
    store: Store,
) -> None:
    tenant = Plans(store, "contoso")
    window = Window(start=date(2026, 1, 1), end=date(2026, 1, 31))
    master = await tenant.create_master_plan(title="Q1", owner="aad-lead", window=window, actor="aad-lead")
    launch = await tenant.create_tactical_plan(master.id, title="Launch", owner="aad-lead", window=window, actor="x")
    with store.receipt("contoso", "activity:a:1") as receipt:
        assert not await store.processed("contoso", "activity:a:1")
        await tenant.add_task(launch.id, title="Brief", due_on=date(2026, 1, 9), owner="aad-lead", actor="x")
        assert receipt.recorded
    assert await store.processed("contoso", "activity:a:1")
    assert not await store.processed("fabrikam", "activity:a:1")
    # The same activity delivered again, to this replica or another: its first write finds the key.
    with pytest.raises(AlreadyProcessed), store.receipt("contoso", "activity:a:1"):
        await tenant.add_task(launch.id, title="Brief", due_on=date(2026, 1, 9), owner="aad-lead", actor="x")
    assert [t.title for t in await tenant.tasks_of_owner("aad-lead")] == ["Brief"]
    # Outside a receipt nothing is recorded; a read-only attempt records nothing either.
    with store.receipt("contoso", "activity:a:2"):
        await tenant.list_plans()
    assert not await store.processed("contoso", "activity:a:2")


async def test_work_started_from_a_receipt_shares_it_and_a_failed_write_leaves_the_activity_to_run_again(
    store: Store,
) -> None:
    tenant = Plans(store, "contoso")
    window = Window(start=date(2026, 1, 1), end=date(2026, 1, 31))

    async def failing_write() -> None:
        async with store.transaction() as conn:
            await conn.execute(select(func.count()).select_from(plans))
            raise RuntimeError("the write failed half-way")

    with store.receipt("contoso", "activity:b:1"):
        with pytest.raises(RuntimeError):
            await failing_write()
        assert not await store.processed("contoso", "activity:b:1")
        background = asyncio.create_task(
            tenant.create_master_plan(title="Q1", owner="aad-lead", window=window, actor="aad-lead")
        )
        await background
        await tenant.create_master_plan(title="Q2", owner="aad-lead", window=window, actor="aad-lead")
    assert await store.processed("contoso", "activity:b:1")
    assert sorted(p.title for p in await tenant.list_plans()) == ["Q1", "Q2"]
