"""Plans and the weekly plans' selection of tasks: the one writer of `plans` and `weekly_items`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Row

from planner.domain.model import Plan, Task, Tier, WeeklyItem, Window
from planner.store import Connection
from planner.store.schema import plans, tasks, weekly_items
from planner.store.tasks import task_from


def plan_from(row: Row[Any]) -> Plan:
    """The plan in a row of `plans` (a join may add other columns)."""
    return Plan(
        id=row.id,
        tenant_id=row.tenant_id,
        tier=Tier(row.tier),
        parent_id=row.parent_id,
        master_id=row.master_id,
        title=row.title,
        owner=row.owner,
        window=Window(start=row.starts_on, end=row.ends_on),
        constraints=tuple(row.constraints or ()),
        iso_week=row.iso_week,
        created_at=row.created_at,
        version=row.version,
        archived_at=row.archived_at,
    )


async def get(conn: Connection, tenant_id: str, plan_id: int) -> Plan | None:
    """The tenant's plan with this id, or None."""
    row = (await conn.execute(select(plans).where(plans.c.id == plan_id, plans.c.tenant_id == tenant_id))).first()
    return plan_from(row) if row is not None else None


async def listed(
    conn: Connection,
    tenant_id: str,
    tier: Tier | None = None,
    *,
    parent_id: int | None = None,
    archived: bool = False,
) -> list[Plan]:
    """The tenant's plans, optionally of one tier or under one parent, oldest window first; archived ones too only
    with `archived`."""
    query = select(plans).where(plans.c.tenant_id == tenant_id)
    if not archived:
        query = query.where(plans.c.archived_at.is_(None))
    if tier is not None:
        query = query.where(plans.c.tier == tier.value)
    if parent_id is not None:
        query = query.where(plans.c.parent_id == parent_id)
    return [plan_from(r) for r in (await conn.execute(query.order_by(plans.c.starts_on, plans.c.id))).all()]


# Built once, with a bound parameter: every `plan` turn that names no plan reads the master plans first.
_MASTERS = (
    select(plans)
    .where(
        plans.c.tenant_id == bindparam("tenant_id"),
        plans.c.tier == Tier.MASTER.value,
        plans.c.archived_at.is_(None),
    )
    .order_by(plans.c.starts_on, plans.c.id)
)


async def masters(conn: Connection, tenant_id: str) -> list[Plan]:
    """The tenant's master plans in use (not archived), oldest window first: `listed(conn, tenant_id, MASTER)`."""
    return [plan_from(r) for r in (await conn.execute(_MASTERS, {"tenant_id": tenant_id})).all()]


async def by_id(conn: Connection, tenant_id: str, plan_ids: Iterable[int]) -> dict[int, Plan]:
    """The tenant's plans with these ids (ids of no plan of the tenant are left out)."""
    query = select(plans).where(plans.c.tenant_id == tenant_id, plans.c.id.in_(list(plan_ids)))
    return {row.id: plan_from(row) for row in await conn.execute(query)}


async def children(conn: Connection, tenant_id: str, plan_id: int) -> list[Plan]:
    """The plans right under a plan."""
    query = select(plans).where(plans.c.parent_id == plan_id, plans.c.tenant_id == tenant_id)
    return [plan_from(r) for r in (await conn.execute(query)).all()]


async def weekly_of(conn: Connection, tenant_id: str, tactical_id: int, iso_week: str) -> Plan | None:
    """The weekly plan of `iso_week` under a tactical plan, if it was derived."""
    query = select(plans).where(
        plans.c.tenant_id == tenant_id, plans.c.parent_id == tactical_id, plans.c.iso_week == iso_week
    )
    row = (await conn.execute(query)).first()
    return plan_from(row) if row is not None else None


async def week_containing(conn: Connection, tenant_id: str, tactical_id: int, day: date) -> Plan | None:
    """The weekly plan under a tactical plan whose window holds `day`, if there is one."""
    query = select(plans).where(
        plans.c.tenant_id == tenant_id,
        plans.c.parent_id == tactical_id,
        plans.c.tier == Tier.WEEKLY.value,
        plans.c.starts_on <= day,
        plans.c.ends_on >= day,
    )
    row = (await conn.execute(query)).first()
    return plan_from(row) if row is not None else None


async def insert_plan(
    conn: Connection,
    tenant_id: str,
    *,
    tier: Tier,
    parent: Plan | None,
    title: str,
    owner: str,
    window: Window,
    constraints: Sequence[str],
    iso_week: str | None,
    created_at: datetime,
) -> Plan:
    """A new plan at version 1, under `parent` (and so under its master plan) when given."""
    values = dict(
        tenant_id=tenant_id,
        tier=tier.value,
        parent_id=parent.id if parent else None,
        master_id=(parent.master_id or parent.id) if parent else None,
        title=title,
        owner=owner,
        starts_on=window.start,
        ends_on=window.end,
        constraints=list(constraints),
        iso_week=iso_week,
        created_at=created_at,
        version=1,
    )
    return plan_from((await conn.execute(insert(plans).values(**values).returning(plans))).one())


async def update_plan(conn: Connection, plan: Plan, *, seen_version: int) -> bool:
    """Write `plan`'s editable fields over the row still at `seen_version`; False when that version is gone."""
    result = await conn.execute(
        update(plans)
        .where(plans.c.id == plan.id, plans.c.tenant_id == plan.tenant_id, plans.c.version == seen_version)
        .values(
            title=plan.title,
            owner=plan.owner,
            starts_on=plan.window.start,
            ends_on=plan.window.end,
            constraints=list(plan.constraints),
            version=plan.version,
        )
    )
    return bool(result.rowcount == 1)


async def set_archived(conn: Connection, plan: Plan, *, seen_version: int) -> bool:
    """Write `plan`'s archive time (None: back in use) over the row still at `seen_version`; False when it is gone."""
    result = await conn.execute(
        update(plans)
        .where(plans.c.id == plan.id, plans.c.tenant_id == plan.tenant_id, plans.c.version == seen_version)
        .values(archived_at=plan.archived_at, version=plan.version)
    )
    return bool(result.rowcount == 1)


async def leave_other_weeks(conn: Connection, task: Task) -> None:
    """Take the task out of the weekly plans that no longer hold it: of another tactical plan, or of a week its due
    date left."""
    stale = select(plans.c.id).where(
        plans.c.tenant_id == task.tenant_id,
        plans.c.tier == Tier.WEEKLY.value,
        (plans.c.parent_id != task.plan_id) | (plans.c.starts_on > task.due_on) | (plans.c.ends_on < task.due_on),
    )
    await conn.execute(
        delete(weekly_items).where(
            weekly_items.c.task_id == task.id,
            weekly_items.c.tenant_id == task.tenant_id,
            weekly_items.c.weekly_plan_id.in_(stale),
        )
    )


async def delete_plan(conn: Connection, plan: Plan) -> None:
    """Remove a plan; the database removes what is under it (its plans, tasks, metrics, readings, items)."""
    await conn.execute(delete(plans).where(plans.c.id == plan.id, plans.c.tenant_id == plan.tenant_id))


async def weekly_task_ids(conn: Connection, weekly_id: int) -> set[int]:
    """The ids of the tasks a weekly plan holds."""
    query = select(weekly_items.c.task_id).where(weekly_items.c.weekly_plan_id == weekly_id)
    return set((await conn.execute(query)).scalars())


async def add_weekly_items(conn: Connection, weekly: Plan, items: Sequence[WeeklyItem]) -> None:
    """Put tasks into a weekly plan."""
    if items:
        await conn.execute(
            insert(weekly_items),
            [
                dict(
                    weekly_plan_id=weekly.id,
                    task_id=item.task.id,
                    tenant_id=weekly.tenant_id,
                    carried_over=item.carried_over,
                )
                for item in items
            ],
        )


async def weekly_items_of(conn: Connection, tenant_id: str, weekly_id: int) -> list[WeeklyItem]:
    """The tasks of a weekly plan, carried-over ones first, then by due date."""
    rows = (
        await conn.execute(
            select(tasks, weekly_items.c.carried_over)
            .join(weekly_items, weekly_items.c.task_id == tasks.c.id)
            .where(weekly_items.c.weekly_plan_id == weekly_id, weekly_items.c.tenant_id == tenant_id)
            .order_by(weekly_items.c.carried_over.desc(), tasks.c.due_on, tasks.c.id)
        )
    ).all()
    return [WeeklyItem(task=task_from(r), carried_over=r.carried_over) for r in rows]
