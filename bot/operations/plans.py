"""Plan operations: create master and tactical plans, derive weeks, show the plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot import messages
from bot.cards import member_week, plan_overview
from bot.operations.base import BadArguments, Context, Operation, Reply
from bot.parsing import parse_fraction, parse_number, parse_ref
from planner.model import Direction, MetricSpec, Tier, Window, iso_week_of
from planner.store import OwnedRollup

KPI_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "e.g. SQLs, pipeline, cost per lead"},
        "target": {"type": "number", "description": "value to reach by the plan's end"},
        "unit": {"type": "string", "description": "e.g. SQL, USD, %"},
        "baseline": {"type": "number", "description": "value at the plan's start (default 0)"},
        "direction": {"type": "string", "enum": ["up", "down"]},
        "tolerance": {"type": "number", "description": "share behind pace still on track, e.g. 0.1"},
    },
    "required": ["name", "target"],
}
DATE = {"type": "string", "description": "a date, YYYY-MM-DD"}
PLAN_REF = {"type": "string", "description": "a plan id such as P3"}


def kpi_specs(raw: object) -> list[MetricSpec]:
    """KPI definitions from tool-call JSON (a list of objects), checked."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise BadArguments("kpis must be a list of {name, target, unit, baseline, tolerance}.")
    specs = []
    for item in raw:
        if not isinstance(item, Mapping) or not item.get("name") or item.get("target") in (None, ""):
            raise BadArguments("Each KPI needs a name and a target, e.g. kpi SQLs 500.")
        direction = item.get("direction")
        spec = MetricSpec(
            name=" ".join(str(item["name"]).split()),
            target=parse_number(str(item["target"]), "a target"),
            unit=str(item.get("unit") or "").strip(),
            baseline=parse_number(str(item["baseline"]), "a baseline") if item.get("baseline") not in (None, "") else 0,
            direction=Direction(direction) if direction in ("up", "down") else None,
            tolerance=parse_fraction(str(item["tolerance"])) if item.get("tolerance") not in (None, "") else 0.1,
        )
        spec.validate()
        specs.append(spec)
    return specs


def window_args(context: Context, args: Mapping[str, Any]) -> Window:
    start = context.date_arg(args, "start")
    end = context.date_arg(args, "end")
    return Window(start=start, end=end)


async def create_master_plan(context: Context, args: Mapping[str, Any]) -> Reply:
    title = context.text_arg(args, "title")
    window = window_args(context, args)
    owner, _ = await context.person_arg(str(args.get("owner") or "me"))
    constraints = [str(c) for c in args.get("constraints") or () if str(c).strip()]
    kpis = kpi_specs(args.get("kpis"))
    plan = await context.plans.create_master_plan(
        title=title, owner=owner, window=window, constraints=constraints, metrics=kpis, actor=context.caller.user_id
    )
    return await _with_overview(context, plan.id, messages.plan_created(plan, len(kpis)))


async def add_tactical_plan(context: Context, args: Mapping[str, Any]) -> Reply:
    title = context.text_arg(args, "title")
    window = window_args(context, args)
    master = await context.plan_arg(args, "master", tier=Tier.MASTER)
    owner, _ = await context.person_arg(str(args.get("owner") or "me"))
    kpis = kpi_specs(args.get("kpis"))
    plan = await context.plans.create_tactical_plan(
        master.id, title=title, owner=owner, window=window, metrics=kpis, actor=context.caller.user_id
    )
    return Reply(text=messages.plan_created(plan, len(kpis)) + f" It sits under P{master.id}.")


async def derive_weekly_plan(context: Context, args: Mapping[str, Any]) -> Reply:
    week = context.optional_text_arg(args, "week") or iso_week_of(context.today)
    if args.get("plan") not in (None, ""):
        tacticals = [await context.plan_arg(args, "plan", tier=Tier.TACTICAL)]
    else:
        tacticals = [p for p in await context.plans.list_plans(Tier.TACTICAL) if p.window.includes(context.today)]
        if not tacticals:
            raise BadArguments(messages.no_plan_yet(Tier.TACTICAL))
    lines, items = [], []
    for tactical in tacticals:
        weekly, week_items = await context.plans.derive_weekly_plan(tactical.id, week, actor=context.caller.user_id)
        carried = sum(1 for i in week_items if i.carried_over)
        lines.append(
            f"P{weekly.id} {weekly.title}: {len(week_items)} task{'s' if len(week_items) != 1 else ''}"
            + (f", {carried} carried over" if carried else "")
        )
        items.extend(week_items)
    titles = {p.id: p.title for p in tacticals}
    card = member_week(
        person_name="Team",
        iso_week=week.upper(),
        tasks=[i.task for i in items],
        today=context.today,
        plan_titles=titles,
    )
    return Reply(text="Weekly plan ready:\n" + "\n".join(f"- {line}" for line in lines), cards=(card,))


async def show_plan(context: Context, args: Mapping[str, Any]) -> Reply:
    named = args.get("plan") not in (None, "")
    plan_id = parse_ref(args["plan"], "P", "a plan") if named else None

    async def read() -> Reply:
        # The plan, its tree and its owners' names in one query; `plan_arg` only when no one master plan is active,
        # to say which plans there are to choose from (or that there is none yet).
        found = await context.plans.owned_rollup(plan_id, context.today)
        if found is None:
            plan = await context.plan_arg(args, tier=Tier.MASTER)
            found = await context.plans.owned_rollup(plan.id, context.today)
        return _overview_reply(context, found, "")

    # Asked for by several people at once (a team opening the plan after a reminder), the plan is read and its card
    # built once for those asking the same: the card names the caller, so only for the same caller.
    caller = context.caller
    key = ("plan card", caller.tenant_id, plan_id, context.today, caller.user_id, caller.name)
    return await context.store.shared_reads.read(key, read)


async def _with_overview(context: Context, plan_id: int, text: str) -> Reply:
    return _overview_reply(context, await context.plans.owned_rollup(plan_id, context.today), text)


def _overview_reply(context: Context, found: OwnedRollup, text: str) -> Reply:
    # The caller's own name comes from Teams, as in `Context.display_names`.
    names = found.owner_names | {context.caller.user_id: context.caller.name}
    return Reply(text=text, cards=(plan_overview(found.rollup, names=names, today=context.today),))


async def list_plans(context: Context, args: Mapping[str, Any]) -> Reply:
    plans = await context.plans.list_plans()
    if not plans:
        return Reply(text=messages.no_plan_yet(None))
    by_parent: dict[int | None, list[Any]] = {}
    for plan in plans:
        by_parent.setdefault(plan.parent_id, []).append(plan)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for plan in by_parent.get(parent, []):
            if plan.tier is Tier.WEEKLY and not plan.window.includes(context.today):
                continue
            lines.append(
                f"{'  ' * depth}- P{plan.id} {plan.title} ({plan.window.start.isoformat()} to "
                f"{plan.window.end.isoformat()})"
            )
            walk(plan.id, depth + 1)

    walk(None, 0)
    return Reply(text="Plans:\n" + "\n".join(lines))


OPERATIONS = (
    Operation(
        name="create_master_plan",
        summary="Create a master plan: the north star, its window, constraints and KPI targets.",
        usage=(
            "new plan <north star> from <date> to <date> [kpi <name> <target> [unit] [from <baseline>] "
            "[tolerance 10%]]…",
        ),
        parameters={
            "type": "object",
            "properties": {
                "title": {"type": "string", "description": "the north star, e.g. 500 SQLs by 31 March"},
                "start": DATE,
                "end": DATE,
                "owner": {"type": "string", "description": "who owns it; default the person asking"},
                "constraints": {"type": "array", "items": {"type": "string"}},
                "kpis": {"type": "array", "items": KPI_SCHEMA},
            },
            "required": ["title", "start", "end"],
        },
        run=create_master_plan,
    ),
    Operation(
        name="add_tactical_plan",
        summary="Add a tactical plan (a launch, a programme) under a master plan, inside its window.",
        usage=("tactical <title> from <date> to <date> [in P1] [owner <who>] [kpi <name> <target>]…",),
        parameters={
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "start": DATE,
                "end": DATE,
                "master": PLAN_REF,
                "owner": {"type": "string"},
                "kpis": {"type": "array", "items": KPI_SCHEMA},
            },
            "required": ["title", "start", "end"],
        },
        run=add_tactical_plan,
    ),
    Operation(
        name="derive_weekly_plan",
        summary="Derive (or refresh) the weekly plan of a week from its tactical plan(s): tasks due that week "
        "plus unfinished earlier ones, carried over.",
        usage=("week [P2] [2026-W07]",),
        parameters={
            "type": "object",
            "properties": {
                "plan": {"type": "string", "description": "a tactical plan id; default: every active one"},
                "week": {"type": "string", "description": "ISO week such as 2026-W07; default this week"},
            },
        },
        run=derive_weekly_plan,
    ),
    Operation(
        name="show_plan",
        summary="Show a plan's tree with progress bars and health (default: the active master plan).",
        usage=("plan [P1]",),
        parameters={"type": "object", "properties": {"plan": PLAN_REF}},
        run=show_plan,
    ),
    Operation(
        name="list_plans",
        summary="List every plan with its id and window.",
        usage=("plans",),
        parameters={"type": "object", "properties": {}},
        run=list_plans,
    ),
)
