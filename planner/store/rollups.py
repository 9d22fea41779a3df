"""The facts a rollup judges, read in two statements: a master plan's tree with each plan's task counts and its
owner's name, then the readings of its KPIs, which each plan counts within its own window (`planner.domain.kpis`).
Reads only; the rules that judge them are in `planner.domain.rollup`."""

from __future__ import annotations

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

from planner.domain.kpis import kpi_id_of, latest_counted
from planner.domain.model import Metric, Plan, TaskStatus
from planner.domain.rollup import MetricFacts, PlanFacts, TaskCounts
from planner.store import Connection
from planner.store import kpis as kpi_rows
from planner.store.kpis import metric_from
from planner.store.plans import plan_from
from planner.store.schema import metrics, people, plans, tasks, weekly_items


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
    the plan (one with no metric when it has none), with the plan's task counts and its owner's name in the
    directory.

    Parameters: tenant_id, as_of, and those of `root_id`.
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
    return (
        select(
            plans,
            counted.c.total,
            counted.c.done,
            counted.c.overdue,
            counted.c.blocked,
            *(column.label(f"metric_{column.name}") for column in metrics.c),
            people.c.name.label("owner_name"),
        )
        .select_from(
            plans.join(tree, tree.c.id == plans.c.id)
            .outerjoin(counted, counted.c.plan_id == plans.c.id)
            .outerjoin(people, and_(people.c.tenant_id == plans.c.tenant_id, people.c.user_id == plans.c.owner))
            .outerjoin(metrics, and_(metrics.c.plan_id == plans.c.id, metrics.c.tenant_id == plans.c.tenant_id))
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
    parameters = {"tenant_id": tenant_id, "plan_id": plan_id, "as_of": as_of}
    rows = (await conn.execute(_ROLLUP_OF_PLAN, parameters)).all()
    plans_by_id: dict[int, Plan] = {}
    counts_by_id: dict[int, TaskCounts] = {}
    metrics_of: dict[int, list[Metric]] = {}
    owner_names: dict[str, str] = {}
    for row in rows:
        if row.id not in plans_by_id:
            plans_by_id[row.id] = plan_from(row)
            counts_by_id[row.id] = TaskCounts()
            if row.total is not None:
                counts_by_id[row.id] = TaskCounts(
                    total=row.total, done=row.done, overdue=row.overdue, blocked=row.blocked
                )
            metrics_of[row.id] = []
            if row.owner_name is not None:
                owner_names[row.owner] = row.owner_name
        if row.metric_id is not None:
            metrics_of[row.id].append(metric_from(row, prefix="metric_"))
    # One KPI across tiers: every metric of the tree reads its KPI's readings, as its plan's window counts them.
    kpis = {m.id: m for found in metrics_of.values() for m in found if m.kpi_id is None}
    wanted = sorted({kpi_id_of(m) for found in metrics_of.values() for m in found})
    readings = await kpi_rows.readings(conn, tenant_id, wanted, before=cutoff) if wanted else {}
    facts = []
    for plan_id, plan in plans_by_id.items():
        metric_facts = []
        for metric in metrics_of[plan_id]:
            kpi = kpis.get(kpi_id_of(metric))
            home = plans_by_id.get(kpi.plan_id) if kpi is not None else None
            opened = home.window.start if home is not None else None  # where the KPI's baseline holds
            latest = latest_counted(metric, plan, readings[kpi_id_of(metric)], as_of, kpi, opened=opened)
            metric_facts.append(
                MetricFacts(
                    metric=metric,
                    latest=latest.value if latest else None,
                    measured_on=latest.at.date() if latest else None,
                )
            )
        facts.append(PlanFacts(plan=plan, counts=counts_by_id[plan_id], metrics=tuple(metric_facts)))
    return facts, owner_names
