"""Drafts: tactical and weekly plans proposed (by rule or by the LLM) and saved only when a person says so."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.cards import draft_card
from bot.cards.markdown import Markdown, excerpt, literal
from bot.cards.wording import day_label
from bot.operations.base import BadArguments, Context, Operation, Reply, error_text
from bot.operations.plans import KPI_SCHEMA, PLAN_REF, kpi_specs
from bot.parsing import parse_date, parse_ref
from planner.domain.derivation import CADENCES, tactical_proposals
from planner.domain.drafts import DISCARDED, SAVED, Draft, DraftAlreadyDecided
from planner.domain.errors import Dated, PlannerError
from planner.domain.governance import ActionKind
from planner.domain.model import Tier, Window, iso_week_of, iso_week_window

TACTICAL, WEEKLY = "tactical", "weekly"
MAX_ITEMS = 30


def _items(raw: object, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise BadArguments(f"{what} must be a non-empty list.")
    if len(raw) > MAX_ITEMS:
        raise BadArguments(f"At most {MAX_ITEMS} {what} in one draft.")
    if not all(isinstance(item, Mapping) for item in raw):
        raise BadArguments(f"Each of the {what} must be an object.")
    return list(raw)


async def draft_tactical_plans(context: Context, args: Mapping[str, Any]) -> Reply:
    master = await context.plan_arg(args, "master", tier=Tier.MASTER)
    if args.get("plans"):
        proposals: list[dict[str, Any]] = []
        for item in _items(args["plans"], "plans"):
            title = context.text_arg(item, "title")
            window = Window(
                start=parse_date(str(item.get("start", "")), today=context.today),
                end=parse_date(str(item.get("end", "")), today=context.today),
            )
            window.require_inside(
                master.window,
                what=Dated(kind="plan", tier=Tier.TACTICAL, ref=repr(excerpt(title))),
                parent_name=Dated(kind="plan", tier=Tier.MASTER, ref=master.id),
            )
            kpis = kpi_specs(item.get("kpis"))
            proposals.append(
                {
                    "title": title,
                    "start": window.start.isoformat(),
                    "end": window.end.isoformat(),
                    "owner": str(item.get("owner") or master.owner),
                    "kpis": [
                        {
                            "name": k.name,
                            "target": k.target,
                            "unit": k.unit,
                            "baseline": k.baseline,
                            "tolerance": k.tolerance,
                        }
                        for k in kpis
                    ],
                }
            )
    else:
        cadence = str(args.get("cadence") or "monthly").lower()
        if cadence not in CADENCES:
            raise BadArguments(f"cadence must be {', '.join(CADENCES)}.")
        proposals = tactical_proposals(master, await context.plans.list_metrics(master.id), cadence)
    draft = await context.drafts.create(
        author=context.caller.user_id, kind=TACTICAL, payload={"master": master.id, "items": proposals}
    )
    return Reply(cards=(await _card(context, draft, f"Tactical plans proposed for P{master.id} {master.title}"),))


async def draft_weekly_plan(context: Context, args: Mapping[str, Any]) -> Reply:
    tactical = await context.plan_arg(args, "plan", tier=Tier.TACTICAL)
    week = str(args.get("week") or iso_week_of(context.today)).upper()
    window = iso_week_window(week)
    proposals = []
    for item in _items(args.get("tasks"), "tasks"):
        title = context.text_arg(item, "title")
        due = parse_date(str(item.get("due", "")), today=context.today)
        if not window.includes(due) or not tactical.window.includes(due):
            raise BadArguments(
                f"{literal(repr(excerpt(title)))} is due {day_label(due, with_year=True)}, outside week {week} of "
                f"P{tactical.id}."
            )
        entry: dict[str, Any] = {"title": title, "due": due.isoformat()}
        if item.get("owner"):
            entry["owner"] = str(item["owner"])
        if item.get("milestone"):
            entry["milestone"] = True
        proposals.append(entry)
    draft = await context.drafts.create(
        author=context.caller.user_id, kind=WEEKLY, payload={"plan": tactical.id, "week": week, "items": proposals}
    )
    return Reply(cards=(await _card(context, draft, f"Week {week} proposed for P{tactical.id} {tactical.title}"),))


async def _card(context: Context, draft: Draft, title: str, note: str | None = None) -> dict[str, Any]:
    items = draft.payload["items"]
    names = await context.display_names(str(item.get("owner") or "") for item in items)
    return draft_card(draft_id=draft.id, title=title, items=items, state=draft.status, note=note, names=names)


def _title(draft: Draft) -> str:
    if draft.kind == TACTICAL:
        return f"Tactical plans for P{draft.payload['master']}"
    return f"Week {draft.payload['week']} for P{draft.payload['plan']}"


async def confirm_draft(context: Context, args: Mapping[str, Any]) -> Reply:
    draft_id = parse_ref(args.get("draft") or "", "D", "a draft")
    try:
        draft = await context.drafts.decide(draft_id, SAVED)
    except DraftAlreadyDecided as already:
        draft = await context.drafts.get(draft_id)
        return await _answer(context, args, draft, f"This draft was already {already.status}.")
    try:
        created = await _apply(context, draft)
    except (PlannerError, BadArguments) as error:
        await context.drafts.reopen(draft_id)
        draft = await context.drafts.get(draft_id)
        return await _answer(context, args, draft, f"Not saved: {error_text(error)}", ok=False)
    return await _answer(context, args, draft, f"Saved by {literal(context.caller.name)}: {created}.")


async def _apply(context: Context, draft: Draft) -> str:
    actor = context.caller.user_id
    if draft.kind == TACTICAL:
        ids = []
        for item in draft.payload["items"]:
            owner, _ = await context.person_arg(str(item.get("owner") or "me"))
            plan = await context.plans.create_tactical_plan(
                int(draft.payload["master"]),
                title=item["title"],
                owner=owner,
                window=Window(
                    start=parse_date(item["start"], today=context.today),
                    end=parse_date(item["end"], today=context.today),
                ),
                metrics=kpi_specs(item.get("kpis")),
                actor=actor,
            )
            ids.append(f"P{plan.id}")
        return "tactical plans " + ", ".join(ids)
    tactical_id = int(draft.payload["plan"])
    task_ids = []
    for item in draft.payload["items"]:
        owner_id = (await context.person_arg(str(item["owner"])))[0] if item.get("owner") else None
        task = await context.plans.add_task(
            tactical_id,
            title=item["title"],
            due_on=parse_date(item["due"], today=context.today),
            owner=owner_id,
            milestone=bool(item.get("milestone")),
            actor=actor,
        )
        task_ids.append(f"T{task.id}")
    weekly, _ = await context.plans.derive_weekly_plan(tactical_id, draft.payload["week"], actor=actor)
    return f"tasks {', '.join(task_ids)} in weekly plan P{weekly.id}"


async def discard_draft(context: Context, args: Mapping[str, Any]) -> Reply:
    draft_id = parse_ref(args.get("draft") or "", "D", "a draft")
    try:
        draft = await context.drafts.decide(draft_id, DISCARDED)
    except DraftAlreadyDecided as already:
        draft = await context.drafts.get(draft_id)
        return await _answer(context, args, draft, f"This draft was already {already.status}.")
    return await _answer(context, args, draft, f"Discarded by {literal(context.caller.name)}.")


async def _answer(context: Context, args: Mapping[str, Any], draft: Draft, note: str, *, ok: bool = True) -> Reply:
    card = await _card(context, draft, _title(draft), Markdown(note))  # the reply's text, values already literal
    if args.get("from_card"):
        return Reply(card_update=card, ok=ok)
    return Reply(text=note, cards=(card,), ok=ok)


OPERATIONS = (
    Operation(
        name="draft_tactical_plans",
        summary="Propose tactical plans under a master plan, for a person to save or discard: either the given "
        "plans, or one per period (monthly, fortnightly, quarterly) with KPI targets prorated by days.",
        usage=("derive tactical [P1] [monthly|fortnightly|quarterly]",),
        parameters={
            "type": "object",
            "properties": {
                "master": PLAN_REF,
                "cadence": {"type": "string", "enum": list(CADENCES)},
                "plans": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "title": {"type": "string"},
                            "start": {"type": "string"},
                            "end": {"type": "string"},
                            "owner": {"type": "string"},
                            "kpis": {"type": "array", "items": KPI_SCHEMA},
                        },
                        "required": ["title", "start", "end"],
                    },
                },
            },
        },
        run=draft_tactical_plans,
        kind=ActionKind.PLAN_CHANGE,
    ),
    Operation(
        name="draft_weekly_plan",
        summary="Propose the tasks of one week for a tactical plan, for a person to save or discard.",
        usage=("(through the assistant) plan next week's tasks for P2",),
        parameters={
            "type": "object",
            "properties": {
                "plan": PLAN_REF,
                "week": {"type": "string", "description": "ISO week such as 2026-W07"},
                "tasks": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "title": {"type": "string"},
                            "due": {"type": "string"},
                            "owner": {"type": "string"},
                            "milestone": {"type": "boolean"},
                        },
                        "required": ["title", "due"],
                    },
                },
            },
            "required": ["plan", "tasks"],
        },
        run=draft_weekly_plan,
        kind=ActionKind.PLAN_CHANGE,
    ),
    Operation(
        name="confirm_draft",
        summary="Save a draft (people only: the assistant cannot).",
        usage=("save draft 3",),
        parameters={"type": "object", "properties": {"draft": {"type": "string"}}, "required": ["draft"]},
        run=confirm_draft,
        kind=ActionKind.PLAN_CHANGE,
        human_only=True,
    ),
    Operation(
        name="discard_draft",
        summary="Discard a draft.",
        usage=("discard draft 3",),
        parameters={"type": "object", "properties": {"draft": {"type": "string"}}, "required": ["draft"]},
        run=discard_draft,
        kind=ActionKind.PLAN_CHANGE,
        human_only=True,
    ),
)
