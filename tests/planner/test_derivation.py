from __future__ import annotations

from datetime import UTC, date, datetime

from planner.derivation import weekly_selection
from planner.model import Task, TaskStatus, iso_week_window

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def task(task_id: int, due: date, status: TaskStatus = TaskStatus.TODO) -> Task:
    return Task(
        id=task_id,
        tenant_id="t",
        plan_id=1,
        master_id=1,
        title=f"task {task_id}",
        owner=None,
        due_on=due,
        status=status,
        created_at=CREATED,
    )


def test_week_takes_tasks_due_that_week_and_carries_unfinished_earlier_ones() -> None:
    week = iso_week_window("2026-W07")  # 9 to 15 February
    tasks = [
        task(1, date(2026, 2, 10)),
        task(2, date(2026, 2, 15), TaskStatus.DONE),  # due this week: kept even when done
        task(3, date(2026, 2, 4)),  # last week, unfinished: carried over
        task(4, date(2026, 2, 5), TaskStatus.DONE),  # last week, finished: left behind
        task(5, date(2026, 1, 20), TaskStatus.BLOCKED),  # older, still open: carried over
        task(6, date(2026, 2, 16)),  # next week: not yet
        task(7, date(2026, 2, 3), TaskStatus.DELEGATED),  # delegated is unfinished
    ]
    items = weekly_selection(tasks, week)
    assert [(i.task.id, i.carried_over) for i in items] == [
        (5, True),
        (7, True),
        (3, True),
        (1, False),
        (2, False),
    ]


def test_empty_tactical_plan_gives_an_empty_week() -> None:
    assert weekly_selection([], iso_week_window("2026-W07")) == []
