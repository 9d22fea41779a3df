"""The rules of editing plans, tasks and KPIs: what text is accepted, where a task may live, which windows fit,
how a task's edit moves its status dates, and which event names a change."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime

from planner.domain.errors import Dated, Expected, Field, InvalidValue
from planner.domain.model import Plan, Task, TaskChanges, TaskStatus, Tier, Window


def clean_text(field: Field, value: str, *, limit: int = 500) -> str:
    """`value` with its whitespace runs made single spaces. Raises InvalidValue when empty or over `limit`."""
    cleaned = " ".join(value.split())
    if not cleaned:
        raise InvalidValue(field, value, Expected.TEXT)
    if len(cleaned) > limit:
        raise InvalidValue(field, value[:40] + "…", Expected.TEXT_AT_MOST, limit=limit)
    return cleaned


def plans_meant(plans: Sequence[Plan], today: date) -> list[Plan]:
    """The plans a request that names none means: those whose window includes today or, when none does, all."""
    current = [p for p in plans if p.window.includes(today)]
    return current or list(plans)


def active_plan(plans: Sequence[Plan], today: date) -> Plan | None:
    """The one plan a request that names none means (see `plans_meant`); None when there is not exactly one."""
    meant = plans_meant(plans, today)
    return meant[0] if len(meant) == 1 else None


def require_metric_home(plan: Plan) -> None:
    """KPIs are defined on master and tactical plans. Raises InvalidValue for a weekly plan."""
    if plan.tier is Tier.WEEKLY:
        raise InvalidValue(Field.PLAN, plan.id, Expected.PLAN_WITH_METRICS)


def require_reading_value(value: float) -> None:
    """Raises InvalidValue unless `value` is a finite number."""
    if value != value or value in (math.inf, -math.inf):
        raise InvalidValue(Field.VALUE, value, Expected.FINITE_NUMBER)


def require_task_home(plan: Plan) -> None:
    """Tasks live under tactical plans (added through one or one of its weeks). Raises InvalidValue for a master."""
    if plan.tier is Tier.MASTER:
        raise InvalidValue(Field.PLAN, plan.id, Expected.TASK_HOME)


def require_due_inside(due_on: date, home: Plan) -> None:
    """Raises WindowConflict when a task's due date leaves the window of the plan it belongs to."""
    Window(start=due_on, end=due_on).require_inside(
        home.window, what=Dated(kind="due date"), parent_name=Dated(kind="plan", tier=home.tier, ref=home.id)
    )


def require_window_change(
    plan: Plan, window: Window, *, parent: Plan | None, children: Iterable[Plan], task_outside: Task | None
) -> None:
    """A plan's new window stays inside its parent's and keeps its children and (tactical) task due dates inside
    it; a weekly plan always covers its ISO week. Raises InvalidValue or WindowConflict."""
    if plan.tier is Tier.WEEKLY:
        raise InvalidValue(Field.WINDOW, window, Expected.WEEK_UNCHANGED)
    if parent is not None:
        window.require_inside(
            parent.window,
            what=Dated(kind="plan", tier=plan.tier),
            parent_name=Dated(kind="plan", tier=parent.tier, ref=parent.id),
        )
    for child in children:
        child.window.require_inside(
            window,
            what=Dated(kind="plan", tier=child.tier, ref=child.id),
            parent_name=Dated(kind="new window", ref=plan.id),
        )
    if task_outside is not None:
        Window(start=task_outside.due_on, end=task_outside.due_on).require_inside(
            window,
            what=Dated(kind="due date", ref=task_outside.id),
            parent_name=Dated(kind="new window", ref=plan.id),
        )


def week_of_tactical(week: Window, iso_week: str, tactical: Plan) -> Window:
    """The part of `week` a tactical plan covers, so its weekly plan stays inside its parent.

    Raises WindowConflict when the week and the tactical plan do not overlap at all.
    """
    if week.end < tactical.window.start or week.start > tactical.window.end:
        week.require_inside(
            tactical.window,
            what=Dated(kind="week", ref=iso_week),
            parent_name=Dated(kind="plan", tier=Tier.TACTICAL, ref=tactical.id),
        )
    return Window(start=max(week.start, tactical.window.start), end=min(week.end, tactical.window.end))


def apply_task_changes(task: Task, changes: TaskChanges, now: datetime) -> Task:
    """The task with `changes` applied at `now`: starting stamps `started_at`, finishing `done_at` (reopening clears
    it), a block keeps its reason only while blocked, finishing ends a snooze. Raises InvalidValue for bad text."""
    status = changes.status or task.status
    started_at = task.started_at
    done_at = task.done_at
    if status is TaskStatus.DOING and started_at is None:
        started_at = now
    if status is TaskStatus.DONE and task.status is not TaskStatus.DONE:
        done_at = now
        started_at = started_at or now
    if status is not TaskStatus.DONE:
        done_at = None
    blocked_reason = task.blocked_reason if status is TaskStatus.BLOCKED else None
    if status is TaskStatus.BLOCKED and changes.blocked_reason is not None:
        blocked_reason = clean_text(Field.REASON, changes.blocked_reason) if changes.blocked_reason.strip() else None
    if changes.clear_owner:
        owner = None
    else:
        owner = clean_text(Field.OWNER, changes.owner, limit=200) if changes.owner is not None else task.owner
    snoozed_until = task.snoozed_until if changes.snoozed_until is None else changes.snoozed_until
    if status is TaskStatus.DONE:
        snoozed_until = None
    return replace(
        task,
        title=clean_text(Field.TITLE, changes.title) if changes.title is not None else task.title,
        owner=owner,
        due_on=changes.due_on or task.due_on,
        status=status,
        milestone=task.milestone if changes.milestone is None else changes.milestone,
        started_at=started_at,
        done_at=done_at,
        snoozed_until=snoozed_until,
        blocked_reason=blocked_reason,
    )


def task_event_kind(before: Task, after: Task) -> str:
    """The kind of event a task's edit records: its new status, a new owner, a snooze, or any other update."""
    if before.status is not after.status:
        return f"task.status.{after.status.value}"
    if before.plan_id != after.plan_id:
        return "task.moved"
    if before.owner != after.owner:
        return "task.assigned"
    if before.snoozed_until != after.snoozed_until and after.snoozed_until is not None:
        return "task.snoozed"
    return "task.updated"


def require_archivable(plan: Plan) -> None:
    """Tactical and weekly plans may be archived; a master plan is the strategy. Raises InvalidValue."""
    if plan.tier is Tier.MASTER:
        raise InvalidValue(Field.PLAN, plan.id, Expected.ARCHIVABLE_PLAN)


def task_in_snapshot(picture: Mapping[str, object]) -> Task:
    """The task an event's snapshot of it shows (what `planner.domain.snapshots.snapshot` made of it)."""

    def moment(name: str) -> datetime | None:
        value = picture.get(name)
        return datetime.fromisoformat(str(value)) if value else None

    created_at = moment("created_at")
    if created_at is None:
        raise InvalidValue(Field.TASK_SNAPSHOT, picture.get("id"), Expected.TASK_SNAPSHOT)
    owner = picture.get("owner")
    reason = picture.get("blocked_reason")
    return Task(
        id=int(str(picture["id"])),
        tenant_id=str(picture["tenant_id"]),
        plan_id=int(str(picture["plan_id"])),
        master_id=int(str(picture["master_id"])),
        title=str(picture["title"]),
        owner=str(owner) if owner else None,
        due_on=date.fromisoformat(str(picture["due_on"])),
        status=TaskStatus(str(picture["status"])),
        milestone=bool(picture.get("milestone")),
        created_at=created_at,
        started_at=moment("started_at"),
        done_at=moment("done_at"),
        snoozed_until=moment("snoozed_until"),
        blocked_reason=str(reason) if reason else None,
        version=int(str(picture.get("version") or 1)),
    )
