"""Fixing mistakes in the plan: a task edited, moved, deleted and brought back; a plan edited and archived.
Every change is an event that keeps what was there before."""

from __future__ import annotations

from datetime import date

import pytest

from planner.domain.errors import (
    InvalidValue,
    MetricNotFound,
    NothingToUndo,
    StaleUndo,
    UndoNeedsLeader,
    WindowConflict,
)
from planner.domain.model import MetricSpec, TaskChanges, Tier, Window
from planner.services.plans import UNDO_WINDOW, Plans
from planner.store import Store
from tests.conftest import FakeClock

LEADER = "aad-leader"
Q1 = Window(start=date(2026, 1, 1), end=date(2026, 3, 31))
LAUNCH = Window(start=date(2026, 1, 5), end=date(2026, 2, 27))
ABM = Window(start=date(2026, 2, 2), end=date(2026, 3, 27))


async def two_tacticals(plans: Plans) -> tuple[int, int, int]:
    master = await plans.create_master_plan(title="500 SQLs", owner=LEADER, window=Q1, actor=LEADER)
    launch = await plans.create_tactical_plan(master.id, title="Launch", owner=LEADER, window=LAUNCH, actor=LEADER)
    abm = await plans.create_tactical_plan(master.id, title="ABM", owner=LEADER, window=ABM, actor=LEADER)
    return master.id, launch.id, abm.id


async def test_a_task_moved_to_another_plan_changes_plan_and_week_in_one_event(store: Store) -> None:
    plans = Plans(store, "contoso")
    _, launch, abm = await two_tacticals(plans)
    week, _ = await plans.derive_weekly_plan(launch, "2026-W07", actor=LEADER)
    abm_week, _ = await plans.derive_weekly_plan(abm, "2026-W07", actor=LEADER)
    task = await plans.add_task(launch, title="Brief", due_on=date(2026, 2, 12), actor=LEADER)
    assert [i.task.id for i in await plans.weekly_items(week.id)] == [task.id]

    moved = await plans.update_task(task.id, TaskChanges(plan_id=abm, title="Brief the agency"), actor=LEADER)

    assert (moved.plan_id, moved.title, moved.version) == (abm, "Brief the agency", 2)
    assert await plans.weekly_items(week.id) == []
    assert [i.task.id for i in await plans.weekly_items(abm_week.id)] == [task.id]
    [event, *_] = await plans.events(subject_type="task", subject_id=task.id)
    assert event.kind == "task.moved"
    assert event.before is not None
    assert event.before["plan_id"] == launch
    assert event.after is not None
    assert event.after["plan_id"] == abm


async def test_a_task_is_not_moved_to_a_master_plan_or_out_of_its_due_date(store: Store) -> None:
    plans = Plans(store, "contoso")
    master, launch, abm = await two_tacticals(plans)
    task = await plans.add_task(launch, title="Brief", due_on=date(2026, 1, 20), actor=LEADER)
    with pytest.raises(InvalidValue):
        await plans.update_task(task.id, TaskChanges(plan_id=master), actor=LEADER)
    with pytest.raises(WindowConflict):
        await plans.update_task(task.id, TaskChanges(plan_id=abm), actor=LEADER)
    assert await plans.get_task(task.id) == task


async def test_a_redated_task_leaves_the_week_it_left(store: Store) -> None:
    plans = Plans(store, "contoso")
    _, launch, _ = await two_tacticals(plans)
    week7, _ = await plans.derive_weekly_plan(launch, "2026-W07", actor=LEADER)
    week8, _ = await plans.derive_weekly_plan(launch, "2026-W08", actor=LEADER)
    task = await plans.add_task(launch, title="Brief", due_on=date(2026, 2, 12), actor=LEADER)
    await plans.update_task(task.id, TaskChanges(due_on=date(2026, 2, 19)), actor=LEADER)
    assert await plans.weekly_items(week7.id) == []
    assert [i.task.id for i in await plans.weekly_items(week8.id)] == [task.id]


async def test_a_deleted_task_comes_back_as_it_was_with_its_id(store: Store, clock: FakeClock) -> None:
    plans = Plans(store, "contoso")
    _, launch, _ = await two_tacticals(plans)
    task = await plans.add_task(launch, title="Brief", due_on=date(2026, 1, 20), owner="Designer", actor=LEADER)
    other = await plans.add_task(launch, title="Later", due_on=date(2026, 1, 21), actor=LEADER)
    task = await plans.update_task(task.id, TaskChanges(milestone=True), actor=LEADER)

    await plans.delete_task(task.id, actor=LEADER)
    assert [t.id for t in await plans.list_tasks(launch)] == [other.id]
    [deleted, *_] = await plans.events(subject_type="task", subject_id=task.id)
    assert (deleted.kind, deleted.after) == ("task.deleted", None)
    assert deleted.before is not None
    assert deleted.before["title"] == "Brief"

    clock.advance(minutes=5)
    back, was = await plans.restore_task(None, actor=LEADER)
    assert (back, was) == (task, task.id)
    assert await plans.get_task(task.id) == task
    with pytest.raises(NothingToUndo):  # undone already: nothing left to undo
        await plans.restore_task(task.id, actor=LEADER)


async def test_a_deletion_is_undone_only_within_the_window_and_only_by_its_author_without_an_id(
    store: Store, clock: FakeClock
) -> None:
    plans = Plans(store, "contoso")
    _, launch, _ = await two_tacticals(plans)
    task = await plans.add_task(launch, title="Brief", due_on=date(2026, 1, 20), actor=LEADER)
    await plans.delete_task(task.id, actor=LEADER)
    with pytest.raises(NothingToUndo):
        await plans.restore_task(None, actor="aad-someone-else")
    clock.advance(seconds=UNDO_WINDOW.total_seconds() + 1)
    with pytest.raises(NothingToUndo):
        await plans.restore_task(task.id, actor=LEADER)


async def test_a_tactical_plan_archived_is_hidden_but_kept_and_a_master_plan_is_not_archived(store: Store) -> None:
    plans = Plans(store, "contoso")
    master, launch, abm = await two_tacticals(plans)
    archived = await plans.archive_plan(launch, actor=LEADER)
    assert archived.archived_at is not None
    assert [p.id for p in await plans.list_plans(Tier.TACTICAL)] == [abm]
    assert [p.id for p in await plans.list_plans(Tier.TACTICAL, archived=True)] == [launch, abm]
    assert (await plans.get_plan(launch)).title == "Launch"
    [event, *_] = await plans.events(subject_type="plan", subject_id=launch)
    assert event.kind == "plan.archived"
    with pytest.raises(InvalidValue):
        await plans.archive_plan(master, actor=LEADER)
    back = await plans.archive_plan(launch, archived=False, actor=LEADER)
    assert back.archived_at is None
    assert [p.id for p in await plans.list_plans(Tier.TACTICAL)] == [launch, abm]


MEMBER = "aad-member"


async def test_undo_takes_back_the_callers_last_edits_one_by_one_and_each_undo_is_an_event(
    store: Store, clock: FakeClock
) -> None:
    plans = Plans(store, "contoso")
    _, launch, abm = await two_tacticals(plans)
    task = await plans.add_task(launch, title="Brief", due_on=date(2026, 2, 12), owner=LEADER, actor=LEADER)
    await plans.update_task(task.id, TaskChanges(title="Brief the agency", due_on=date(2026, 2, 13)), actor=LEADER)
    await plans.update_task(task.id, TaskChanges(plan_id=abm, milestone=True), actor=LEADER)

    moved_back = await plans.undo(actor=LEADER)
    assert (moved_back.fields, moved_back.subject.plan_id) == (("plan_id", "milestone"), launch)
    renamed_back = await plans.undo(actor=LEADER)
    assert renamed_back.fields == ("title", "due_on")
    now = await plans.get_task(task.id)
    assert (now.title, now.due_on, now.plan_id, now.milestone, now.owner) == (
        "Brief",
        date(2026, 2, 12),
        launch,
        False,
        LEADER,
    )
    undos = [e for e in await plans.events(subject_type="task", subject_id=task.id) if e.kind == "task.undone"]
    assert len(undos) == 2
    with pytest.raises(NothingToUndo):
        await plans.undo(actor=LEADER)


async def test_undo_of_a_plan_edit_and_of_an_archive(store: Store) -> None:
    plans = Plans(store, "contoso")
    _, launch, _ = await two_tacticals(plans)
    await plans.update_plan(
        launch, title="Spring launch", window=Window(start=LAUNCH.start, end=date(2026, 3, 6)), actor=LEADER
    )
    await plans.archive_plan(launch, actor=LEADER)
    unarchived = await plans.undo(actor=LEADER)
    assert (unarchived.fields, unarchived.subject.archived_at) == (("archived_at",), None)
    undone = await plans.undo(actor=LEADER, subject=("plan", launch))
    plan = await plans.get_plan(launch)
    assert (undone.fields, plan.title, plan.window) == (("title", "window"), "Launch", LAUNCH)


async def test_a_stale_undo_is_refused_and_changes_nothing(store: Store) -> None:
    plans = Plans(store, "contoso")
    _, launch, _ = await two_tacticals(plans)
    task = await plans.add_task(launch, title="Brief", due_on=date(2026, 2, 12), actor=LEADER)
    await plans.update_task(task.id, TaskChanges(title="Brief the agency"), actor=LEADER)
    changed = await plans.update_task(task.id, TaskChanges(due_on=date(2026, 2, 20)), actor=MEMBER)
    with pytest.raises(StaleUndo) as refused:
        await plans.undo(actor=LEADER)
    assert refused.value.changed_by == MEMBER
    assert await plans.get_task(task.id) == changed
    assert not [e for e in await plans.events() if e.kind.endswith(".undone")]


async def test_an_edit_is_undone_only_within_the_window_and_only_by_its_author(store: Store, clock: FakeClock) -> None:
    plans = Plans(store, "contoso")
    _, launch, _ = await two_tacticals(plans)
    task = await plans.add_task(launch, title="Brief", due_on=date(2026, 2, 12), actor=LEADER)
    edited = await plans.update_task(task.id, TaskChanges(title="Brief the agency"), actor=LEADER)
    with pytest.raises(NothingToUndo):
        await plans.undo(actor=MEMBER)
    clock.advance(seconds=UNDO_WINDOW.total_seconds() + 1)
    with pytest.raises(NothingToUndo):
        await plans.undo(actor=LEADER)
    assert await plans.get_task(task.id) == edited


async def test_a_master_plans_edit_is_undone_by_its_leader_only(store: Store) -> None:
    plans = Plans(store, "contoso")
    master, _, _ = await two_tacticals(plans)
    await plans.update_plan(master, constraints=["no paid social"], actor=MEMBER)
    with pytest.raises(UndoNeedsLeader):
        await plans.undo(actor=MEMBER)
    assert (await plans.get_plan(master)).constraints == ("no paid social",)


async def test_a_master_plans_targets_change_with_its_goals_in_one_event_and_are_undone_with_them(
    store: Store,
) -> None:
    plans = Plans(store, "contoso")
    master = await plans.create_master_plan(
        title="500 SQLs", owner=LEADER, window=Q1, metrics=[MetricSpec(name="SQLs", target=500)], actor=LEADER
    )
    [sqls] = await plans.list_metrics(master.id)
    edited = await plans.update_plan(master.id, title="600 SQLs", targets={sqls.id: 600}, actor=LEADER)
    assert (edited.version, (await plans.get_metric(sqls.id)).target) == (2, 600)
    [event] = [e for e in await plans.events(subject_type="plan") if e.kind == "plan.updated"]
    assert ((event.before or {})["targets"], (event.after or {})["targets"]) == ({"SQLs": 500}, {"SQLs": 600})
    undone = await plans.undo(actor=LEADER, subject=("plan", master.id), version=2)
    assert undone.fields == ("title", "targets")
    assert ((await plans.get_plan(master.id)).title, (await plans.get_metric(sqls.id)).target) == ("500 SQLs", 500)
    with pytest.raises(MetricNotFound):  # a plan's change sets its own KPIs only
        await plans.update_plan(master.id, targets={sqls.id + 99: 1}, actor=LEADER)


async def test_an_undo_of_a_target_someone_changed_since_is_refused_and_changes_nothing(store: Store) -> None:
    plans = Plans(store, "contoso")
    master = await plans.create_master_plan(
        title="500 SQLs", owner=LEADER, window=Q1, metrics=[MetricSpec(name="SQLs", target=500)], actor=LEADER
    )
    [sqls] = await plans.list_metrics(master.id)
    await plans.update_plan(master.id, targets={sqls.id: 600}, actor=LEADER)
    await plans.update_plan(master.id, targets={sqls.id: 650}, actor=MEMBER)  # as approved for a member
    with pytest.raises(StaleUndo):
        await plans.undo(actor=LEADER)
    with pytest.raises(UndoNeedsLeader):
        await plans.undo(actor=MEMBER)
    assert (await plans.get_metric(sqls.id)).target == 650
