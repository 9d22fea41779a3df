"""A team member's week: their tasks grouped into overdue, due this week and later, each with a Done button."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from bot.cards.actions import VERB_TASK_STATUS, execute
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
from bot.cards.wording import MILESTONE, STATUS_LABELS, day_label, task_ref, window_label
from planner.domain.model import Task, TaskStatus, iso_week_window

MAX_TASK_ROWS = 25
"""Rows shown at most (fewer when long titles would break Teams' size limit); the rest are counted, not shown."""

ROWS_UNFOLDED = 6
"""Task rows shown before "Show more": the rest fold, so the card stays within a Teams screen."""

NOTHING_DUE = "Nothing due this week."


WEEK_CARD = "week"
"""The `card` a week card's buttons name, so the answer to a row's Done is the same week card, that row changed."""


def _task_row(task: Task, plan_titles: Mapping[int, str], origin: Mapping[str, object]) -> Element:
    title_columns = [column([text_block(markdown("**{}** · {}", task_ref(task.id), task.title))], width="stretch")]
    if task.milestone:
        title_columns.append(column([text_block(MILESTONE, weight="bolder", color="accent")], width="auto"))
    details = [day_label(task.due_on), STATUS_LABELS[task.status]]
    plan_title = plan_titles.get(task.plan_id)
    if plan_title:
        details.insert(1, plan_title)
    items: list[Element] = [
        column_set(title_columns),
        text_block(" · ".join(details), subtle=True, spacing="none"),
    ]
    if task.status is not TaskStatus.DONE:
        data = {**origin, "task": task.id, "status": TaskStatus.DONE.value}
        done = execute("Done", VERB_TASK_STATUS, data, style="positive")
        items.append(action_set([done], spacing="small"))
    return container(items, separator=True)


def _which_week(monday: date, today: date) -> str:
    """The week starting `monday` as the reader calls it on `today`: `this week`, `next week` or `that week`."""
    days = (monday - today).days
    if -6 <= days <= 0:
        return "this week"
    return "next week" if 1 <= days <= 7 else "that week"


def member_week(
    *,
    person_name: str,
    iso_week: str,
    tasks: Sequence[Task],
    today: date,
    plan_titles: Mapping[int, str],
    own: bool = True,
    note: str | None = None,
) -> dict[str, Any]:
    """The week card sent to one person: `Your week, 2026-W07` and their tasks, grouped and sorted by due date.

    With `own` (the reader's own tasks), a row's Done answers with this same card rebuilt, that row changed;
    `note` (what the last click did) goes on top.
    """
    week = iso_week_window(iso_week)
    origin: dict[str, object] = {"card": WEEK_CARD, "week": iso_week} if own else {}
    body: list[Element] = [text_block(note, weight="bolder", color="accent")] if note else []
    body += [
        heading(f"Your week, {iso_week}"),
        text_block(f"{person_name} · {window_label(week.start, week.end)}", subtle=True, spacing="none"),
    ]
    which = _which_week(week.start, today)
    due, sooner = f"Due {which}", f"Due before {which}"  # sooner: of a week to come, what falls due until it starts
    groups: dict[str, list[Task]] = {"Overdue": [], sooner: [], due: [], "Later": []}
    for task in sorted(tasks, key=lambda t: (t.due_on, t.id)):
        if task.is_overdue(today):
            groups["Overdue"].append(task)
        elif task.due_on < week.start:
            groups[sooner].append(task)
        elif week.includes(task.due_on):
            groups[due].append(task)
        else:
            groups["Later"].append(task)
    if not groups["Overdue"] and not groups[sooner] and not groups[due]:
        body.append(text_block(NOTHING_DUE if which == "this week" else f"Nothing due {which}.", spacing="medium"))

    def build(most_rows: int) -> Element:
        rows = list(body)
        listing: list[Element] = []
        unfolded = 0  # elements of `listing` shown before "Show more"
        shown = 0
        for name, group in groups.items():
            room = most_rows - shown
            if not group or room <= 0:
                continue
            color = "attention" if name == "Overdue" else None
            listing.append(
                text_block(f"{name} ({len(group)})", size="medium", weight="bolder", color=color, spacing="large")
            )
            for task in group[:room]:
                listing.append(_task_row(task, plan_titles, origin))
                shown += 1
                if shown == ROWS_UNFOLDED:
                    unfolded = len(listing)
        if not unfolded or unfolded == len(listing):
            rows.extend(listing)
        else:
            rows.extend(listing[:unfolded])
            rows.extend(folded("more-tasks", listing[unfolded:]))
        hidden = len(tasks) - shown
        if hidden > 0:
            rows.append(text_block(f"and {hidden} more {'task' if hidden == 1 else 'tasks'}", subtle=True))
        return adaptive_card(rows)

    return largest_fitting(build, min(len(tasks), MAX_TASK_ROWS))
