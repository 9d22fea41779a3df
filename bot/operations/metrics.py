"""Metric operations: record a KPI reading from chat."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any

from bot.cards.markdown import literal
from bot.cards.wording import day_label, day_seen_from
from bot.operations.base import BadArguments, Context, Operation, Reply
from bot.parsing import parse_number, parse_ref
from bot.text.numbers import figure, quantity
from planner.domain.governance import ActionKind


async def record_metric(context: Context, args: Mapping[str, Any]) -> Reply:
    name = context.text_arg(args, "metric")
    value = parse_number(str(args.get("value", "")), "a metric value")
    plan_id = parse_ref(args["plan"], "P", "a plan") if args.get("plan") not in (None, "") else None
    on = context.optional_date_arg(args, "on")
    if on is not None and on > context.today:
        raise BadArguments(
            f"{day_label(on, with_year=True)} is in the future: a reading is of something already measured."
        )
    # One KPI whatever tiers exist: a tactical plan's share of it records on the master plan's KPI.
    metric = await context.plans.find_metric(name, plan_id=plan_id, on=on or context.today)
    kpi = metric if metric.kpi_id is None else await context.plans.get_metric(metric.kpi_id)
    # A reading typed in chat is as of now; one given for a past day counts at the end of that day.
    at = context.now() if on is None or on == context.today else datetime.combine(on, time(23, 59), tzinfo=UTC)
    reading = await context.plans.record_reading(
        kpi.id, value, at=at, source=f"chat:{context.caller.user_id}", actor=context.caller.user_id
    )

    def q(value: float) -> str:
        return literal(quantity(value, kpi.unit, name=kpi.name))

    rollup = await context.plans.rollup(kpi.plan_id, as_of=context.today)
    node = rollup.find(kpi.plan_id)
    pace = next((p for p in node.metrics if p.metric.id == kpi.id), None) if node else None
    backdated = on is not None and on != context.today
    pace_text = ""
    if pace is not None and not pace.health.is_final:
        pace_text = f" Expected by now: {q(pace.expected)}; {pace.health}."
        if backdated and pace.actual is not None and pace.actual != reading.value:
            # A later reading is the KPI's figure now: judging the past day's value against today's pace misleads.
            pace_text = (
                f" The latest reading, {q(pace.actual)}, stands: {q(pace.expected)} expected by now; {pace.health}."
            )
    # The same reading, as each tactical plan whose window holds its day counts it (its share of the target).
    shares = []
    for tactical in rollup.children:
        if not tactical.plan.window.includes(at.date()):
            continue
        for share in tactical.metrics:
            if share.metric.kpi_id == kpi.id and share.actual is not None:
                shares.append(
                    f"P{tactical.plan.id} {literal(tactical.plan.title)}: "
                    f"{literal(figure(share.actual, kpi.unit, name=kpi.name))} of its "
                    f"{q(share.metric.target)}, {share.health}"
                )
    share_text = f" Counts for {'; '.join(shares)}." if shares else ""
    when = f" as of {day_seen_from(on, context.today)}" if on is not None and backdated else ""
    return Reply(
        text=f"Recorded {literal(kpi.name)} = {q(reading.value)}{when} on P{kpi.plan_id} "
        f"(target {q(kpi.target)}).{pace_text}{share_text}"
    )


OPERATIONS = (
    Operation(
        name="record_metric",
        summary="Record a reading of a KPI (e.g. SQLs 140), as of now or of a past day.",
        usage=("record <metric> <value> [on <date>] [in P1]",),
        parameters={
            "type": "object",
            "properties": {
                "metric": {"type": "string", "description": "the KPI's name"},
                "value": {"type": "number"},
                "on": {"type": "string", "description": "the day it was measured, YYYY-MM-DD; default now"},
                "plan": {"type": "string", "description": "plan id, when several plans track that name"},
            },
            "required": ["metric", "value"],
        },
        run=record_metric,
        kind=ActionKind.PLAN_CHANGE,
    ),
)
