"""Fixing a task from its card: the Edit button's inline form, and the card of a deleted task with its Undo button."""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.cards.actions import execute, show_card
from bot.cards.elements import Element, adaptive_card, fact_set, heading, text_block
from bot.cards.wording import day_label, task_ref
from planner.domain.model import Task

VERB_EDIT_TASK = "edit_task"
VERB_RESTORE_TASK = "restore_task"
TITLE_MAX_LENGTH = 500
OWNER_MAX_LENGTH = 200
PLAN_MAX_LENGTH = 12


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
                ("Due", day_label(task.due_on, with_year=task.due_on.year != today.year)),
            ]
        ),
    ]
    return adaptive_card(body, [execute("Undo", VERB_RESTORE_TASK, {"task": task.id})])
