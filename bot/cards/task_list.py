"""A plan's task list, filtered by owner, status or overdue, with Done and Snooze on every row.

A row's button carries the list it came from (`card`, `plan` and the filters), so its answer is this same list
rebuilt with that row changed, in place of the card clicked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.cards.actions import VERB_SNOOZE, VERB_TASK_STATUS, execute
from bot.cards.elements import (
    Element,
    action_set,
    adaptive_card,
    column,
    column_set,
    container,
    folded,
    heading,
    largest_fitting,
    text_block,
)
from bot.cards.markdown import markdown
from bot.cards.wording import MILESTONE, STATUS_LABELS, count_of, day_label, due_relative, plan_ref, task_ref
from bot.text.people import person_name
from planner.domain.model import Plan, Task, TaskStatus

TASKS_CARD = "tasks"
VERB_TASKS = "tasks"
ROWS_UNFOLDED = 6
"""Rows shown before "Show more": about a Teams screen's worth."""
MAX_ROWS = 60
"""Rows on the card at most (fewer when long titles would break Teams' size limit); the rest are counted."""
SNOOZE_HOURS = 24


@dataclass(frozen=True, kw_only=True)
class TaskFilter:
    """Which of a plan's tasks a list shows: one owner's, one status, only the overdue ones (all when empty)."""

    owner: str | None = None
    status: TaskStatus | None = None
    overdue: bool = False

    def admits(self, task: Task, today: date) -> bool:
        if self.owner is not None and task.owner != self.owner:
            return False
        if self.status is not None and task.status is not self.status:
            return False
        return not self.overdue or task.is_overdue(today)

    def as_data(self) -> dict[str, object]:
        """The filter as a button's data carries it (and `tasks` reads it back)."""
        data: dict[str, object] = {}
        if self.owner is not None:
            data["owner"] = self.owner
        if self.status is not None:
            data["status_filter"] = self.status.value
        if self.overdue:
            data["overdue"] = True
        return data

    def describe(self, names: Mapping[str, str]) -> str:
        words = []
        if self.owner is not None:
            words.append(f"owner {person_name(self.owner, names)}")
        if self.status is not None:
            words.append(STATUS_LABELS[self.status].lower())
        if self.overdue:
            words.append("overdue")
        return " · ".join(words) or "all tasks"


def _row(task: Task, names: Mapping[str, str], today: date, origin: Mapping[str, object]) -> Element:
    title = [column([text_block(markdown("**{}** · {}", task_ref(task.id), task.title))], width="stretch")]
    if task.milestone:
        title.append(column([text_block(MILESTONE, weight="bolder", color="accent")], width="auto"))
    owner = person_name(task.owner, names) if task.owner else "Nobody yet"
    due = day_label(task.due_on)
    if task.status.is_open:
        due = f"{due}, {due_relative(task.due_on, today)}"
    details = [owner, due, STATUS_LABELS[task.status]]
    items: list[Element] = [column_set(title), text_block(" · ".join(details), subtle=True, spacing="none")]
    if task.status.is_open:
        version = {"task": task.id, "version": task.version, **origin}
        items.append(
            action_set(
                [
                    execute("Done", VERB_TASK_STATUS, {**version, "status": TaskStatus.DONE.value}, style="positive"),
                    execute("Snooze a day", VERB_SNOOZE, {**version, "hours": SNOOZE_HOURS}),
                ],
                spacing="small",
            )
        )
    return container(items, separator=True)


def task_list_card(
    plan: Plan,
    tasks: Sequence[Task],
    *,
    task_filter: TaskFilter,
    names: Mapping[str, str],
    today: date,
    note: str | None = None,
) -> dict[str, Any]:
    """The tasks of `plan` the filter admits, by due date: the first screenful shown, the rest behind "Show more"."""
    shown = sorted((t for t in tasks if task_filter.admits(t, today)), key=lambda t: (t.due_on, t.id))
    origin = {"card": TASKS_CARD, "plan": plan.id, **task_filter.as_data()}
    done = sum(1 for t in tasks if t.status is TaskStatus.DONE)
    head: list[Element] = [text_block(note, weight="bolder", color="accent")] if note else []
    head += [
        heading(f"Tasks of {plan_ref(plan.id)} {plan.title}"),
        text_block(
            f"{task_filter.describe(names)} · {count_of(len(shown), 'task')} · "
            f"{done} of {count_of(len(tasks), 'task')} in the plan done",
            subtle=True,
            spacing="none",
        ),
    ]
    if not shown:
        head.append(text_block("No task matches.", spacing="medium"))

    def build(most: int) -> Element:
        rows = [_row(task, names, today, origin) for task in shown[:most]]
        body = head + rows[:ROWS_UNFOLDED] + folded("more-tasks", rows[ROWS_UNFOLDED:])
        if len(shown) > most:
            body.append(text_block(f"and {count_of(len(shown) - most, 'more task')}", subtle=True))
        refresh = execute("Refresh", VERB_TASKS, {**origin, "plan": plan_ref(plan.id)})
        return adaptive_card(body, [refresh])

    return largest_fitting(build, min(len(shown), MAX_ROWS))
