"""Tasks: the one writer of `tasks`, and the queries that list them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Row, RowMapping

from planner.domain.model import Task, TaskStatus, Window
from planner.store import Connection
from planner.store.schema import tasks

_FIELDS = (
    "id",
    "tenant_id",
    "plan_id",
    "master_id",
    "title",
    "owner",
    "due_on",
    "status",
    "milestone",
    "created_at",
    "started_at",
    "done_at",
    "snoozed_until",
    "blocked_reason",
    "version",
)
LABELLED_COLUMNS = tuple(tasks.c[name].label(f"task_{name}") for name in _FIELDS)
"""The tasks table's columns named `task_<column>`, for a query that joins a task with rows whose names clash;
read back with `labelled_task_from`."""
# One lookup by name for all of a row's task columns: this runs once per task listed.
_VALUES = itemgetter(*_FIELDS)
_LABELLED_VALUES = itemgetter(*(f"task_{name}" for name in _FIELDS))
_STATUSES = {status.value: status for status in TaskStatus}


def task_from(row: Row[*tuple[Any, ...]]) -> Task:
    """The task in a row with the columns of `tasks` (a join may add others)."""
    return _task(_VALUES(row._mapping))


def labelled_task_from(values: RowMapping) -> Task:
    """The task in a row's values read with `LABELLED_COLUMNS`."""
    return _task(_LABELLED_VALUES(values))


def _task(values: tuple[Any, ...]) -> Task:
    (
        task_id,
        tenant_id,
        plan_id,
        master_id,
        title,
        owner,
        due_on,
        status,
        milestone,
        created_at,
        started_at,
        done_at,
        snoozed_until,
        blocked_reason,
        version,
    ) = values
    return Task(
        id=task_id,
        tenant_id=tenant_id,
        plan_id=plan_id,
        master_id=master_id,
        title=title,
        owner=owner,
        due_on=due_on,
        status=_STATUSES[status],
        milestone=milestone,
        created_at=created_at,
        started_at=started_at,
        done_at=done_at,
        snoozed_until=snoozed_until,
        blocked_reason=blocked_reason,
        version=version,
    )


async def get(conn: Connection, tenant_id: str, task_id: int) -> Task | None:
    """The tenant's task with this id, or None."""
    row = (await conn.execute(select(tasks).where(tasks.c.id == task_id, tasks.c.tenant_id == tenant_id))).first()
    return task_from(row) if row is not None else None


async def by_id(conn: Connection, tenant_id: str, task_ids: Iterable[int]) -> dict[int, Task]:
    """The tenant's tasks with these ids (ids of no task of the tenant are left out)."""
    query = select(tasks).where(tasks.c.tenant_id == tenant_id, tasks.c.id.in_(list(task_ids)))
    return {row.id: task_from(row) for row in await conn.execute(query)}


async def insert_task(
    conn: Connection,
    tenant_id: str,
    *,
    plan_id: int,
    master_id: int | None,
    title: str,
    owner: str | None,
    due_on: date,
    milestone: bool,
    created_at: datetime,
) -> Task:
    """A new task, to do, at version 1."""
    result = await conn.execute(
        insert(tasks)
        .values(
            tenant_id=tenant_id,
            plan_id=plan_id,
            master_id=master_id,
            title=title,
            owner=owner,
            due_on=due_on,
            status=TaskStatus.TODO.value,
            milestone=milestone,
            created_at=created_at,
            version=1,
        )
        .returning(tasks)
    )
    return task_from(result.one())


async def update_task(conn: Connection, task: Task, *, seen_version: int) -> bool:
    """Write `task` over the row still at `seen_version`; False when that version is gone (someone wrote since)."""
    result = await conn.execute(
        update(tasks)
        .where(tasks.c.id == task.id, tasks.c.tenant_id == task.tenant_id, tasks.c.version == seen_version)
        .values(
            plan_id=task.plan_id,
            master_id=task.master_id,
            title=task.title,
            owner=task.owner,
            due_on=task.due_on,
            status=task.status.value,
            milestone=task.milestone,
            started_at=task.started_at,
            done_at=task.done_at,
            snoozed_until=task.snoozed_until,
            blocked_reason=task.blocked_reason,
            version=task.version,
        )
    )
    return bool(result.rowcount == 1)


async def delete_task(conn: Connection, task: Task) -> bool:
    """Remove the task (the database removes its weekly items and delegations); False when it was gone already."""
    result = await conn.execute(delete(tasks).where(tasks.c.id == task.id, tasks.c.tenant_id == task.tenant_id))
    return bool(result.rowcount == 1)


async def reinsert_task(conn: Connection, task: Task, *, keep_id: bool) -> Task:
    """Put a deleted task back as it was: under its own id when `keep_id`, else under a new one."""
    values: dict[str, Any] = dict(
        tenant_id=task.tenant_id,
        plan_id=task.plan_id,
        master_id=task.master_id,
        title=task.title,
        owner=task.owner,
        due_on=task.due_on,
        status=task.status.value,
        milestone=task.milestone,
        created_at=task.created_at,
        started_at=task.started_at,
        done_at=task.done_at,
        snoozed_until=task.snoozed_until,
        blocked_reason=task.blocked_reason,
        version=task.version,
    )
    if keep_id:
        values["id"] = task.id
    return task_from((await conn.execute(insert(tasks).values(**values).returning(tasks))).one())


async def of_plan(conn: Connection, tenant_id: str, plan_id: int) -> list[Task]:
    """The tasks of a tactical plan, by due date."""
    query = select(tasks).where(tasks.c.plan_id == plan_id, tasks.c.tenant_id == tenant_id)
    return [task_from(r) for r in (await conn.execute(query.order_by(tasks.c.due_on, tasks.c.id))).all()]


async def of_master(conn: Connection, tenant_id: str, master_id: int) -> list[Task]:
    """The tasks of every tactical plan under a master plan, by due date."""
    query = select(tasks).where(tasks.c.master_id == master_id, tasks.c.tenant_id == tenant_id)
    return [task_from(r) for r in (await conn.execute(query.order_by(tasks.c.due_on, tasks.c.id))).all()]


async def due(
    conn: Connection,
    tenant_id: str,
    start: date,
    end: date,
    *,
    open_only: bool,
    owner: str | None = None,
    limit: int | None = None,
) -> list[Task]:
    """Tasks due between `start` and `end` inclusive, by due date; not done ones only with `open_only`."""
    query = select(tasks).where(tasks.c.tenant_id == tenant_id, tasks.c.due_on >= start, tasks.c.due_on <= end)
    if open_only:
        query = query.where(tasks.c.status != TaskStatus.DONE.value)
    if owner is not None:
        query = query.where(tasks.c.owner == owner)
    query = query.order_by(tasks.c.due_on, tasks.c.id)
    if limit is not None:
        query = query.limit(limit)
    return [task_from(r) for r in (await conn.execute(query)).all()]


async def of_owner(conn: Connection, tenant_id: str, owner: str, *, open_only: bool) -> list[Task]:
    """A person's tasks across all plans, by due date; not done ones only with `open_only`."""
    query = select(tasks).where(tasks.c.tenant_id == tenant_id, tasks.c.owner == owner)
    if open_only:
        query = query.where(tasks.c.status != TaskStatus.DONE.value)
    return [task_from(r) for r in (await conn.execute(query.order_by(tasks.c.due_on, tasks.c.id))).all()]


async def for_week(conn: Connection, tenant_id: str, tactical_id: int, week: Window) -> list[Task]:
    """The tactical plan's tasks a week may select: due that week, or due before it and not done."""
    query = select(tasks).where(
        tasks.c.tenant_id == tenant_id,
        tasks.c.plan_id == tactical_id,
        tasks.c.due_on <= week.end,
        or_(tasks.c.due_on >= week.start, tasks.c.status != TaskStatus.DONE.value),
    )
    return [task_from(r) for r in (await conn.execute(query)).all()]


async def one_due_outside(conn: Connection, tenant_id: str, plan_id: int, window: Window) -> Task | None:
    """A task of the tactical plan due outside `window`, if there is one."""
    query = (
        select(tasks)
        .where(
            tasks.c.plan_id == plan_id,
            tasks.c.tenant_id == tenant_id,
            or_(tasks.c.due_on < window.start, tasks.c.due_on > window.end),
        )
        .limit(1)
    )
    row = (await conn.execute(query)).first()
    return task_from(row) if row is not None else None


_MARK_DELEGATED = (
    update(tasks)
    .where(
        tasks.c.tenant_id == bindparam("tenant"), tasks.c.id == bindparam("task"), tasks.c.version == bindparam("seen")
    )
    .values(status=TaskStatus.DELEGATED.value, version=tasks.c.version + 1)
)


async def mark_task_delegated(conn: Connection, tenant_id: str, task_id: int, *, seen_version: int) -> bool:
    """Move the task to `delegated`, one version on, if it is still at `seen_version`; False when it changed."""
    seen = {"tenant": tenant_id, "task": task_id, "seen": seen_version}
    return (await conn.execute(_MARK_DELEGATED, seen)).rowcount == 1
