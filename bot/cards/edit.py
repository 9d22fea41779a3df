"""Fixing a task or a plan from its card: the Edit button's inline form, the Undo button of an edit, and the card of
a deleted task with its Undo button."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from bot.cards.actions import VERB_SHOW_PLAN, execute, show_card
from bot.cards.elements import Element, adaptive_card, fact_set, heading, text_block
from bot.cards.wording import day_seen_from, task_ref
from bot.text.numbers import figure
from planner.domain.model import Metric, Plan, Task, Tier

VERB_EDIT_TASK = "edit_task"
VERB_EDIT_PLAN = "edit_plan"
VERB_EDIT_MASTER_PLAN = "edit_master_plan"
VERB_PLAN_EDIT_FORM = "plan_edit_form"
VERB_RESTORE_TASK = "restore_task"
"""Undo: a deleted task's button (its id), an edit's button (the object and the version the edit made)."""
TITLE_MAX_LENGTH = 500
OWNER_MAX_LENGTH = 200
PLAN_MAX_LENGTH = 12
CONSTRAINTS_MAX_LENGTH = 2000
TARGET_INPUT = "target_"
"""A KPI target's input on a master plan's form: `target_` and the metric's id."""


def edit_form(task: Task, *, owner_name: str | None) -> dict[str, Any]:
    """An Edit button unfolding a form with the task's title, due date, owner, plan and milestone flag; Save sends
    the form to `edit_task` at the version shown, and the card is replaced by the edited task."""
    inputs: list[Element] = [
        {
            "type": "Input.Text",
            "id": "title",
            "label": "Title",
            "value": task.title,
            "maxLength": TITLE_MAX_LENGTH,
            "isRequired": True,
            "errorMessage": "A task needs a title.",
        },
        {"type": "Input.Date", "id": "due", "label": "Due", "value": task.due_on.isoformat(), "isRequired": True},
        {
            "type": "Input.Text",
            "id": "owner",
            "label": "Owner",
            "value": owner_name or task.owner or "",
            "placeholder": "a name, @mention or me; nobody to leave it unowned",
            "maxLength": OWNER_MAX_LENGTH,
        },
        {
            "type": "Input.Text",
            "id": "plan",
            "label": "Plan",
            "value": f"P{task.plan_id}",
            "placeholder": "a plan id such as P3, to move it",
            "maxLength": PLAN_MAX_LENGTH,
        },
        {
            "type": "Input.ChoiceSet",
            "id": "milestone",
            "label": "Milestone",
            "style": "compact",
            "value": "yes" if task.milestone else "no",
            "choices": [{"title": "Yes", "value": "yes"}, {"title": "No", "value": "no"}],
        },
    ]
    save = execute("Save", VERB_EDIT_TASK, {"task": task.id, "version": task.version}, style="positive")
    return show_card("Edit", inputs, [save])


def deleted_card(task: Task, *, plan_title: str, today: date, minutes: int) -> dict[str, Any]:
    """What was deleted, and an Undo button that brings it back (within `minutes`)."""
    body: list[Element] = [
        text_block(f"Deleted. Undo within {minutes} minutes to bring it back.", weight="bolder", color="attention"),
        heading(task.title),
        fact_set(
            [
                ("Task", task_ref(task.id)),
                ("Plan", plan_title),
                ("Due", day_seen_from(task.due_on, today)),
            ]
        ),
    ]
    return adaptive_card(body, [execute("Undo", VERB_RESTORE_TASK, {"task": task.id})])


def undo_button(kind: str, object_id: int, version: int) -> dict[str, Any]:
    """An Undo button that takes back the caller's edit that left a task or plan at `version`."""
    return execute("Undo", VERB_RESTORE_TASK, {kind: object_id, "version": version})


def plan_edit_card(plan: Plan, *, owner_name: str, metrics: Sequence[Metric], card: str) -> dict[str, Any]:
    """The plan card turned into its form, in place: what `edit P2` changes (title, owner, window; a weekly plan's
    window is its week) or, for a master plan, what `edit master` changes (north star, window, constraints, KPI
    targets). Save sends the form at the version shown, through the same operation and gate as typed; Cancel redraws
    the plan. `card` names the card Save and Cancel redraw in place."""
    master = plan.tier is Tier.MASTER
    inputs: list[Element] = [
        {
            "type": "Input.Text",
            "id": "title",
            "label": "North star" if master else "Title",
            "value": plan.title,
            "maxLength": TITLE_MAX_LENGTH,
            "isRequired": True,
            "errorMessage": "A plan needs a title.",
        }
    ]
    if not master:
        inputs.append(
            {
                "type": "Input.Text",
                "id": "owner",
                "label": "Owner",
                "value": owner_name,
                "placeholder": "a name, @mention or me",
                "maxLength": OWNER_MAX_LENGTH,
                "isRequired": True,
                "errorMessage": "A plan needs an owner.",
            }
        )
    if plan.tier is not Tier.WEEKLY:
        inputs += [
            {"type": "Input.Date", "id": "start", "label": "From", "value": plan.window.start.isoformat()},
            {"type": "Input.Date", "id": "end", "label": "To", "value": plan.window.end.isoformat()},
        ]
    if master:
        inputs.append(
            {
                "type": "Input.Text",
                "id": "constraints",
                "label": "Constraints, one a line",
                "value": "\n".join(plan.constraints),
                "isMultiline": True,
                "maxLength": CONSTRAINTS_MAX_LENGTH,
            }
        )
        inputs += [
            {
                "type": "Input.Number",
                "id": f"{TARGET_INPUT}{metric.id}",
                "label": f"{metric.name} target" + (f" ({metric.unit})" if metric.unit else ""),
                "value": metric.target,
                "placeholder": figure(metric.target),
            }
            for metric in metrics
        ]
    verb = VERB_EDIT_MASTER_PLAN if master else VERB_EDIT_PLAN
    ref = f"P{plan.id}"
    save = execute("Save", verb, {"plan": ref, "version": plan.version, "card": card}, style="positive")
    cancel = execute("Cancel", VERB_SHOW_PLAN, {"plan": plan.id, "card": card})
    title = f"Edit {ref} · {'master plan' if master else plan.tier.value + ' plan'}"
    return adaptive_card([heading(title), *inputs], [save, cancel])


def plan_edit_button(plan: Plan, *, card: str) -> dict[str, Any]:
    """The plan card's Edit button: it turns the card into the plan's form (a form inside the card itself would
    cost a large plan card the room of a tactical plan)."""
    return execute("Edit", VERB_PLAN_EDIT_FORM, {"plan": plan.id, "card": card})
