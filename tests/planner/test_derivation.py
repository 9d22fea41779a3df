from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from planner.domain.derivation import split_window, tactical_proposals, weekly_selection
from planner.domain.errors import Expected, InvalidValue
from planner.domain.model import Direction, Metric, Plan, Task, TaskStatus, Tier, Window, iso_week_window

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


def test_monthly_split_follows_calendar_months_and_clips_to_the_window() -> None:
    parts = split_window(Window(start=date(2026, 1, 15), end=date(2026, 3, 31)), "monthly")
    assert [(p.start, p.end) for p in parts] == [
        (date(2026, 1, 15), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 31)),
    ]


def test_fortnightly_and_quarterly_splits_cover_the_window_without_gaps() -> None:
    year = Window(start=date(2026, 1, 1), end=date(2026, 12, 31))
    quarters = split_window(year, "quarterly")
    assert [(q.start.month, q.end.month) for q in quarters] == [(1, 3), (4, 6), (7, 9), (10, 12)]
    fortnights = split_window(Window(start=date(2026, 1, 1), end=date(2026, 1, 31)), "fortnightly")
    assert [(f.start.day, f.end.day) for f in fortnights] == [(1, 14), (15, 28), (29, 31)]
    with pytest.raises(InvalidValue) as refused:
        split_window(year, "weekly")
    assert refused.value.expected is Expected.ONE_OF
    assert refused.value.details == {"choices": ("monthly", "fortnightly", "quarterly")}


def test_tactical_proposals_prorate_growing_targets_by_days() -> None:
    master = Plan(
        id=1,
        tenant_id="t",
        tier=Tier.MASTER,
        parent_id=None,
        master_id=None,
        title="500 SQLs",
        owner="lead",
        window=Window(start=date(2026, 1, 1), end=date(2026, 3, 31)),
        created_at=CREATED,
    )
    sqls = Metric(
        id=1,
        tenant_id="t",
        plan_id=1,
        name="SQLs",
        unit="",
        direction=Direction.UP,
        baseline=0,
        target=450,
        tolerance=0.1,
    )
    cpl = Metric(
        id=2,
        tenant_id="t",
        plan_id=1,
        name="CPL",
        unit="USD",
        direction=Direction.DOWN,
        baseline=100,
        target=60,
        tolerance=0.1,
    )
    proposals = tactical_proposals(master, [sqls, cpl], "monthly")
    assert [p["title"] for p in proposals] == [
        "500 SQLs: January 2026",
        "500 SQLs: February 2026",
        "500 SQLs: March 2026",
    ]
    # 450 over 90 days: 31, 28 and 31 days' worth.
    assert [p["kpis"][0]["target"] for p in proposals] == [155.0, 140.0, 155.0]  # type: ignore[index]
    assert proposals[1]["kpis"][1] == {  # type: ignore[index]
        "name": "CPL",
        "target": 60,
        "unit": "USD",
        "baseline": 100,
        "tolerance": 0.1,
    }
