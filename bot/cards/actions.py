"""Card buttons: Action.Execute (Universal Actions) carrying a verb, and Action.ShowCard for a follow-up form.

The verb is repeated inside `data` so the same payload reads the same if a client falls back to Action.Submit,
which sends only `data`.
"""

from __future__ import annotations

from typing import Any

from bot.cards.elements import Element

VERB_TASK_STATUS = "set_task_status"
VERB_SNOOZE = "snooze_task"
VERB_CONFIRM_DRAFT = "confirm_draft"
VERB_DISCARD_DRAFT = "discard_draft"
VERB_SHOW_PLAN = "show_plan"
VERB_MY_TASKS = "my_tasks"

ACTION_STYLES = ("default", "positive", "destructive")


class UnknownActionStyle(ValueError):
    """An action style the Adaptive Card schema does not define."""

    def __init__(self, style: str) -> None:
        super().__init__(f"unknown action style {style!r}: use one of {', '.join(ACTION_STYLES)} or None")
        self.style = style


def execute(title: str, verb: str, data: dict[str, object], *, style: str | None = None) -> dict[str, Any]:
    """An Action.Execute button sending `verb` and `data` (with `"verb": verb` added) to the bot."""
    action: Element = {"type": "Action.Execute", "title": title, "verb": verb, "data": {**data, "verb": verb}}
    if style is not None:
        if style not in ACTION_STYLES:
            raise UnknownActionStyle(style)
        action["style"] = style
    return action


def show_card(title: str, card_body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    """An Action.ShowCard button that unfolds a small card (e.g. a form) under the card's buttons."""
    card: Element = {"type": "AdaptiveCard", "body": list(card_body)}
    if actions:
        card["actions"] = list(actions)
    return {"type": "Action.ShowCard", "title": title, "card": card}
