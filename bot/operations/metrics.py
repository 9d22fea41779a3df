"""Metric operations: record a KPI reading from chat."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any

from bot.cards.markdown import literal
from bot.operations.base import BadArguments, Context, Operation, Reply
from bot.parsing import parse_number, parse_ref
from planner.domain.errors import InvalidValue
from planner.domain.governance import ActionKind
from planner.domain.model import Tier


async def record_metric(context: Context, args: Mapping[str, Any]) -> Reply:
    name = context.text_arg(args, "metric")
    value = parse_number(str(args.get("value", "")), "a metric value")
    plan_id = parse_ref(args["plan"], "P", "a plan") if args.get("plan") not in (None, "") else None
    try:
        metric = await context.plans.find_metric(name, plan_id=plan_id)
    except InvalidValue:
        if plan_id is not None:
            raise
        # Several plans track it (a master plan and its tactical shares): the reading is of the master plan's KPI.
        master = await context.plan_arg({}, tier=Tier.MASTER)
        metric = await context.plans.find_metric(name, plan_id=master.id)
    on = context.optional_date_arg(args, "on")
    if on is not None and on > context.today:
        raise BadArguments(f"{on.isoformat()} is in the future: a reading is of something already measured.")
    # A reading typed in chat is as of now; one given for a past day counts at the end of that day.
    at = context.now() if on is None or on == context.today else datetime.combine(on, time(23, 59), tzinfo=UTC)
    reading = await context.plans.record_reading(
        metric.id, value, at=at, source=f"chat:{context.caller.user_id}", actor=context.caller.user_id
    )
    unit = f" {literal(metric.unit)}" if metric.unit else ""
    rollup = await context.plans.rollup(metric.plan_id, as_of=context.today)
    node = rollup.find(metric.plan_id)
    pace = next((p for p in node.metrics if p.metric.id == metric.id), None) if node else None
    pace_text = ""
    if pace is not None:
        pace_text = f" Expected by now: {pace.expected:g}{unit}; {pace.health}."
    return Reply(
        text=f"Recorded {literal(metric.name)} = {reading.value:g}{unit} on P{metric.plan_id} "
        f"(target {metric.target:g}{unit}).{pace_text}"
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
