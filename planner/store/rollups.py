"""The facts a rollup judges, read in one statement: a master plan's tree with each plan's task counts, its owner's
name and its KPIs' latest readings. Reads only; the rules that judge them are in `planner.domain.rollup`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    union_all,
)

from planner.domain.model import TaskStatus
from planner.domain.rollup import MetricFacts, PlanFacts, TaskCounts
from planner.store import Connection
from planner.store.kpis import metric_from
from planner.store.plans import plan_from
from planner.store.schema import metric_readings, metrics, people, plans, tasks, weekly_items


def _task_counts(plan_id: ColumnElement[int]) -> Select[*tuple[Any, ...]]:
    """Per plan: its tasks, done, overdue (open and due before `:as_of`) and blocked."""
    status = tasks.c.status
    overdue = and_(status != TaskStatus.DONE.value, tasks.c.due_on < bindparam("as_of"))
    one, zero = literal_column("1", Integer()), literal_column("0", Integer())
    return select(
        plan_id.label("plan_id"),
        func.count().label("total"),
        func.sum(case((status == TaskStatus.DONE.value, one), else_=zero)).label("done"),
        func.sum(case((overdue, one), else_=zero)).label("overdue"),
        func.sum(case((status == TaskStatus.BLOCKED.value, one), else_=zero)).label("blocked"),
    ).group_by(plan_id)


def _rollup_statement(root_id: Select[Any]) -> Select[*tuple[Any, ...]]:
    """The master plan tree rooted at the plan `root_id` selects, in one statement: a row per plan and metric of
    the plan (one with no metric when it has none), with the plan's task counts, its owner's name in the directory
    and the metric's latest reading before `:cutoff`.

    Parameters: tenant_id, as_of, cutoff, and those of `root_id`.
    """
    root = select(root_id.cte("root").c[0]).scalar_subquery()
    tree = (
        select(plans.c.id)
        .where(plans.c.tenant_id == bindparam("tenant_id"), or_(plans.c.id == root, plans.c.master_id == root))
        .cte("tree")
    )
    weekly = plans.alias("weekly")
    counted = union_all(
        # Tactical plans count their tasks; weekly plans their items.
        _task_counts(tasks.c.plan_id).where(tasks.c.tenant_id == bindparam("tenant_id"), tasks.c.master_id == root),
        _task_counts(weekly_items.c.weekly_plan_id)
        .select_from(weekly_items)
        .join(tasks, tasks.c.id == weekly_items.c.task_id)
        .join(weekly, weekly.c.id == weekly_items.c.weekly_plan_id)
        .where(weekly_items.c.tenant_id == bindparam("tenant_id"), weekly.c.master_id == root),
    ).subquery("counted")
    latest = (
        select(
            metric_readings.c.metric_id,
            metric_readings.c.value,
            func.row_number()
            .over(
                partition_by=metric_readings.c.metric_id,
                order_by=(metric_readings.c.at.desc(), metric_readings.c.id.desc()),
            )
            .label("rank"),
        )
        .join(metrics, metrics.c.id == metric_readings.c.metric_id)
        .where(
            metrics.c.tenant_id == bindparam("tenant_id"),
            metrics.c.plan_id.in_(select(tree.c.id)),
            metric_readings.c.at < bindparam("cutoff"),
        )
        .subquery("latest")
    )
    return (
        select(
            plans,
            counted.c.total,
            counted.c.done,
            counted.c.overdue,
            counted.c.blocked,
            *(column.label(f"metric_{column.name}") for column in metrics.c),
            latest.c.value.label("latest"),
            people.c.name.label("owner_name"),
        )
        .select_from(
            plans.join(tree, tree.c.id == plans.c.id)
            .outerjoin(counted, counted.c.plan_id == plans.c.id)
            .outerjoin(people, and_(people.c.tenant_id == plans.c.tenant_id, people.c.user_id == plans.c.owner))
            .outerjoin(metrics, and_(metrics.c.plan_id == plans.c.id, metrics.c.tenant_id == plans.c.tenant_id))
            .outerjoin(latest, and_(latest.c.metric_id == metrics.c.id, latest.c.rank == literal_column("1")))
        )
        .order_by(plans.c.id, metrics.c.id)
    )


# Built once, with bound parameters: building the statement (and its cache key) anew costs more than running it.
_ROLLUP_OF_PLAN = _rollup_statement(
    select(func.coalesce(plans.c.master_id, plans.c.id).label("id")).where(
        plans.c.id == bindparam("plan_id"), plans.c.tenant_id == bindparam("tenant_id")
    )
)


async def tree_facts(
    conn: Connection, tenant_id: str, plan_id: int, as_of: date
) -> tuple[list[PlanFacts], dict[str, str]]:
    """The facts of every plan in the master plan tree holding `plan_id` as of a day (readings up to its end), and
    the directory's names of their owners (unknown owners left out).

    Empty when the tenant has no such plan.
    """
    cutoff = datetime.combine(as_of + timedelta(days=1), time(), tzinfo=UTC)
    parameters = {"tenant_id": tenant_id, "plan_id": plan_id, "as_of": as_of, "cutoff": cutoff}
    rows = (await conn.execute(_ROLLUP_OF_PLAN, parameters)).all()
    facts: dict[int, PlanFacts] = {}
    owner_names: dict[str, str] = {}
    for row in rows:
        known = facts.get(row.id)
        if known is None:
            counts = TaskCounts()
            if row.total is not None:
                counts = TaskCounts(total=row.total, done=row.done, overdue=row.overdue, blocked=row.blocked)
            known = facts[row.id] = PlanFacts(plan=plan_from(row), counts=counts)
            if row.owner_name is not None:
                owner_names[row.owner] = row.owner_name
        if row.metric_id is not None:
            metric = MetricFacts(metric=metric_from(row, prefix="metric_"), latest=row.latest)
            facts[row.id] = replace(known, metrics=(*known.metrics, metric))
    return list(facts.values()), owner_names
