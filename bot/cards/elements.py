"""Adaptive Card 1.5 building blocks as plain dicts: the card envelope and the few elements our cards use.

Every TextBlock wraps: a clipped line hides the end of a task title or a reason, which is usually the part that matters.
Every text shown (a TextBlock, a fact's title and value, a list's lines) is shown literally unless it is `Markdown`
the bot wrote (bot/cards/markdown.py): people's and agents' words never become links, bold or lists.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from bot.cards.markdown import Markdown, literal

CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.5"

Element = dict[str, Any]


def adaptive_card(body: Sequence[Element], actions: Sequence[Element] = ()) -> Element:
    """A top-level Adaptive Card 1.5; `actions` is left out when there are none."""
    card: Element = {"type": "AdaptiveCard", "$schema": CARD_SCHEMA, "version": CARD_VERSION, "body": list(body)}
    if actions:
        card["actions"] = list(actions)
    return card


def text_block(
    text: str,
    *,
    size: str | None = None,
    weight: str | None = None,
    color: str | None = None,
    subtle: bool = False,
    monospace: bool = False,
    spacing: str | None = None,
    separator: bool = False,
    style: str | None = None,
) -> Element:
    """A wrapping TextBlock of `text` shown literally (unless it is `Markdown`); only the options given are written,
    to keep cards small."""
    block: Element = {"type": "TextBlock", "text": literal(text), "wrap": True}
    optional = {"size": size, "weight": weight, "color": color, "spacing": spacing, "style": style}
    block.update({key: value for key, value in optional.items() if value is not None})
    if subtle:
        block["isSubtle"] = True
    if monospace:
        block["fontType"] = "monospace"
    if separator:
        block["separator"] = True
    return block


def heading(text: str) -> Element:
    """The title line of a card."""
    return text_block(text, size="large", weight="bolder", style="heading")


def subheading(text: str, *, separator: bool = False) -> Element:
    """A section title inside a card."""
    return text_block(text, size="medium", weight="bolder", spacing="medium", separator=separator)


def bullet_list(lines: Sequence[str], *, subtle: bool = False) -> Element:
    """A markdown bulleted list in one TextBlock (Teams reads `\\r` as the line break inside a list); each line is
    shown literally unless it is `Markdown`."""
    return text_block(Markdown("\r".join(f"- {literal(line)}" for line in lines)), subtle=subtle, spacing="small")


def fact_set(facts: Sequence[tuple[str, str]]) -> Element:
    """Name/value pairs shown as a two-column table, both shown literally (unless `Markdown`)."""
    return {"type": "FactSet", "facts": [{"title": literal(title), "value": literal(value)} for title, value in facts]}


def container(
    items: Sequence[Element], *, style: str | None = None, separator: bool = False, spacing: str | None = None
) -> Element:
    """A group of elements, optionally styled (`emphasis`, `good`, `warning`, `attention`, `accent`)."""
    block: Element = {"type": "Container", "items": list(items)}
    if style is not None:
        block["style"] = style
    if separator:
        block["separator"] = True
    if spacing is not None:
        block["spacing"] = spacing
    return block


def column(
    items: Sequence[Element],
    *,
    width: str,
    style: str | None = None,
    spacing: str | None = None,
    min_height: str | None = None,
    vertical_alignment: str | None = None,
) -> Element:
    """One column of a ColumnSet; `width` is `auto`, `stretch` or a relative weight such as `"62"`."""
    block: Element = {"type": "Column", "width": width, "items": list(items)}
    optional = {
        "style": style,
        "spacing": spacing,
        "minHeight": min_height,
        "verticalContentAlignment": vertical_alignment,
    }
    block.update({key: value for key, value in optional.items() if value is not None})
    return block


def column_set(columns: Sequence[Element], *, element_id: str | None = None, spacing: str | None = None) -> Element:
    """Columns side by side."""
    block: Element = {"type": "ColumnSet", "columns": list(columns)}
    if element_id is not None:
        block["id"] = element_id
    if spacing is not None:
        block["spacing"] = spacing
    return block


def action_set(actions: Sequence[Element], *, spacing: str | None = None) -> Element:
    """Buttons inside the body (ActionSet, Adaptive Cards 1.2+), e.g. one set per task row."""
    block: Element = {"type": "ActionSet", "actions": list(actions)}
    if spacing is not None:
        block["spacing"] = spacing
    return block


CARD_BUDGET_BYTES = 26_000
"""Teams refuses a message over about 28 KB; this leaves room for the rest of the activity around the card."""


def serialized_size(element: Element) -> int:
    """Bytes of `element` as JSON the way it goes over the wire (ASCII-escaped, default separators)."""
    return len(json.dumps(element).encode("utf-8"))


def largest_fitting(build: Callable[[int], Element], most: int) -> Element:
    """`build(n)` for the largest `n` up to `most` whose card fits CARD_BUDGET_BYTES (`build(0)` if none does)."""
    for count in range(most, 0, -1):
        card = build(count)
        if serialized_size(card) <= CARD_BUDGET_BYTES:
            return card
    return build(0)


def folded(
    element_id: str, items: Sequence[Element], *, more: str = "Show more", less: str = "Show less"
) -> list[Element]:
    """`items` hidden behind a "Show more" button (Action.ToggleVisibility) that unfolds them in place.

    Keeps a card within what a Teams screen comfortably shows; the button swaps for "Show less" once unfolded.
    """
    if not items:
        return []
    targets = [element_id, f"{element_id}-more", f"{element_id}-less"]
    toggle = {"type": "Action.ToggleVisibility", "targetElements": targets}
    hidden: Element = {"type": "Container", "id": element_id, "isVisible": False, "items": list(items)}
    show: Element = {
        "type": "ActionSet",
        "id": f"{element_id}-more",
        "actions": [{**toggle, "title": more}],
    }
    hide: Element = {
        "type": "ActionSet",
        "id": f"{element_id}-less",
        "isVisible": False,
        "actions": [{**toggle, "title": less}],
    }
    return [show, hidden, hide]
