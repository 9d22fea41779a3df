"""Task operations: add, assign, start, finish, block, reopen, snooze, show, edit, move, delete and undo; a member's
week; a plan's task list."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from bot.cards import member_week, task_card
from bot.cards.edit import deleted_card
from bot.cards.markdown import Markdown, excerpt, literal
from bot.cards.task_list import TASKS_CARD, TaskFilter, task_list_card
from bot.cards.week import WEEK_CARD
from bot.cards.wording import day_seen_from, window_label
from bot.operations.base import BadArguments, Context, Operation, Reply, version_arg
from bot.operations.plans import plan_reply
from bot.parsing import parse_number, parse_ref
from bot.text import messages
from bot.text.numbers import quantity
from bot.text.people import person_name
from planner.domain.errors import StaleEdit, UndoNeedsLeader
from planner.domain.governance import ActionKind, GateCategory
from planner.domain.model import Plan, Task, TaskChanges, TaskStatus, Tier, iso_week_of, iso_week_window
from planner.services.plans import TARGETS, UNDO_WINDOW, UndoneChange

TASK_REF = {"type": "string", "description": "a task id such as T12"}
NOBODY = frozenset({"nobody", "no one", "none", "noone", "unassigned"})
"""An owner that means no owner (`edit T12 owner nobody`)."""
YES = frozenset({"yes", "y", "true", "on", "1"})
NO = frozenset({"no", "n", "false", "off", "0"})
UNDO_MINUTES = int(UNDO_WINDOW.total_seconds() // 60)
STATUS_WORDS = {
    TaskStatus.DOING: "started",
    TaskStatus.DONE: "done",
    TaskStatus.BLOCKED: "blocked",
    TaskStatus.TODO: "reopened",
}


async def _task_reply(context: Context, task: Task, text: str, *, from_card: bool, undo: bool = False) -> Reply:
    plan = await context.plans.get_plan(task.plan_id)
    names = await context.display_names([task.owner])
    card = task_card(
        task,
        plan_title=plan.title,
        owner_name=person_name(task.owner, names) if task.owner else None,
        today=context.today,
        note=Markdown(text) if from_card else None,  # the reply's text: the bot's words, values already literal
        undo=undo,
    )
    if from_card:
        return Reply(card_update=card)
    return Reply(text=text, cards=(card,))


async def _origin_card(context: Context, args: Mapping[str, Any], task: Task, note: str) -> dict[str, Any] | None:
    """The card a row's button came from (a week card, a task list), rebuilt with that row changed: None for a
    task card or a button that names no card."""
    if not args.get("from_card"):
        return None
    if args.get("card") == WEEK_CARD:
        week = str(args.get("week") or "")
        return await _week_card(context, week if _ISO_WEEK.fullmatch(week) else iso_week_of(context.today), task, note)
    if args.get("card") == TASKS_CARD:
        plan = await context.plans.get_plan(task.plan_id)
        return await _task_list(context, plan, await _task_filter(context, args), note=note)
    return None


_ISO_WEEK = re.compile(r"\d{4}-W\d{2}")


async def _week_card(context: Context, week: str, changed: Task | None, note: str | None) -> dict[str, Any]:
    """The caller's week card: their open tasks, and the one just changed (so its row shows what changed)."""
    caller = context.caller
    mine = await context.plans.tasks_of_owner(caller.user_id)
    if caller.name and caller.name != caller.user_id:
        mine += await context.plans.tasks_of_owner(caller.name)
    if changed is not None and changed.owner in (caller.user_id, caller.name):
        mine = [t for t in mine if t.id != changed.id] + [changed]
    mine.sort(key=lambda t: (t.due_on, t.id))
    plan_titles = {p.id: p.title for p in await context.plans.list_plans(Tier.TACTICAL, archived=True)}
    return member_week(
        person_name=caller.name,
        iso_week=week,
        tasks=mine,
        today=context.today,
        plan_titles=plan_titles,
        note=Markdown(note) if note else None,
    )


async def _task_filter(context: Context, args: Mapping[str, Any]) -> TaskFilter:
    """The list's filter: from a card's data (an owner key) or typed (a person's name, resolved)."""
    owner = str(args.get("owner") or "").strip() or None
    if owner is not None and not args.get("from_card"):
        owner = (await context.person_arg(owner))[0]
    raw_status = str(args.get("status_filter") or (args.get("status") if args.get("card") is None else "") or "")
    try:
        status = TaskStatus(raw_status.lower()) if raw_status else None
    except ValueError:
        raise BadArguments("status must be one of todo, doing, done, blocked, delegated.") from None
    return TaskFilter(owner=owner, status=status, overdue=bool(args.get("overdue")))


async def _task_list(
    context: Context, plan: Plan, task_filter: TaskFilter, *, note: str | None = None
) -> dict[str, Any]:
    tasks = await context.plans.list_tasks(plan.id)
    names = await context.display_names([t.owner for t in tasks] + [task_filter.owner])
    return task_list_card(
        plan, tasks, task_filter=task_filter, names=names, today=context.today, note=Markdown(note) if note else None
    )


async def list_tasks(context: Context, args: Mapping[str, Any]) -> Reply:
    plan = await context.plan_arg(args, "plan", tier=None if args.get("plan") else Tier.TACTICAL)
    card = await _task_list(context, plan, await _task_filter(context, args))
    if args.get("from_card") and args.get("card") == TASKS_CARD:
        return Reply(card_update=card)  # the list's own Refresh: in place
    return Reply(cards=(card,))


async def _edit(context: Context, args: Mapping[str, Any], task_id: int, changes: TaskChanges) -> tuple[Task, bool]:
    """Apply `changes` at the version the caller saw; a card that went stale gets (task as it is now, True)."""
    try:
        task = await context.plans.update_task(
            task_id, changes, actor=context.caller.user_id, expected_version=version_arg(args)
        )
    except StaleEdit:
        if not args.get("from_card"):
            raise
        return await context.plans.get_task(task_id), True
    return task, False


def _owner(key: str | None, name: str) -> str:
    """A new owner's name as a reply shows it: a name typed for someone the bot does not know yet, cut short."""
    return literal(excerpt(name) if key == name else name)


async def add_task(context: Context, args: Mapping[str, Any]) -> Reply:
    title = context.text_arg(args, "title")
    due = context.date_arg(args, "due")
    plan = await context.plan_arg(args, "plan", tier=None if args.get("plan") else Tier.TACTICAL)
    owner_key, owner_name = (None, None)
    if args.get("owner"):
        owner_key, owner_name = await context.person_arg(str(args["owner"]))
    task = await context.plans.add_task(
        plan.id,
        title=title,
        due_on=due,
        owner=owner_key,
        milestone=bool(args.get("milestone")),
        actor=context.caller.user_id,
    )
    due_said = day_seen_from(task.due_on, context.today)
    text = f"Task T{task.id} added to P{plan.id}: {literal(task.title)}, due {due_said}"
    if owner_name:
        text += f", owned by {_owner(owner_key, owner_name)}."
    else:
        text += f". Nobody owns it yet: `assign T{task.id} to WHO`."
    if owner_key and owner_key == owner_name and owner_key != context.caller.user_id:
        text += messages.unknown_owner_note(owner_name)
    # Picked on a card that asked which reading was meant: the task replaces the question.
    return await _task_reply(context, task, text, from_card=bool(args.get("from_card")))


async def assign_task(context: Context, args: Mapping[str, Any]) -> Reply:
    task_id = parse_ref(args.get("task") or "", "T", "a task")
    owner_key, owner_name = await context.person_arg(str(args.get("owner") or ""))
    task = await context.plans.update_task(
        task_id, TaskChanges(owner=owner_key), actor=context.caller.user_id, expected_version=version_arg(args)
    )
    text = f"T{task.id} is now {_owner(owner_key, owner_name)}'s."
    if owner_key == owner_name and owner_key != context.caller.user_id:
        text += messages.unknown_owner_note(owner_name)
    return await _task_reply(context, task, text, from_card=False, undo=True)


async def set_task_status(context: Context, args: Mapping[str, Any]) -> Reply:
    task_id = parse_ref(args.get("task") or "", "T", "a task")
    try:
        status = TaskStatus(str(args.get("status", "")).lower())
    except ValueError:
        raise BadArguments("status must be one of todo, doing, done, blocked.") from None
    if status is TaskStatus.DELEGATED:
        raise BadArguments("A task is delegated by delegating it to an agent, not by setting its status.")
    from_card = bool(args.get("from_card"))
    reason = context.optional_text_arg(args, "reason")
    task, stale = await _edit(context, args, task_id, TaskChanges(status=status, blocked_reason=reason))
    if stale:
        origin = await _origin_card(context, args, task, messages.STALE_CARD)
        if origin is not None:
            return Reply(card_update=origin)
        return await _task_reply(context, task, messages.STALE_CARD, from_card=True)
    text = f"T{task.id} {STATUS_WORDS[status]} by {literal(context.caller.name)}."
    if status is TaskStatus.BLOCKED and reason:
        text = f"T{task.id} blocked by {literal(context.caller.name)}: {literal(reason)}"
    if status is TaskStatus.DONE and context.delegator is not None:
        delegations = context.delegator.delegations(context.caller.tenant_id)
        cancelled = await delegations.cancel_open_of_task(
            task.id, actor=context.caller.user_id, reason="its task was done"
        )
        if cancelled:
            text += f" Cancelled {', '.join(f'D{d.id}' for d in cancelled)}: no agent is needed for it now."
    origin = await _origin_card(context, args, task, text)
    if origin is not None:
        return Reply(card_update=origin)
    return await _task_reply(context, task, text, from_card=from_card)


async def snooze_task(context: Context, args: Mapping[str, Any]) -> Reply:
    task_id = parse_ref(args.get("task") or "", "T", "a task")
    hours = parse_number(str(args.get("hours") or 24), "hours")
    if not 0 < hours <= 24 * 14:
        raise BadArguments("Snooze for between 1 hour and 14 days.")
    until = context.now() + timedelta(hours=hours)
    from_card = bool(args.get("from_card"))
    task, stale = await _edit(context, args, task_id, TaskChanges(snoozed_until=until))
    if stale:
        origin = await _origin_card(context, args, task, messages.STALE_CARD)
        if origin is not None:
            return Reply(card_update=origin)
        return await _task_reply(context, task, messages.STALE_CARD, from_card=True)
    when = (
        until.astimezone(context.zone).strftime("%a %d %b %H:%M")
        if context.zone
        else until.strftime("%a %d %b %H:%M UTC")
    )
    text = f"T{task.id} snoozed until {when}."
    origin = await _origin_card(context, args, task, text)
    if origin is not None:
        return Reply(card_update=origin)
    return await _task_reply(context, task, text, from_card=from_card)


async def show_task(context: Context, args: Mapping[str, Any]) -> Reply:
    task = await context.plans.get_task(parse_ref(args.get("task") or "", "T", "a task"))
    return await _task_reply(context, task, "", from_card=False)


async def my_tasks(context: Context, args: Mapping[str, Any]) -> Reply:
    """The caller's week card: this week's (the ISO week, Monday to Sunday, as weekly plans are), or next week's.

    On a Sunday this week ends today, and whoever asks then may mean the week ahead: the reply says which days the
    card covers and how to ask for next week."""
    asked = str(args.get("week") or "").strip()
    if asked.lower() == "next":
        week = iso_week_of(context.today + timedelta(days=7))
    elif _ISO_WEEK.fullmatch(asked.upper()):
        week = asked.upper()
    elif asked:
        raise BadArguments("week is next, or an ISO week such as 2026-W07; leave it out for this week.")
    else:
        week = iso_week_of(context.today)
    window = iso_week_window(week)
    text = messages.week_ends_today(window.start, window.end) if window.end == context.today else ""
    return Reply(text=text, cards=(await _week_card(context, week, None, None),))


def _yes_no(value: object) -> bool | None:
    """A milestone flag from a tool call (true/false) or a command or card (yes/no); None when not given."""
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise BadArguments("milestone is yes or no, e.g. `edit T12 milestone yes`.")


async def edit_task(context: Context, args: Mapping[str, Any]) -> Reply:
    task = await context.plans.get_task(parse_ref(args.get("task") or "", "T", "a task"))
    from_card = bool(args.get("from_card"))
    version = version_arg(args)
    if version is not None and version != task.version:
        if from_card:
            return await _task_reply(context, task, messages.STALE_CARD, from_card=True)
        raise StaleEdit("Task", task.id, version, task.version)
    shown_owner = (await context.display_names([task.owner])).get(task.owner or "", task.owner) or ""
    said: list[str] = []
    title = context.optional_text_arg(args, "title")
    if title is not None and title != task.title:
        said.append(f"title “{literal(excerpt(title))}”")
    else:
        title = None
    due = context.optional_date_arg(args, "due")
    if due is not None and due != task.due_on:
        said.append(f"due {day_seen_from(due, context.today)}")
    else:
        due = None
    milestone = _yes_no(args.get("milestone"))
    if milestone is not None and milestone != task.milestone:
        said.append("now a milestone" if milestone else "no longer a milestone")
    else:
        milestone = None
    owner_key: str | None = None
    clear_owner = False
    typed_owner = context.optional_text_arg(args, "owner")
    unchanged = {shown_owner.casefold(), (task.owner or "").casefold()}
    if typed_owner is not None and typed_owner.casefold() not in unchanged:
        if typed_owner.casefold() in NOBODY:
            clear_owner = task.owner is not None
            if clear_owner:
                said.append("nobody owns it now")
        else:
            key, name = await context.person_arg(typed_owner)
            if key != task.owner:
                owner_key = key
                said.append(f"owner {_owner(key, name)}")
    plan_id: int | None = None
    if args.get("plan") not in (None, ""):
        plan = await context.plans.get_plan(parse_ref(args["plan"], "P", "a plan"))
        if plan.id != task.plan_id and plan.parent_id != task.plan_id:
            plan_id = plan.id
            said.append(f"moved to P{plan.id} ({literal(plan.title)})")
    if not said:
        if from_card:
            return await _task_reply(context, task, messages.nothing_to_change_in_task(task.id), from_card=True)
        raise BadArguments(messages.nothing_to_change_in_task(task.id))
    changes = TaskChanges(
        title=title, due_on=due, milestone=milestone, owner=owner_key, clear_owner=clear_owner, plan_id=plan_id
    )
    try:
        edited = await context.plans.update_task(
            task.id, changes, actor=context.caller.user_id, expected_version=task.version
        )
    except StaleEdit:
        if not from_card:
            raise
        return await _task_reply(context, await context.plans.get_task(task.id), messages.STALE_CARD, from_card=True)
    return await _task_reply(context, edited, messages.task_edited(edited.id, said), from_card=from_card, undo=True)


async def delete_task(context: Context, args: Mapping[str, Any]) -> Reply:
    task = await context.plans.get_task(parse_ref(args.get("task") or "", "T", "a task"))
    plan = await context.plans.get_plan(task.plan_id)
    note = ""
    if context.delegator is not None:
        # What an agent would do for it is no longer wanted, as when the task is done; undo does not bring them back.
        delegations = context.delegator.delegations(context.caller.tenant_id)
        cancelled = await delegations.cancel_open_of_task(
            task.id, actor=context.caller.user_id, reason="its task was deleted"
        )
        if cancelled:
            note = messages.delegations_cancelled_with_task([f"D{d.id}" for d in cancelled])
    await context.plans.delete_task(task.id, actor=context.caller.user_id)
    card = deleted_card(task, plan_title=plan.title, today=context.today, minutes=UNDO_MINUTES)
    text = messages.task_deleted(task.id, task.title, UNDO_MINUTES) + note
    if args.get("from_card"):
        return Reply(text=text, card_update=card)
    return Reply(text=text, cards=(card,))


async def restore_task(context: Context, args: Mapping[str, Any]) -> Reply:
    from_card = bool(args.get("from_card"))
    version = version_arg(args)
    if args.get("task") not in (None, "") and version is None:  # `undo T12`, or a deleted task's Undo button
        wanted = parse_ref(args["task"], "T", "a task")
        task, was = await context.plans.restore_task(wanted, actor=context.caller.user_id)
        return await _task_reply(context, task, messages.task_restored(task.id, was), from_card=from_card)
    undone = await context.plans.undo(actor=context.caller.user_id, subject=_undo_subject(args), version=version)
    if isinstance(undone.subject, Plan):
        text = messages.edit_undone(f"P{undone.subject.id}", await _plan_fields_said(context, undone))
        return await plan_reply(context, undone.subject.id, text, from_card=from_card)
    task = undone.subject
    if undone.deleted:
        return await _task_reply(context, task, messages.task_restored(task.id, undone.was_id), from_card=from_card)
    text = messages.edit_undone(f"T{task.id}", await _task_fields_said(context, task, undone.fields))
    return await _task_reply(context, task, text, from_card=from_card)


def _undo_subject(args: Mapping[str, Any]) -> tuple[str, int] | None:
    """The task or plan an undo names (none: the caller's last change, whatever it was of)."""
    if args.get("task") not in (None, ""):
        return ("task", parse_ref(args["task"], "T", "a task"))
    if args.get("plan") not in (None, ""):
        return ("plan", parse_ref(args["plan"], "P", "a plan"))
    return None


async def _undone_goals(context: Context, args: Mapping[str, Any]) -> list[Plan]:
    """The master plan whose goals an undo would set back: taking back a change of strategy is one too, so it is
    the leader's own (in person; what the model proposes waits for them). Anyone else gets UndoNeedsLeader at once:
    what they ask back goes through `edit master`, held for the leader's approval like any change of goals."""
    if args.get("task") not in (None, "") and version_arg(args) is None:
        return []  # `undo T12`: a deleted task back, no goal
    caller = context.caller.user_id
    event = await context.plans.undoable(actor=caller, subject=_undo_subject(args), version=version_arg(args))
    if event is None or event.subject_type != "plan":
        return []
    plan = await context.plans.get_plan(event.subject_id)
    if plan.tier is not Tier.MASTER:
        return []
    if plan.owner != caller:
        raise UndoNeedsLeader(plan.id)
    return [plan]


async def _task_fields_said(context: Context, task: Task, fields: Sequence[str]) -> list[str]:
    """What an undo put back in a task, in the bot's words."""
    said: list[str] = []
    for field in fields:
        if field == "title":
            said.append(f"title “{literal(excerpt(task.title))}”")
        elif field == "due_on":
            said.append(f"due {day_seen_from(task.due_on, context.today)}")
        elif field == "owner":
            names = await context.display_names([task.owner])
            said.append(f"owner {literal(person_name(task.owner, names))}" if task.owner else "nobody owns it")
        elif field == "plan_id":
            plan = await context.plans.get_plan(task.plan_id)
            said.append(f"in P{plan.id} ({literal(plan.title)})")
        elif field == "milestone":
            said.append("a milestone" if task.milestone else "not a milestone")
    return said


async def _plan_fields_said(context: Context, undone: UndoneChange) -> list[str]:
    """What an undo put back in a plan, in the bot's words."""
    plan = undone.subject
    assert isinstance(plan, Plan)
    said: list[str] = []
    for field in undone.fields:
        if field == "title":
            said.append(f"title “{literal(excerpt(plan.title))}”")
        elif field == "owner":
            names = await context.display_names([plan.owner])
            said.append(f"owner {literal(person_name(plan.owner, names))}")
        elif field == "window":
            said.append(f"dates {window_label(plan.window.start, plan.window.end)}")
        elif field == "constraints":
            said.append("constraints " + ("; ".join(literal(c) for c in plan.constraints) or "none"))
        elif field == "archived_at":
            said.append("archived" if plan.archived_at is not None else "back in use")
        elif field == TARGETS:
            metrics = await context.plans.list_metrics(plan.id)
            said += [f"{literal(m.name)} target {literal(quantity(m.target, m.unit, name=m.name))}" for m in metrics]
    return said


OPERATIONS = (
    Operation(
        name="add_task",
        summary="Add a task to a tactical (or weekly) plan, with its due date, optional owner and milestone flag.",
        usage=("add task <title> [to P2] due <date> [owner <who>] [milestone]",),
        parameters={
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "plan": {"type": "string", "description": "plan id such as P2; default: the active tactical plan"},
                "due": {"type": "string", "description": "due date, YYYY-MM-DD"},
                "owner": {"type": "string", "description": "'me', a person's name, or an @mentioned name"},
                "milestone": {"type": "boolean"},
            },
            "required": ["title", "due"],
        },
        run=add_task,
        kind=ActionKind.PLAN_CHANGE,
    ),
    Operation(
        name="assign_task",
        summary="Give a task to a person.",
        usage=("assign T12 to <who>",),
        parameters={
            "type": "object",
            "properties": {"task": TASK_REF, "owner": {"type": "string"}},
            "required": ["task", "owner"],
        },
        run=assign_task,
        kind=ActionKind.PLAN_CHANGE,
    ),
    Operation(
        name="set_task_status",
        summary="Start, finish, block (with a reason) or reopen a task.",
        usage=("start T12", "done T12", "block T12 <reason>", "reopen T12"),
        parameters={
            "type": "object",
            "properties": {
                "task": TASK_REF,
                "status": {"type": "string", "enum": ["todo", "doing", "done", "blocked"]},
                "reason": {"type": "string", "description": "what blocks it (for blocked)"},
            },
            "required": ["task", "status"],
        },
        run=set_task_status,
        kind=ActionKind.PLAN_CHANGE,
    ),
    Operation(
        name="snooze_task",
        summary="Hold a task's reminders for some hours (default 24).",
        usage=("snooze T12 [2 days|4 hours]",),
        parameters={
            "type": "object",
            "properties": {"task": TASK_REF, "hours": {"type": "number"}},
            "required": ["task"],
        },
        run=snooze_task,
        kind=ActionKind.PLAN_CHANGE,
    ),
    Operation(
        name="edit_task",
        summary="Fix a task: its title, due date, owner (nobody to clear it), plan (moves it) or milestone flag. "
        "Fields not given stay as they are.",
        usage=(
            "edit T12 title TEXT",
            "edit T12 due DATE",
            "edit T12 owner WHO",
            "edit T12 milestone yes|no",
            "move T12 to P3",
        ),
        parameters={
            "type": "object",
            "properties": {
                "task": TASK_REF,
                "title": {"type": "string"},
                "due": {"type": "string", "description": "due date, YYYY-MM-DD"},
                "owner": {"type": "string", "description": "'me', a person's name, an @mentioned name, or 'nobody'"},
                "plan": {"type": "string", "description": "a plan id such as P3, to move the task there"},
                "milestone": {"type": "boolean"},
            },
            "required": ["task"],
        },
        run=edit_task,
        kind=ActionKind.PLAN_CHANGE,
    ),
    Operation(
        name="delete_task",
        summary="Delete a task (its pending delegations are cancelled); `undo` brings it back within minutes.",
        usage=("delete T12",),
        parameters={"type": "object", "properties": {"task": TASK_REF}, "required": ["task"]},
        run=delete_task,
        kind=ActionKind.PLAN_CHANGE,
    ),
    Operation(
        name="restore_task",
        summary="Undo the caller's last change of the last minutes: an edit of a task or plan, an archive, a deletion "
        "(`undo T12` brings back that deleted task; `undo P2` takes back the caller's last change of that plan).",
        usage=("undo", "undo T12", "undo P2"),
        parameters={
            "type": "object",
            "properties": {
                "task": TASK_REF,
                "plan": {"type": "string", "description": "a plan id such as P2: undo its last change"},
                "version": {"type": "integer", "description": "the version an edit made (an Undo button's)"},
            },
        },
        run=restore_task,
        kind=ActionKind.PLAN_CHANGE,
        categories=(GateCategory.STRATEGY,),
        masters=_undone_goals,
    ),
    Operation(
        name="show_task",
        summary="Show one task as a card.",
        usage=("task T12",),
        parameters={"type": "object", "properties": {"task": TASK_REF}, "required": ["task"]},
        run=show_task,
        kind=ActionKind.READ,
    ),
    Operation(
        name="my_tasks",
        summary="Show the asking person's open tasks: overdue, this week (Monday to Sunday) or next week, later.",
        usage=("my tasks", "my tasks next week"),
        parameters={
            "type": "object",
            "properties": {
                "week": {"type": "string", "description": "next for next week, or an ISO week such as 2026-W07"}
            },
        },
        run=my_tasks,
        kind=ActionKind.READ,
    ),
    Operation(
        name="tasks",
        summary="Show a plan's tasks as a list with Done and Snooze on each row, filtered by owner, status, overdue.",
        usage=("tasks P2 [owner <who>] [overdue] [status blocked]",),
        parameters={
            "type": "object",
            "properties": {
                "plan": {"type": "string", "description": "plan id such as P2; default: the active tactical plan"},
                "owner": {"type": "string", "description": "only this person's tasks: 'me' or a name"},
                "status": {"type": "string", "enum": ["todo", "doing", "done", "blocked", "delegated"]},
                "overdue": {"type": "boolean", "description": "only the overdue tasks"},
            },
        },
        run=list_tasks,
        kind=ActionKind.READ,
    ),
)
