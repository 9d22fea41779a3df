"""Measurement operations: "how are we doing?" with figures, a chart and recommendations; retrospectives and
playbooks (see planner/playbooks.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from bot.cards.digest import NO_VALUE, measurement_card
from bot.charts import chart_png, data_uri
from bot.operations.base import Context, Operation, Reply
from planner.decisions import DecisionLog
from planner.measurement import Measurement, MeasurementReport, Recommender, RuleRecommender, log_recommendations
from planner.model import Tier
from planner.store import Store


async def measured(
    store: Store,
    tenant_id: str,
    plan_id: int,
    as_of: date,
    *,
    recommender: Recommender | None = None,
) -> tuple[MeasurementReport, dict[str, Any]]:
    """The report of the master plan of `plan_id` with its card (chart inline); its recommendations are logged."""
    report = await Measurement(store, tenant_id).report(plan_id, as_of, recommender or RuleRecommender())
    await log_recommendations(DecisionLog(store, tenant_id), report, report.recommendations, at=store.clock())
    return report, measurement_card(report, chart_url=data_uri(chart_png(report)))


def summary_line(report: MeasurementReport) -> str:
    """One sentence of the figures people ask for first."""
    figures = report.productivity
    on_time = NO_VALUE if figures.on_time_rate is None else f"{round(figures.on_time_rate * 100)} %"
    behind = [
        f.metric.name
        for f in report.forecasts
        if f.projected_attainment is not None and f.projected_attainment < 1 - f.metric.tolerance
    ]
    text = f"P{report.facts.master.id} {report.facts.master.title}: {on_time} of tasks on time, {figures.done} done"
    if behind:
        text += "; heading short: " + ", ".join(behind)
    return text + "."


async def how_are_we_doing(context: Context, args: Mapping[str, Any]) -> Reply:
    plan = await context.plan_arg(args, tier=None if args.get("plan") else Tier.MASTER)
    report, card = await measured(
        context.store, context.caller.tenant_id, plan.id, context.today, recommender=context.recommender
    )
    return Reply(text=summary_line(report), cards=(card,))


OPERATIONS = (
    Operation(
        name="how_are_we_doing",
        summary="How the plan is doing: productivity and precision figures, a chart, KPI forecasts, what to do next.",
        usage=("how are we doing [P1]", "metrics [P1]"),
        parameters={
            "type": "object",
            "properties": {"plan": {"type": "string", "description": "plan id such as P1; default the active one"}},
        },
        run=how_are_we_doing,
    ),
)
