"""KPIs and their readings: the one writer of `metrics` and `metric_readings`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from planner.domain.model import Direction, Metric, MetricReading
from planner.store import Connection
from planner.store.schema import metric_readings, metrics


def metric_from(row: Row[Any], prefix: str = "") -> Metric:
    """The metric in a row of `metrics`, or in a row whose metric columns are named `<prefix><column>`."""
    values = row._mapping
    return Metric(
        id=values[f"{prefix}id"],
        tenant_id=values[f"{prefix}tenant_id"],
        plan_id=values[f"{prefix}plan_id"],
        name=values[f"{prefix}name"],
        unit=values[f"{prefix}unit"],
        direction=Direction(values[f"{prefix}direction"]),
        baseline=values[f"{prefix}baseline"],
        target=values[f"{prefix}target"],
        tolerance=values[f"{prefix}tolerance"],
        kpi_id=values[f"{prefix}kpi_id"],
        version=values[f"{prefix}version"],
    )


def reading_from(row: Row[Any]) -> MetricReading:
    """The reading in a row of `metric_readings`."""
    return MetricReading(
        id=row.id, tenant_id=row.tenant_id, metric_id=row.metric_id, at=row.at, value=row.value, source=row.source
    )


async def insert_metric(
    conn: Connection,
    tenant_id: str,
    *,
    plan_id: int,
    name: str,
    unit: str,
    direction: Direction,
    baseline: float,
    target: float,
    tolerance: float,
    kpi_id: int | None = None,
) -> Metric | None:
    """A new KPI at version 1 (a share of the KPI `kpi_id`, when given); None when the plan has a KPI of that name
    already (nothing is written)."""
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                insert(metrics)
                .values(
                    tenant_id=tenant_id,
                    plan_id=plan_id,
                    name=name,
                    unit=unit,
                    direction=direction.value,
                    baseline=baseline,
                    target=target,
                    tolerance=tolerance,
                    kpi_id=kpi_id,
                    version=1,
                )
                .returning(metrics)
            )
    except IntegrityError:
        return None
    return metric_from(result.one())


async def link_shares(conn: Connection, kpi: Metric, plan_ids: Sequence[int]) -> list[int]:
    """Make the unlinked metrics of `kpi`'s name on these plans shares of it, and move their readings to it (one that
    would collide with a reading the KPI has at the same time from the same source stays); their ids."""
    found = await conn.execute(
        select(metrics.c.id).where(
            metrics.c.tenant_id == kpi.tenant_id,
            metrics.c.plan_id.in_(list(plan_ids)),
            metrics.c.kpi_id.is_(None),
            func.lower(metrics.c.name) == kpi.name.lower(),
        )
    )
    share_ids = [row.id for row in found]
    if not share_ids:
        return []
    await conn.execute(update(metrics).where(metrics.c.id.in_(share_ids)).values(kpi_id=kpi.id))
    taken = metric_readings.alias("taken")
    collides = (
        select(taken.c.id)
        .where(
            taken.c.metric_id == kpi.id,
            taken.c.at == metric_readings.c.at,
            taken.c.source == metric_readings.c.source,
        )
        .exists()
    )
    await conn.execute(
        update(metric_readings).where(metric_readings.c.metric_id.in_(share_ids), ~collides).values(metric_id=kpi.id)
    )
    return share_ids


async def get(conn: Connection, tenant_id: str, metric_id: int) -> Metric | None:
    """The tenant's KPI with this id, or None."""
    query = select(metrics).where(metrics.c.id == metric_id, metrics.c.tenant_id == tenant_id)
    row = (await conn.execute(query)).first()
    return metric_from(row) if row is not None else None


async def set_target(conn: Connection, metric: Metric) -> None:
    """Write a KPI's target and version."""
    await conn.execute(
        update(metrics)
        .where(metrics.c.id == metric.id, metrics.c.tenant_id == metric.tenant_id)
        .values(target=metric.target, version=metric.version)
    )


async def of_plans(conn: Connection, tenant_id: str, plan_ids: Sequence[int] | None = None) -> list[Metric]:
    """The KPIs of these plans (of all the tenant's plans with None), by plan and then as they were defined."""
    query = select(metrics).where(metrics.c.tenant_id == tenant_id)
    if plan_ids is not None:
        query = query.where(metrics.c.plan_id.in_(list(plan_ids)))
    return [metric_from(r) for r in (await conn.execute(query.order_by(metrics.c.plan_id, metrics.c.id))).all()]


async def of_plan(conn: Connection, tenant_id: str, plan_id: int | None = None) -> list[Metric]:
    """The KPIs of one plan (of all the tenant's plans with None), as they were defined."""
    query = select(metrics).where(metrics.c.tenant_id == tenant_id)
    if plan_id is not None:
        query = query.where(metrics.c.plan_id == plan_id)
    return [metric_from(r) for r in (await conn.execute(query.order_by(metrics.c.id))).all()]


def _reading_key(metric_id: int, at: datetime, source: str) -> Any:
    return and_(
        metric_readings.c.metric_id == metric_id, metric_readings.c.at == at, metric_readings.c.source == source
    )


async def reading_at(conn: Connection, metric_id: int, at: datetime, source: str) -> MetricReading | None:
    """The reading of a metric at a time from a source, if stored."""
    row = (await conn.execute(select(metric_readings).where(_reading_key(metric_id, at, source)))).first()
    return reading_from(row) if row is not None else None


async def insert_reading(
    conn: Connection, tenant_id: str, *, metric_id: int, at: datetime, value: float, source: str
) -> MetricReading | None:
    """A new reading; None when one of the same metric, time and source was stored meanwhile (nothing written)."""
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                insert(metric_readings)
                .values(tenant_id=tenant_id, metric_id=metric_id, at=at, value=value, source=source)
                .returning(metric_readings)
            )
            return reading_from(result.one())
    except IntegrityError:
        return None


async def correct_reading(conn: Connection, reading: MetricReading) -> None:
    """Write a stored reading's new value."""
    await conn.execute(update(metric_readings).where(metric_readings.c.id == reading.id).values(value=reading.value))


def _readings_statement(*, since: bool, before: bool) -> Select[Any]:
    query = select(metric_readings).where(
        metric_readings.c.tenant_id == bindparam("tenant_id"),
        metric_readings.c.metric_id.in_(bindparam("metric_ids", expanding=True)),
    )
    if since:
        query = query.where(metric_readings.c.at >= bindparam("since"))
    if before:
        query = query.where(metric_readings.c.at < bindparam("before"))
    return query.order_by(metric_readings.c.metric_id, metric_readings.c.at, metric_readings.c.id)


# Built once, with bound parameters: every `plan` turn reads its KPIs' readings.
_READINGS = {
    (since, before): _readings_statement(since=since, before=before)
    for since in (False, True)
    for before in (False, True)
}


async def readings(
    conn: Connection,
    tenant_id: str,
    metric_ids: Sequence[int],
    *,
    since: datetime | None = None,
    before: datetime | None = None,
) -> dict[int, list[MetricReading]]:
    """Several metrics' readings in one query (taken from `since`, before `before`), each metric's oldest first (an
    empty list for one without)."""
    query = _READINGS[since is not None, before is not None]
    parameters = {"tenant_id": tenant_id, "metric_ids": list(metric_ids), "since": since, "before": before}
    found: dict[int, list[MetricReading]] = {metric_id: [] for metric_id in metric_ids}
    for row in (await conn.execute(query, parameters)).all():
        found[row.metric_id].append(reading_from(row))
    return found
