"""Derivation by rules: the tasks of one week, taken from its tactical plan.

The LLM may later propose plans; these rules are what the bot does without one, and what its proposals
are checked against.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from planner.domain.errors import Expected, Field, InvalidValue
from planner.domain.model import Metric, MetricSpec, Plan, Task, WeeklyItem, Window


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


CADENCES = ("monthly", "fortnightly", "quarterly")


def split_window(window: Window, cadence: str) -> list[Window]:
    """Consecutive windows covering `window`: calendar months or quarters, or 14-day stretches.

    Raises InvalidValue for an unknown cadence.
    """
    if cadence not in CADENCES:
        raise InvalidValue(Field.CADENCE, cadence, Expected.ONE_OF, choices=tuple(CADENCES))
    parts = []
    start = window.start
    while start <= window.end:
        if cadence == "fortnightly":
            end = start + timedelta(days=13)
        else:
            months = 1 if cadence == "monthly" else 3
            first_month = start.month if cadence == "monthly" else ((start.month - 1) // 3) * 3 + 1
            year, month = divmod(first_month - 1 + months, 12)
            end = date(start.year + year, month + 1, 1) - timedelta(days=1)
        end = min(end, window.end)
        parts.append(Window(start=start, end=end))
        start = end + timedelta(days=1)
    return parts


def prorated_targets(metrics: Iterable[Metric], parent: Window, part: Window) -> list[MetricSpec]:
    """Each KPI for `part`: a growing one gets its share of the parent's gain, in proportion to the days
    (straight-line pace); a falling one (cost per lead) applies as it is to every part."""
    share = part.days / parent.days
    specs = []
    for m in metrics:
        if m.target >= m.baseline:
            specs.append(
                MetricSpec(
                    name=m.name,
                    unit=m.unit,
                    direction=m.direction,
                    baseline=0.0,
                    target=round((m.target - m.baseline) * share, 2),
                    tolerance=m.tolerance,
                )
            )
        else:
            specs.append(
                MetricSpec(
                    name=m.name,
                    unit=m.unit,
                    direction=m.direction,
                    baseline=m.baseline,
                    target=m.target,
                    tolerance=m.tolerance,
                )
            )
    return specs


def tactical_proposals(master: Plan, metrics: Iterable[Metric], cadence: str) -> list[dict[str, object]]:
    """Tactical plans by rule: one per period of the master plan, each with its prorated KPI targets."""
    metrics = list(metrics)
    proposals: list[dict[str, object]] = []
    for part in split_window(master.window, cadence):
        label = (
            part.start.strftime("%B %Y")
            if cadence == "monthly"
            else (
                f"Q{(part.start.month - 1) // 3 + 1} {part.start.year}"
                if cadence == "quarterly"
                else f"{part.start.strftime('%d %b')} to {part.end.strftime('%d %b')}"
            )
        )
        proposals.append(
            {
                "title": f"{master.title}: {label}",
                "start": part.start.isoformat(),
                "end": part.end.isoformat(),
                "owner": master.owner,
                "kpis": [
                    {
                        "name": s.name,
                        "target": s.target,
                        "unit": s.unit,
                        "baseline": s.baseline,
                        "tolerance": s.tolerance,
                    }
                    for s in prorated_targets(metrics, master.window, part)
                ],
            }
        )
    return proposals
