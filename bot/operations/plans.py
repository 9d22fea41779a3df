"""Plan operations: create master and tactical plans, change a master plan's goals, derive weeks, show the plan.

A master plan's goals and targets are the team's strategy: a second master plan, or a change of a master plan's
north star, window, constraints or KPI targets, is a strategy change, held for a leader's approval unless that
plan's leader (its owner) asks in person (see `bot/governance.py`). A tenant's first master plan is anyone's to
create: there is no strategy yet to change, and whoever creates it leads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from bot.cards import member_week, plan_overview
from bot.cards.edit import TARGET_INPUT, plan_edit_card
from bot.cards.markdown import Markdown, excerpt, literal
from bot.cards.plan import PLAN_CARD
from bot.cards.wording import window_label
from bot.operations.base import BadArguments, Context, Operation, Reply, version_arg
from bot.parsing import parse_fraction, parse_number, parse_ref
from bot.text import messages
from bot.text.numbers import quantity
from bot.text.people import person_name
from planner.domain.errors import StaleEdit
from planner.domain.governance import ActionKind, GateCategory
from planner.domain.model import Direction, Metric, MetricSpec, Plan, Tier, Window, iso_week_of
from planner.domain.rollup import OwnedRollup
from planner.store import Connection

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
    return await plan_reply(context, plan.id, messages.plan_created(plan, len(kpis)))


async def master_plans(context: Context, args: Mapping[str, Any]) -> list[Plan]:
    """The tenant's master plans: another one changes the strategy they set (none yet: the first changes none)."""
    return await context.plans.list_plans(Tier.MASTER)


async def master_plan_named(context: Context, args: Mapping[str, Any]) -> list[Plan]:
    """The master plan a change of goals or targets is about (the one active today when none is named)."""
    return [await context.plan_arg(args, tier=Tier.MASTER)]


async def edit_master_plan(context: Context, args: Mapping[str, Any]) -> Reply:
    [plan] = await master_plan_named(context, args)
    if (stale := await _stale(context, args, plan)) is not None:
        return stale
    from_card = bool(args.get("from_card"))
    actor = context.caller.user_id
    title = context.optional_text_arg(args, "title")
    title = title if title != plan.title else None
    start, end = context.optional_date_arg(args, "start"), context.optional_date_arg(args, "end")
    window = Window(start=start or plan.window.start, end=end or plan.window.end) if start or end else None
    window = window if window != plan.window else None
    constraints = _constraints(args.get("constraints"))
    constraints = constraints if constraints is not None and tuple(constraints) != plan.constraints else None
    metrics = {m.name.casefold(): m for m in await context.plans.list_metrics(plan.id)}
    targets = _targets(args.get("targets")) | _form_targets(args, metrics.values())
    missing = [name for name in targets if name.casefold() not in metrics]
    if missing:
        known = ", ".join(m.name for m in metrics.values()) or "none yet"
        raise BadArguments(messages.no_such_kpi(missing[0], plan.id, known))
    targets = {name: value for name, value in targets.items() if value != metrics[name.casefold()].target}
    if title is None and window is None and constraints is None and not targets:
        if from_card:
            return await plan_reply(context, plan.id, messages.nothing_to_change(), from_card=True)
        raise BadArguments(messages.nothing_to_change())
    # One change, one event: the Undo button (and `undo`) takes back the goals and the targets together.
    plan = await context.plans.update_plan(
        plan.id,
        title=title,
        window=window,
        constraints=constraints,
        targets={metrics[name.casefold()].id: target for name, target in targets.items()},
        expected_version=plan.version,
        actor=actor,
    )
    changed = [
        what
        for what, given in (("north star", title), ("window", window), ("constraints", constraints))
        if given is not None
    ]
    for name, target in targets.items():
        metric = metrics[name.casefold()]
        changed.append(f"{literal(metric.name)} target {literal(quantity(target, metric.unit, name=metric.name))}")
    text = messages.master_plan_changed(plan.id, changed)
    return await plan_reply(context, plan.id, text, from_card=from_card, undo=True)


def _constraints(raw: object) -> list[str] | None:
    """Constraints in full: a list (a tool call, a typed command) or one a line (a card's form); None if not given."""
    if isinstance(raw, str):
        raw = raw.splitlines()
    if not isinstance(raw, list):
        return None
    return [" ".join(str(c).split()) for c in raw if str(c).strip()]


def _form_targets(args: Mapping[str, Any], metrics: Iterable[Metric]) -> dict[str, float]:
    """KPI targets from a card's form: one input a KPI, named by the metric's id."""
    targets: dict[str, float] = {}
    for metric in metrics:
        value = args.get(f"{TARGET_INPUT}{metric.id}")
        if value not in (None, ""):
            targets[metric.name] = parse_number(str(value), f"the {metric.name} target")
    return targets


def _targets(raw: object) -> dict[str, float]:
    """KPI targets from tool-call JSON: a list of {name, target}."""
    if raw in (None, ""):
        return {}
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise BadArguments("targets must be a list of {name, target}, e.g. set target SQLs 600.")
    targets: dict[str, float] = {}
    for item in raw:
        if not isinstance(item, Mapping) or not str(item.get("name") or "").strip() or item.get("target") in (None, ""):
            raise BadArguments("Each target needs a KPI name and a value, e.g. set target SQLs 600.")
        targets[" ".join(str(item["name"]).split())] = parse_number(str(item["target"]), "a target")
    return targets


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
            f"P{weekly.id} {literal(weekly.title)}: {len(week_items)} task{'s' if len(week_items) != 1 else ''}"
            + (f", {carried} carried over" if carried else "")
        )
        items.extend(week_items)
    titles = {p.id: p.title for p in tacticals}
    card = member_week(
        own=False,
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
        # The plan, its tree, its owners' names and its budgets in one read; `plan_arg` only when no one master plan
        # is meant, to say which plans there are to choose from (or that there is none yet).
        async with context.store.read() as conn:
            found = await context.plans.owned_rollup(plan_id, context.today, conn=conn)
            named_plan = found.rollup.find(plan_id) if found is not None and plan_id is not None else None
            if found is not None and named_plan is not None:
                found = replace(found, rollup=named_plan)  # the plan asked for, not the master plan of its tree
            if found is not None:
                return await _overview_reply(context, found, "", conn=conn)
        plan = await context.plan_arg(args, tier=Tier.MASTER)
        return await _overview_reply(context, await context.plans.owned_rollup(plan.id, context.today), "")

    # Asked for by several people at once (a team opening the plan after a reminder), the plan is read and its card
    # built once for those asking the same: the card names the caller, so only for the same caller.
    caller = context.caller
    key = ("plan card", caller.tenant_id, plan_id, context.today, caller.user_id, caller.name)
    reply = await context.store.shared_reads.read(key, read)
    if args.get("from_card") and args.get("card") == PLAN_CARD and reply.cards:
        return replace(reply, cards=(), card_update=reply.cards[0])  # the plan card's Refresh: redrawn in place
    return reply


async def plan_reply(
    context: Context, plan_id: int, text: str, *, from_card: bool = False, undo: bool = False
) -> Reply:
    """`text`, and the card of the plan it is about: in place of the card pressed, with `text` on it, `from_card`;
    with an Undo button for the edit that made this version, `undo`."""
    found = await context.plans.owned_rollup(plan_id, context.today)
    shown = found.rollup.find(plan_id)
    if shown is not None:
        found = replace(found, rollup=shown)  # the plan it is about, not the master plan of its tree
    return await _overview_reply(context, found, text, from_card=from_card, undo=undo)


async def _overview_reply(
    context: Context,
    found: OwnedRollup,
    text: str,
    *,
    conn: Connection | None = None,
    from_card: bool = False,
    undo: bool = False,
) -> Reply:
    # The caller's own name comes from Teams, as in `Context.display_names`.
    names = found.owner_names | {context.caller.user_id: context.caller.name}
    tree = [found.rollup.plan, *(child.plan for child in found.rollup.children)]
    budgets = await context.services.budgets.statuses(tree, context.today, conn=conn)
    note = Markdown(text) if from_card and text else None  # the reply's text: the bot's words, values already literal
    card = plan_overview(found.rollup, names=names, today=context.today, budgets=budgets, note=note, undo=undo)
    if from_card:
        return Reply(card_update=card)  # the note on the card says it: a message beside it would say it twice
    return Reply(text=text, cards=(card,))


async def _stale(context: Context, args: Mapping[str, Any], plan: Plan) -> Reply | None:
    """A card's form sent at a version the plan has left: the plan as it is now, in place, and nothing changed (a
    typed edit at an old version raises StaleEdit). None when the version is current or none was given."""
    version = version_arg(args)
    if version is None or version == plan.version:
        return None
    if args.get("from_card"):
        return await plan_reply(context, plan.id, messages.STALE_PLAN_CARD, from_card=True)
    raise StaleEdit("Plan", plan.id, version, plan.version)


async def edit_plan(context: Context, args: Mapping[str, Any]) -> Reply:
    plan = await context.plan_arg(args, default_active=False)
    if plan.tier is Tier.MASTER:
        raise BadArguments(messages.master_plan_by_strategy(plan.id))
    if (stale := await _stale(context, args, plan)) is not None:
        return stale
    from_card = bool(args.get("from_card"))
    said: list[str] = []
    title = context.optional_text_arg(args, "title")
    if title is not None and title != plan.title:
        said.append(f"title “{literal(excerpt(title))}”")
    else:
        title = None
    owner: str | None = None
    typed_owner = context.optional_text_arg(args, "owner")
    shown_owner = (await context.display_names([plan.owner])).get(plan.owner, plan.owner)
    if typed_owner is not None and typed_owner.casefold() not in {shown_owner.casefold(), plan.owner.casefold()}:
        key, name = await context.person_arg(typed_owner)
        if key != plan.owner:
            owner = key
            said.append(f"owner {literal(name)}")
    start, end = context.optional_date_arg(args, "start"), context.optional_date_arg(args, "end")
    window = Window(start=start or plan.window.start, end=end or plan.window.end) if start or end else None
    if window is not None and window != plan.window:
        said.append(f"dates {window_label(window.start, window.end)}")
    else:
        window = None
    if not said:
        if from_card:
            return await plan_reply(context, plan.id, messages.nothing_to_change_in_plan(plan.id), from_card=True)
        raise BadArguments(messages.nothing_to_change_in_plan(plan.id))
    plan = await context.plans.update_plan(
        plan.id, title=title, owner=owner, window=window, expected_version=plan.version, actor=context.caller.user_id
    )
    return await plan_reply(context, plan.id, messages.plan_edited(plan.id, said), from_card=from_card, undo=True)


async def plan_edit_form(context: Context, args: Mapping[str, Any]) -> Reply:
    plan = await context.plans.get_plan(parse_ref(args.get("plan") or "", "P", "a plan"))
    metrics = await context.plans.list_metrics(plan.id) if plan.tier is Tier.MASTER else []
    names = await context.display_names([plan.owner])
    card = plan_edit_card(plan, owner_name=person_name(plan.owner, names), metrics=metrics, card=PLAN_CARD)
    if args.get("from_card"):
        return Reply(card_update=card)  # the plan card pressed becomes its form
    return Reply(cards=(card,))


async def archive_plan(context: Context, args: Mapping[str, Any]) -> Reply:
    plan = await context.plan_arg(args, default_active=False)
    archived = args.get("archived") not in (False, "false", "no", 0)
    changed = await context.plans.archive_plan(plan.id, archived=archived, actor=context.caller.user_id)
    # Archiving puts a plan out of sight, as deleting a task does: the card has the same Undo button.
    undo = archived and changed.version != plan.version
    return await plan_reply(context, plan.id, messages.plan_archived(plan.id, archived), undo=undo)


async def list_plans(context: Context, args: Mapping[str, Any]) -> Reply:
    everything = bool(args.get("all"))
    plans = await context.plans.list_plans(archived=everything)
    if not plans:
        return Reply(text=messages.no_plan_yet(None))
    by_parent: dict[int | None, list[Any]] = {}
    for plan in plans:
        by_parent.setdefault(plan.parent_id, []).append(plan)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for plan in by_parent.get(parent, []):
            archived = ", archived" if plan.archived_at is not None else ""
            window = window_label(plan.window.start, plan.window.end)
            lines.append(f"{'  ' * depth}- P{plan.id} {literal(plan.title)} ({window}{archived})")
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
        kind=ActionKind.PLAN_CHANGE,
        categories=(GateCategory.STRATEGY,),
        masters=master_plans,
    ),
    Operation(
        name="edit_master_plan",
        summary="Change a master plan's goals: its north star, window, constraints or KPI targets. A strategy "
        "change: it waits for a leader's approval unless the plan's leader asks.",
        usage=(
            "set target <KPI> <value> [in P1]",
            "edit master [P1] [north star <text>] [from <date>] [to <date>] [constraint <text>]…",
        ),
        parameters={
            "type": "object",
            "properties": {
                "plan": {"type": "string", "description": "a master plan id such as P1; default the active one"},
                "title": {"type": "string", "description": "the new north star"},
                "start": DATE,
                "end": DATE,
                "constraints": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "the constraints, in full (they replace the current ones)",
                },
                "targets": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "target": {"type": "number"}},
                        "required": ["name", "target"],
                    },
                    "description": "new targets of the plan's KPIs, by name",
                },
            },
        },
        run=edit_master_plan,
        kind=ActionKind.PLAN_CHANGE,
        categories=(GateCategory.STRATEGY,),
        masters=master_plan_named,
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
        kind=ActionKind.PLAN_CHANGE,
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
        kind=ActionKind.PLAN_CHANGE,
    ),
    Operation(
        name="show_plan",
        summary="Show a plan's tree with progress bars and health (default: the active master plan).",
        usage=("plan [P1]",),
        parameters={"type": "object", "properties": {"plan": PLAN_REF}},
        run=show_plan,
        kind=ActionKind.READ,
    ),
    Operation(
        name="edit_plan",
        summary="Fix a tactical or weekly plan: its title, owner or window (a new window stays inside its parent's "
        "and keeps its plans and tasks inside it). A master plan's goals change with edit_master_plan.",
        usage=("edit P2 title TEXT", "edit P2 owner WHO", "edit P2 from DATE to DATE"),
        parameters={
            "type": "object",
            "properties": {
                "plan": PLAN_REF,
                "title": {"type": "string"},
                "owner": {"type": "string"},
                "start": DATE,
                "end": DATE,
            },
            "required": ["plan"],
        },
        run=edit_plan,
        kind=ActionKind.PLAN_CHANGE,
    ),
    Operation(
        name="plan_edit_form",
        summary="Turn a plan's card into its form (the card's Edit button); saving it runs edit_plan or "
        "edit_master_plan.",
        usage=(),
        parameters={"type": "object", "properties": {"plan": PLAN_REF}, "required": ["plan"]},
        run=plan_edit_form,
        kind=ActionKind.READ,
        human_only=True,
    ),
    Operation(
        name="archive_plan",
        summary="Archive a tactical or weekly plan (left out of lists and defaults, kept with its history), or "
        "bring it back (archived false).",
        usage=("archive P2", "unarchive P2"),
        parameters={
            "type": "object",
            "properties": {"plan": PLAN_REF, "archived": {"type": "boolean", "description": "default true"}},
            "required": ["plan"],
        },
        run=archive_plan,
        kind=ActionKind.PLAN_CHANGE,
    ),
    Operation(
        name="list_plans",
        summary="List every plan in use with its id and window; with all, archived plans too.",
        usage=("plans", "plans all"),
        parameters={"type": "object", "properties": {"all": {"type": "boolean"}}},
        run=list_plans,
        kind=ActionKind.READ,
    ),
)
