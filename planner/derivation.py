"""Derivation by rules: the tasks of one week, taken from its tactical plan.

The LLM may later propose plans; these rules are what the bot does without one, and what its proposals
are checked against.
"""

from __future__ import annotations

from collections.abc import Iterable

from planner.model import Task, WeeklyItem, Window


def weekly_selection(tactical_tasks: Iterable[Task], week: Window) -> list[WeeklyItem]:
    """The weekly plan of `week`: tasks due that week, plus every unfinished task due before it (carried over).

    Carrying over everything still open from earlier weeks, not only the week just before, means a task
    never drops out of sight because nobody derived a weekly plan while it was due. Carried-over items come
    first, then by due date and id, so the oldest debt heads the list.
    """
    items = []
    for task in tactical_tasks:
        if week.includes(task.due_on):
            items.append(WeeklyItem(task=task, carried_over=False))
        elif task.due_on < week.start and task.status.is_open:
            items.append(WeeklyItem(task=task, carried_over=True))
    items.sort(key=lambda item: (not item.carried_over, item.task.due_on, item.task.id))
    return items
