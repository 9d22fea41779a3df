"""The plan rules run bare: no database, no clock."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from planner.domain.errors import Expected, Field, InvalidValue, WindowConflict
from planner.domain.model import Plan, Task, TaskChanges, TaskStatus, Tier, Window
from planner.domain.plans import (
    active_plan,
    apply_task_changes,
    clean_text,
    plans_meant,
    require_window_change,
    task_event_kind,
    week_of_tactical,
)

NOW = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)


def plan(plan_id: int, start: date, end: date, tier: Tier = Tier.MASTER) -> Plan:
    return Plan(
        id=plan_id,
        tenant_id="contoso",
        tier=tier,
        parent_id=None,
        master_id=None,
        title=f"Plan {plan_id}",
        owner="aad-lead",
        window=Window(start=start, end=end),
        created_at=NOW,
    )


def task(**changes: object) -> Task:
    fields: dict[str, object] = dict(
        id=1, tenant_id="contoso", plan_id=2, master_id=1, title="Brief", owner="aad-writer", due_on=date(2026, 2, 10)
    )
    fields.update(changes)
    return Task(created_at=NOW, **fields)  # type: ignore[arg-type]


def test_finishing_a_task_stamps_when_and_ends_its_snooze() -> None:
    snoozed = task(snoozed_until=NOW)
    done = apply_task_changes(snoozed, TaskChanges(status=TaskStatus.DONE), NOW)
    assert (done.done_at, done.started_at, done.snoozed_until) == (NOW, NOW, None)
    assert task_event_kind(snoozed, done) == "task.status.done"
    reopened = apply_task_changes(done, TaskChanges(status=TaskStatus.TODO), NOW)
    assert reopened.done_at is None


def test_a_block_keeps_its_reason_only_while_blocked() -> None:
    blocked = apply_task_changes(task(), TaskChanges(status=TaskStatus.BLOCKED, blocked_reason="  no  budget "), NOW)
    assert blocked.blocked_reason == "no budget"
    assert apply_task_changes(blocked, TaskChanges(status=TaskStatus.DOING), NOW).blocked_reason is None


def test_text_is_tidied_and_refused_when_empty_or_too_long() -> None:
    assert clean_text(Field.TITLE, "  Launch \n page ") == "Launch page"
    with pytest.raises(InvalidValue) as empty:
        clean_text(Field.TITLE, "   ")
    assert (empty.value.field, empty.value.expected) == (Field.TITLE, Expected.TEXT)
    with pytest.raises(InvalidValue) as long:
        clean_text(Field.OWNER, "x" * 201, limit=200)
    assert long.value.field is Field.OWNER


def test_a_week_is_clipped_to_its_tactical_plan_and_refused_outside_it() -> None:
    tactical = plan(2, date(2026, 2, 4), date(2026, 2, 20), Tier.TACTICAL)
    week = Window(start=date(2026, 2, 2), end=date(2026, 2, 8))
    assert week_of_tactical(week, "2026-W06", tactical) == Window(start=date(2026, 2, 4), end=date(2026, 2, 8))
    with pytest.raises(WindowConflict):
        week_of_tactical(Window(start=date(2026, 3, 2), end=date(2026, 3, 8)), "2026-W10", tactical)


def test_a_new_window_must_keep_the_plans_tasks_inside_it() -> None:
    tactical = plan(2, date(2026, 2, 1), date(2026, 2, 28), Tier.TACTICAL)
    narrower = Window(start=date(2026, 2, 1), end=date(2026, 2, 5))
    with pytest.raises(WindowConflict):
        require_window_change(tactical, narrower, parent=None, children=(), task_outside=task())
    with pytest.raises(InvalidValue):
        require_window_change(
            plan(3, date(2026, 2, 2), date(2026, 2, 8), Tier.WEEKLY),
            narrower,
            parent=None,
            children=(),
            task_outside=None,
        )


def test_the_plan_a_request_naming_none_means_is_the_one_active_that_day_or_the_only_one() -> None:
    q1 = plan(1, date(2026, 1, 1), date(2026, 3, 31))
    q2 = plan(2, date(2026, 4, 1), date(2026, 6, 30))
    also_q1 = plan(3, date(2026, 1, 1), date(2026, 3, 31))
    assert active_plan([], date(2026, 2, 14)) is None
    assert active_plan([q1], date(2026, 2, 14)) == q1
    assert active_plan([q1], date(2026, 5, 1)) == q1  # none active that day, but the only one
    assert active_plan([q1, q2], date(2026, 5, 1)) == q2
    assert active_plan([q1, q2], date(2026, 8, 1)) is None  # none active, two to choose from
    assert plans_meant([q1, q2], date(2026, 8, 1)) == [q1, q2]
    assert active_plan([q1, q2, also_q1], date(2026, 2, 14)) is None  # two active
    assert plans_meant([q1, q2, also_q1], date(2026, 2, 14)) == [q1, also_q1]
