"""The words and formats cards use: dates, numbers, task statuses and plan health, said one way everywhere."""

from __future__ import annotations

from datetime import date, datetime

from bot.text.numbers import plain
from planner.domain.model import Health, TaskStatus

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

STATUS_LABELS: dict[TaskStatus, str] = {
    TaskStatus.TODO: "To do",
    TaskStatus.DOING: "In progress",
    TaskStatus.DONE: "Done",
    TaskStatus.BLOCKED: "Blocked",
    TaskStatus.DELEGATED: "Delegated",
}

HEALTH_LABELS: dict[Health, str] = {
    Health.ON_TRACK: "On track",
    Health.AT_RISK: "At risk",
    Health.OFF_TRACK: "Off track",
    Health.MET: "Met",
    Health.MISSED: "Missed",
}

HEALTH_COLORS: dict[Health, str] = {
    Health.ON_TRACK: "good",
    Health.AT_RISK: "warning",
    Health.OFF_TRACK: "attention",
    Health.MET: "good",
    Health.MISSED: "attention",
}
"""Both a TextBlock colour and a Container style: the schema names these three the same in both."""

MILESTONE = "Milestone"
RANGE_DASH = "\u2013"
"""The en dash between the ends of a range of days."""


def plan_ref(plan_id: int) -> str:
    """How a plan is referred to in chat and commands: `P12`."""
    return f"P{plan_id}"


def task_ref(task_id: int) -> str:
    """How a task is referred to in chat and commands: `T34`."""
    return f"T{task_id}"


def day_label(day: date, *, with_year: bool = False) -> str:
    """A day as people read it: `Thu 12 Feb`, or `Thu 12 Feb 2026` with the year."""
    label = f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"
    return f"{label} {day.year}" if with_year else label


def day_seen_from(day: date, today: date) -> str:
    """A day as read on `today`: `Thu 12 Feb`, with its year when that is not today's."""
    return day_label(day, with_year=day.year != today.year)


def window_ends(start: date, end: date) -> tuple[str, str]:
    """The two ends of an inclusive range of days as `window_label` writes them: `1 Jan` and `31 Mar 2026`."""
    first = f"{start.day} {_MONTHS[start.month - 1]}"
    last = f"{end.day} {_MONTHS[end.month - 1]} {end.year}"
    if start.year != end.year:
        first = f"{first} {start.year}"
    return first, last


def window_label(start: date, end: date) -> str:
    """An inclusive range of days: `1 Jan` to `31 Mar 2026` joined by an en dash, both years when they differ."""
    first, last = window_ends(start, end)
    return f"{first} {RANGE_DASH} {last}"


def moment_label(moment: datetime) -> str:
    """A point in time: `Fri 13 Feb 2026, 09:00 UTC` (the zone is shown when the value carries one)."""
    zone = moment.tzname()
    return f"{day_label(moment.date(), with_year=True)}, {moment:%H:%M}" + (f" {zone}" if zone else "")


def number(value: float) -> str:
    """A bare number: thousands separators, at most one decimal, never scientific notation."""
    return plain(value)


def count_of(count: int, noun: str) -> str:
    """`1 task`, `3 tasks`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def due_relative(due_on: date, today: date) -> str:
    """How far a due date is from today: `overdue by 3 days`, `due today`, `due in 2 days`."""
    days = (due_on - today).days
    if days < 0:
        return f"overdue by {count_of(-days, 'day')}"
    if days == 0:
        return "due today"
    return f"due in {count_of(days, 'day')}"
