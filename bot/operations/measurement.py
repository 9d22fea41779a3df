"""Measurement operations: "how are we doing?" with figures, a chart and recommendations; retrospectives and
playbooks (see planner/services/playbooks.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import date
from typing import Any

from bot.cards.digest import measurement_card, retrospective_card
from bot.cards.markdown import excerpt, inline_code, literal
from bot.cards.wording import window_label
from bot.charts import chart_png, data_uri
from bot.operations.base import Context, Operation, Reply
from bot.text.numbers import quantity
from bot.text.recommendations import RuleRecommender
from bot.text.retrospectives import learned
from planner.domain.governance import ActionKind
from planner.domain.measurement import MeasurementReport
from planner.domain.model import Tier
from planner.ports import Recommender
from planner.services.measurement import log_recommendations
from planner.services.tenants import Tenant

MAX_COMMAND_CHARS = 200
"""How long a command the bot suggests may be (a playbook's name is at most 100 characters)."""


async def measured(
    services: Tenant,
    plan_id: int,
    as_of: date,
    *,
    recommender: Recommender | None = None,
) -> tuple[MeasurementReport, dict[str, Any]]:
    """The report of the plan `plan_id` with its card (chart inline); its recommendations are logged."""
    report = await services.measurement.report(plan_id, as_of, recommender or RuleRecommender())
    await log_recommendations(services.decisions, report, report.recommendations, at=services.clock())
    # Drawing takes a few hundred milliseconds of CPU on a year's plan: off the event loop, which serves every chat.
    png = await asyncio.to_thread(chart_png, report)
    return report, measurement_card(report, chart_url=data_uri(png))


def summary_line(report: MeasurementReport) -> str:
    """One sentence of the figures people ask for first."""
    figures = report.productivity
    # Before any task is due there is no rate to give: a dash where a figure goes reads as a glitch in a sentence.
    on_time = (
        "no task due yet" if figures.on_time_rate is None else f"{round(figures.on_time_rate * 100)} % of tasks on time"
    )
    behind = [
        literal(f.metric.name)
        for f in report.forecasts
        if f.projected_attainment is not None and f.projected_attainment < 1 - f.metric.tolerance
    ]
    master = report.facts.master
    text = f"P{master.id} {literal(master.title)}: {on_time}, {figures.done} done"
    if behind:
        text += "; heading short: " + ", ".join(behind)
    return text + "."


async def how_are_we_doing(context: Context, args: Mapping[str, Any]) -> Reply:
    plan = await context.plan_arg(args, tier=None if args.get("plan") else Tier.MASTER)
    report, card = await measured(context.services, plan.id, context.today, recommender=context.recommender)
    return Reply(text=summary_line(report), cards=(card,))


async def show_retrospective(context: Context, args: Mapping[str, Any]) -> Reply:
    plan = await context.plan_arg(args, tier=Tier.TACTICAL)
    retro = await context.services.playbooks.retrospective(plan.id, context.today)
    ended = "ended" if plan.window.end < context.today else "so far"
    return Reply(
        text=f"Retrospective of P{plan.id} {literal(plan.title)} ({ended}): {len(retro.slipped)} task(s) slipped.",
        cards=(retrospective_card(retro),),
    )


async def save_playbook(context: Context, args: Mapping[str, Any]) -> Reply:
    plan = await context.plan_arg(args, tier=Tier.TACTICAL, default_active=False)
    name = context.text_arg(args, "name")
    content = await context.services.playbooks.save(plan.id, name, actor=context.caller.user_id)
    targets = (
        ", ".join(
            f"{literal(m['name'])} {_target(m['target'], m.get('unit'), m['name'])} ({learned(m)})"
            for m in content["metrics"]
        )
        or "no KPI"
    )
    name = " ".join(name.split()).lower()  # as the playbook is saved
    use = inline_code(f"use playbook {name} for TITLE from DATE", limit=MAX_COMMAND_CHARS)
    return Reply(
        text=f"Saved playbook {literal(repr(name))} from P{plan.id}: {len(content['tasks'])} task(s) over "
        f"{content['window_days']} days; targets for next time: {targets}. Start a plan from it with {use}."
    )


async def use_playbook(context: Context, args: Mapping[str, Any]) -> Reply:
    name = context.text_arg(args, "name")
    title = context.text_arg(args, "title")
    start = context.date_arg(args, "start")
    master = await context.plan_arg(args, "master", tier=Tier.MASTER)
    owner, owner_name = await context.person_arg(str(args.get("owner") or "me"))
    plan = await context.services.playbooks.seed(
        name, master.id, title=title, owner=owner, start=start, actor=context.caller.user_id
    )
    tasks = await context.plans.list_tasks(plan.id)
    metrics = await context.plans.list_metrics(plan.id)
    kpis = ", ".join(f"{literal(m.name)} {_target(m.target, m.unit, m.name)}" for m in metrics) or "no KPI"
    return Reply(
        text=f"Created P{plan.id} {literal(plan.title)} ({window_label(plan.window.start, plan.window.end)}, "
        f"owner {literal(owner_name)}) from playbook "
        f"{literal(repr(excerpt(name.lower())))}: {len(tasks)} task(s), targets {kpis}."
    )


async def list_playbooks(context: Context, args: Mapping[str, Any]) -> Reply:
    names = await context.services.playbooks.names()
    if not names:
        return Reply(text="No playbook yet. Save one from a tactical plan: `save playbook P2 as NAME`.")
    return Reply(text="Playbooks: " + ", ".join(literal(name) for name in names) + ".")


PLAN_REF = {"type": "string", "description": "plan id such as P2"}

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
        kind=ActionKind.READ,
    ),
    Operation(
        name="show_retrospective",
        summary="A tactical plan's retrospective: targets against results, what slipped and why, agents, policies.",
        usage=("retro [P2]",),
        parameters={"type": "object", "properties": {"plan": PLAN_REF}},
        run=show_retrospective,
        kind=ActionKind.READ,
    ),
    Operation(
        name="save_playbook",
        summary="Save a tactical plan's retrospective as a playbook that seeds the next tactical plan.",
        usage=("save playbook P2 as <name>",),
        parameters={
            "type": "object",
            "properties": {"plan": PLAN_REF, "name": {"type": "string"}},
            "required": ["plan", "name"],
        },
        run=save_playbook,
        kind=ActionKind.PLAN_CHANGE,
    ),
    Operation(
        name="use_playbook",
        summary="Start a new tactical plan from a playbook: its tasks, owners and adjusted targets.",
        usage=("use playbook <name> for <title> from <date> [in P1] [owner <who>]",),
        parameters={
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "the playbook's name"},
                "title": {"type": "string"},
                "start": {"type": "string", "description": "first day, YYYY-MM-DD"},
                "master": {"type": "string", "description": "master plan id; default the active one"},
                "owner": {"type": "string"},
            },
            "required": ["name", "title", "start"],
        },
        run=use_playbook,
        kind=ActionKind.PLAN_CHANGE,
    ),
    Operation(
        name="list_playbooks",
        summary="The playbooks saved so far.",
        usage=("playbooks",),
        parameters={"type": "object", "properties": {}},
        run=list_playbooks,
        kind=ActionKind.READ,
    ),
)


def _target(value: float, unit: object, name: object) -> str:
    return literal(quantity(value, str(unit or ""), name=str(name)))
