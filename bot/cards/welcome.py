"""The card the bot introduces itself with: what it does and the commands worth knowing first."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from bot.cards.actions import VERB_MY_TASKS, execute
from bot.cards.elements import Element, adaptive_card, bullet_list, container, heading, subheading, text_block

WHAT_I_DO = (
    "I keep the plan: the goal, the tactical plans under it and each week's tasks, with progress and health.",
    "I follow up when something slips, with one-click answers: Done, Snooze or Blocked.",
    "I hand work to your AI agents, within the rules your admins set, and log every decision.",
)


def quarter_of(day: date) -> tuple[date, date]:
    """The first and last day of the calendar quarter holding `day`."""
    start = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    after = date(start.year + 1, 1, 1) if start.month == 10 else date(start.year, start.month + 3, 1)
    return start, after - timedelta(days=1)


def commands(today: date) -> tuple[tuple[str, str], ...]:
    """The commands worth knowing first, with examples dated in the quarter of `today` (they work as written)."""
    start, end = quarter_of(today)
    due = min(today + timedelta(days=14), end)
    return (
        (
            "Create a plan with a goal, a window and KPIs",
            f"new plan 500 SQLs by {end.day} {end:%B} from {start.isoformat()} to {end.isoformat()} kpi SQLs 500",
        ),
        ("See the plan, its progress and health", "plan"),
        ("See your tasks for the week", "my tasks"),
        ("Add a task to a plan", f"add task Draft launch email to P2 due {due.isoformat()} for @name"),
        ("See everything I understand", "help"),
    )


def _command(description: str, example: str) -> Element:
    return container(
        [text_block(description, weight="bolder"), text_block(example, monospace=True, spacing="none")],
        spacing="small",
    )


def welcome_card(*, name: str | None, is_channel: bool, today: date) -> dict[str, Any]:
    """Greeting, what the bot does in three bullets, five commands with examples dated in `today`'s quarter and a
    Show my tasks button."""
    greeting = f"Hi {name}, I'm your Chief of Staff" if name else "Hi, I'm your Chief of Staff"
    body: list[Element] = [heading(greeting), bullet_list(WHAT_I_DO), subheading("Try these")]
    if is_channel:
        body.append(text_block("In a channel, @mention me before each command.", subtle=True, spacing="none"))
    body.extend(_command(description, example) for description, example in commands(today))
    return adaptive_card(body, [execute("Show my tasks", VERB_MY_TASKS, {})])
