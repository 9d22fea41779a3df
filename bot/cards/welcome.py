"""The card the bot introduces itself with: what it does and the commands worth knowing first."""

from __future__ import annotations

from typing import Any

from bot.cards.actions import VERB_MY_TASKS, execute
from bot.cards.elements import Element, adaptive_card, bullet_list, container, heading, subheading, text_block

WHAT_I_DO = (
    "I keep the plan: the goal, the tactical plans under it and each week's tasks, with progress and health.",
    "I follow up when something slips, with one-click answers: Done, Snooze or Blocked.",
    "I hand work to your AI agents, within the rules your admins set, and log every decision.",
)

COMMANDS: tuple[tuple[str, str], ...] = (
    (
        "Create a plan with a goal, a window and KPIs",
        "new plan 500 SQLs by 31 March from 2026-01-01 to 2026-03-31 kpi SQLs 500",
    ),
    ("See the plan, its progress and health", "plan"),
    ("See your tasks for the week", "my tasks"),
    ("Add a task to a plan", "add task Draft launch email to P2 due 2026-02-12 for @name"),
    ("See everything I understand", "help"),
)


def _command(description: str, example: str) -> Element:
    return container(
        [text_block(description, weight="bolder"), text_block(example, monospace=True, spacing="none")],
        spacing="small",
    )


def welcome_card(*, name: str | None, is_channel: bool) -> dict[str, Any]:
    """Greeting, what the bot does in three bullets, five commands with examples and a Show my tasks button."""
    greeting = f"Hi {name}, I'm your Chief of Staff" if name else "Hi, I'm your Chief of Staff"
    body: list[Element] = [heading(greeting), bullet_list(WHAT_I_DO), subheading("Try these")]
    if is_channel:
        body.append(text_block("In a channel, @mention me before each command.", subtle=True, spacing="none"))
    body.extend(_command(description, example) for description, example in COMMANDS)
    return adaptive_card(body, [execute("Show my tasks", VERB_MY_TASKS, {})])
