"""One task as a card: its facts and the buttons to answer a nudge (Done, Snooze, Blocked with a reason)."""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.cards.actions import VERB_SNOOZE, VERB_TASK_STATUS, execute, show_card
from bot.cards.edit import edit_form, undo_button
from bot.cards.elements import Element, adaptive_card, column, column_set, fact_set, heading, text_block
from bot.cards.wording import MILESTONE, STATUS_LABELS, day_label, due_relative, moment_label, task_ref
from bot.text.people import person_name
from planner.domain.model import Task, TaskStatus

SNOOZE_HOURS = 24
BLOCKED_REASON_INPUT = "reason"
BLOCKED_REASON_MAX_LENGTH = 300


def _due(task: Task, today: date) -> str:
    day = day_label(task.due_on, with_year=True)
    if task.status is TaskStatus.DONE:
        return day
    return f"{day} ({due_relative(task.due_on, today)})"


def _status_payload(task: Task, status: TaskStatus) -> dict[str, object]:
    return {"task": task.id, "status": status.value, "version": task.version}


def _blocked_form(task: Task) -> Element:
    reason = {
        "type": "Input.Text",
        "id": BLOCKED_REASON_INPUT,
        "label": "Reason",
        "placeholder": "What is blocking it?",
        "isMultiline": False,
        "maxLength": BLOCKED_REASON_MAX_LENGTH,
        "isRequired": True,
        "errorMessage": "Say what is blocking it, in a few words.",
    }
    mark_blocked = execute("Mark blocked", VERB_TASK_STATUS, _status_payload(task, TaskStatus.BLOCKED))
    return show_card("Blocked", [reason], [mark_blocked])


def task_actions(task: Task) -> list[dict[str, Any]]:
    """Done, Snooze and Blocked for an open task; only Reopen for a done one."""
    if task.status is TaskStatus.DONE:
        return [execute("Reopen", VERB_TASK_STATUS, _status_payload(task, TaskStatus.TODO))]
    return [
        execute("Done", VERB_TASK_STATUS, _status_payload(task, TaskStatus.DONE), style="positive"),
        execute(
            f"Snooze {SNOOZE_HOURS} h",
            VERB_SNOOZE,
            {"task": task.id, "hours": SNOOZE_HOURS, "version": task.version},
        ),
        _blocked_form(task),
    ]


def task_card(
    task: Task,
    *,
    plan_title: str,
    owner_name: str | None,
    today: date,
    note: str | None = None,
    undo: bool = False,
) -> dict[str, Any]:
    """A task with its plan, owner, due date and status; `note` (e.g. who changed it) goes on top; with `undo`, an
    Undo button that takes back the edit that made this version."""
    body: list[Element] = []
    if note:
        body.append(text_block(note, weight="bolder", color="accent"))
    title = heading(task.title)
    if task.milestone:
        body.append(
            column_set(
                [
                    column([title], width="stretch"),
                    column(
                        [text_block(MILESTONE, weight="bolder", color="accent")],
                        width="auto",
                        vertical_alignment="center",
                    ),
                ]
            )
        )
    else:
        body.append(title)
    facts = [
        ("Task", task_ref(task.id)),
        ("Plan", plan_title),
        ("Owner", owner_name or (person_name(task.owner) if task.owner else "Nobody yet")),
        ("Due", _due(task, today)),
        ("Status", STATUS_LABELS[task.status]),
    ]
    if task.blocked_reason:
        facts.append(("Blocked because", task.blocked_reason))
    if task.snoozed_until is not None:
        facts.append(("Snoozed until", moment_label(task.snoozed_until)))
    body.append(fact_set(facts))
    actions = [*task_actions(task), edit_form(task, owner_name=owner_name)]
    if undo:
        actions.append(undo_button("task", task.id, task.version))
    return adaptive_card(body, actions)
