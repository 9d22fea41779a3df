"""Measurement: is the plan working, and why? Reads one master plan's facts and measures them.

The figures and their definitions are in `planner.domain.measurement`; this module loads the facts they are computed
from, asks a `Recommender` for the next steps, and writes those to the decision log.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time

from planner.domain.governance import DecisionRecord
from planner.domain.kpis import as_counted, kpi_id_of
from planner.domain.measurement import (
    MeasurementFacts,
    MeasurementReport,
    MetricSeries,
    Recommendation,
    measure,
)
from planner.domain.model import Tier
from planner.ports import Recommender
from planner.services.decisions import DecisionLog
from planner.services.plans import Plans
from planner.store import Store
from planner.store import measurement as measurement_store

RECOMMENDATION_ACTION = "kpi.recommendation"
"""The decision log's action for a recommended next step about a KPI."""


async def log_recommendations(
    log: DecisionLog, report: MeasurementReport, recommendations: Sequence[Recommendation], *, at: datetime
) -> int:
    """Write each recommendation to the decision log, once per KPI, day and advice; returns how many were new."""
    written = 0
    day_start = datetime.combine(at.date(), time(), tzinfo=at.tzinfo)
    earlier = await log.entries(since=day_start, subject_prefix="metric:")
    seen = {
        (entry.subject, entry.data.get("recommended")) for entry in earlier if entry.action == RECOMMENDATION_ACTION
    }
    by_metric = {f.metric.id: f for f in report.forecasts}
    for recommendation in recommendations:
        subject = f"metric:{recommendation.metric.id}"
        if (subject, recommendation.action) in seen:
            continue
        item = by_metric.get(recommendation.metric.id)
        await log.record(
            DecisionRecord(
                tenant_id=log.tenant_id,
                actor="llm" if recommendation.by == "llm" else "bot",
                action=RECOMMENDATION_ACTION,
                subject=subject,
                verdict="recommend",
                rationale=recommendation.rationale,
                data={
                    "plan": recommendation.plan_id,
                    "metric": recommendation.metric.name,
                    "recommended": recommendation.action,
                    "actual": item.actual if item else None,
                    "projected": item.projected if item else None,
                    "target": recommendation.metric.target,
                    "as_of": report.as_of.isoformat(),
                    "by": recommendation.by,
                },
                at=at,
            )
        )
        seen.add((subject, recommendation.action))
        written += 1
    return written


class Measurement:
    """Reads the facts of one tenant's master plans and measures them."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self.tenant_id = tenant_id
        self.plans = Plans(store, tenant_id)

    async def facts_of_plan(self, plan_id: int) -> MeasurementFacts:
        """The facts of the plan `plan_id` alone: a master plan's (`facts`), or a tactical or weekly plan's as the
        root of its own report: its tasks, and its KPIs (a week: those of the tactical plan it serves). Raises
        PlanNotFound."""
        plan = await self.plans.get_plan(plan_id)
        master = await self.facts(plan_id)
        if plan.tier is Tier.MASTER:
            return master
        tasks = {t.id for t in await self.plans.list_tasks(plan.id)}
        measured = plan.parent_id if plan.tier is Tier.WEEKLY else plan.id
        return MeasurementFacts(
            master=plan,
            tasks=tuple(t for t in master.tasks if t.id in tasks),
            carried_over=tuple((week, task) for week, task in master.carried_over if task in tasks),
            series=tuple(s for s in master.series if s.plan.id == measured),
            delegations=tuple(d for d in master.delegations if d.task_id in tasks),
            approvals=master.approvals,
        )

    async def facts(self, plan_id: int) -> MeasurementFacts:
        """The facts of the master plan of `plan_id` (a master or tactical plan). Raises PlanNotFound."""
        plan = await self.plans.get_plan(plan_id)
        master = plan if plan.tier is Tier.MASTER else await self.plans.get_plan(plan.master_id or plan.id)
        tacticals = tuple(await self.plans.list_plans(Tier.TACTICAL, parent_id=master.id))
        tenant = self.tenant_id
        window_start = datetime.combine(master.window.start, time(), tzinfo=UTC)
        async with self._store.read() as conn:
            carried = await measurement_store.carried_over(conn, tenant, master.id)
            delegations = await measurement_store.delegation_facts(conn, tenant, master.id)
            approvals = await measurement_store.approval_facts(conn, tenant, window_start)
        # A task is due inside its tactical plan's window, which lies inside the master's.
        all_tasks = [
            t
            for t in await self.plans.tasks_due(master.window.start, master.window.end, open_only=False)
            if t.master_id == master.id
        ]
        owners = {p.id: p for p in (master, *tacticals)}
        kpis = await self.plans.metrics_of(list(owners))
        # One KPI across tiers: a share reads its master KPI's readings, as its plan's window counts them.
        readings = await self.plans.readings_of(sorted({kpi_id_of(m) for m in kpis}))
        defined = {m.id: m for m in kpis if m.kpi_id is None}
        order = {plan_id: n for n, plan_id in enumerate(owners)}
        series = [
            MetricSeries(
                metric=m,
                plan=owners[m.plan_id],
                readings=as_counted(
                    m,
                    owners[m.plan_id],
                    readings[kpi_id_of(m)],
                    defined.get(kpi_id_of(m)),
                    opened=master.window.start,
                ),
            )
            for m in sorted(kpis, key=lambda m: (order[m.plan_id], m.id))
        ]
        return MeasurementFacts(
            master=master,
            tacticals=tacticals,
            tasks=tuple(sorted(all_tasks, key=lambda t: t.id)),
            carried_over=tuple(carried),
            series=tuple(series),
            delegations=tuple(delegations),
            approvals=tuple(approvals),
        )

    async def report(self, plan_id: int, as_of: date, recommender: Recommender) -> MeasurementReport:
        """Figures, forecasts and `recommender`'s recommendations of the plan `plan_id` (`facts_of_plan`). Raises
        PlanNotFound."""
        report = measure(await self.facts_of_plan(plan_id), as_of)
        recommendations = await recommender.recommend(report)
        return MeasurementReport(
            facts=report.facts,
            as_of=as_of,
            productivity=report.productivity,
            precision=report.precision,
            forecasts=report.forecasts,
            recommendations=tuple(recommendations),
        )
