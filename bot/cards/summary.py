"""The summary card: what one delivery pass had for one person, in one card instead of a message each.

Each message is a line (its text as the bot wrote it); its own card, if it had one, unfolds under an Open button.
The first few lines show; the rest fold behind "Show more", so the card stays a screen tall however many there are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.cards.actions import show_card
from bot.cards.elements import Element, action_set, adaptive_card, container, heading, text_block
from bot.cards.markdown import Markdown

SHOWN = 4
"""Lines shown before "Show more"."""
MORE_ID = "summary-more"


def summary_card(messages: Sequence[tuple[str, Mapping[str, Any] | None]]) -> Element:
    """One card for several messages: (text, card or None) each, in the order they fell due."""
    rows = [_row(text, card, first=index == 0) for index, (text, card) in enumerate(messages)]
    body: list[Element] = [heading(f"{len(messages)} updates for you")]
    body += rows[:SHOWN]
    actions: list[Element] = []
    if len(rows) > SHOWN:
        hidden = rows[SHOWN:]
        body.append({**container(hidden), "id": MORE_ID, "isVisible": False})
        actions.append(
            {"type": "Action.ToggleVisibility", "title": f"Show {len(hidden)} more", "targetElements": [MORE_ID]}
        )
    return adaptive_card(body, actions)


def _row(text: str, card: Mapping[str, Any] | None, *, first: bool) -> Element:
    # The text was written by the bot's composers, with people's words already escaped: its Markdown is meant.
    items: list[Element] = [text_block(Markdown(text))]
    if card is not None:
        items.append(action_set([show_card("Open", list(card.get("body", [])), list(card.get("actions", [])))]))
    return container(items, separator=not first, spacing="medium")
