"""An estimate of how tall Teams draws a card, from its JSON: rows of text times a line height by element type.

Teams' card is about 446 px wide (as its emulator draws it; about 100 characters of body text a line is the
budget's assumption). Hidden elements
(`isVisible: false`, folded behind "Show more") take no room until unfolded. The estimate errs high: it is a
budget check, not a renderer.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

CARD_WIDTH_PX = 446
CHARS_PER_LINE = 100
PADDING_PX = 32
LINE_PX = {"small": 16, "default": 20, "medium": 24, "large": 30, "extraLarge": 36}
CHARS_BY_SIZE = {"small": 115, "default": CHARS_PER_LINE, "medium": 80, "large": 60, "extraLarge": 48}
SPACING_PX = {"none": 0, "small": 4, "default": 8, "medium": 16, "large": 24, "extraLarge": 32, "padding": 16}
BUTTON_ROW_PX = 40
BUTTONS_A_ROW = 4


def text_lines(text: str, chars: float) -> int:
    return sum(max(1, math.ceil(len(line) / max(chars, 1))) for line in str(text).split("\n"))


def _image_height(element: dict[str, Any], width_px: float) -> float:
    url = str(element.get("url", ""))
    if url.startswith("data:image/png;base64,"):
        png = base64.b64decode(url.split(",", 1)[1][:64] + "==")
        width, height = struct.unpack(">II", png[16:24])
        return width_px * height / width
    return width_px * 0.5


def height(element: dict[str, Any], width: float = 1.0) -> float:
    """Pixels `element` takes at `width` (a share of the card's width), its spacing and separator included."""
    if element.get("isVisible") is False:
        return 0
    kind = element.get("type")
    chars = CHARS_PER_LINE * width
    own: float
    if kind == "TextBlock":
        size = element.get("size", "default")
        own = text_lines(element.get("text", ""), CHARS_BY_SIZE.get(size, CHARS_PER_LINE) * width) * LINE_PX.get(
            size, 20
        )
    elif kind == "RichTextBlock":
        text = "".join(str(inline.get("text", "")) for inline in element.get("inlines", []))
        own = text_lines(text, chars) * LINE_PX["default"]
    elif kind == "FactSet":
        own = sum(
            max(text_lines(fact["title"], chars * 0.3), text_lines(fact["value"], chars * 0.65)) * LINE_PX["default"]
            + 4
            for fact in element.get("facts", [])
        )
    elif kind == "Image":
        own = _image_height(element, CARD_WIDTH_PX * width) if element.get("size") in (None, "stretch", "auto") else 80
    elif kind == "ActionSet":
        own = BUTTON_ROW_PX * math.ceil(len(element.get("actions", [])) / BUTTONS_A_ROW)
    elif kind == "Container":
        own = stack(element.get("items", []), width) + (2 * SPACING_PX["padding"] if element.get("style") else 0)
        own = max(own, _px(element.get("minHeight")))
    elif kind == "ColumnSet":
        columns = element.get("columns", [])
        share = width / max(len(columns), 1)
        own = max((height(column, share) for column in columns), default=0)
    elif kind == "Column":
        own = max(stack(element.get("items", []), width), _px(element.get("minHeight")))
    else:
        own = LINE_PX["default"]
    gap = SPACING_PX.get(element.get("spacing", "default"), 8)
    return own + gap + (gap + 1 if element.get("separator") else 0)


def _px(value: object) -> float:
    return float(str(value).removesuffix("px")) if value else 0.0


def stack(items: list[dict[str, Any]], width: float = 1.0) -> float:
    return sum(height(item, width) for item in items)


def card_height(card: dict[str, Any]) -> float:
    """The card's height in pixels, folded content not counted, its buttons included."""
    actions = card.get("actions", [])
    buttons = BUTTON_ROW_PX * math.ceil(len(actions) / BUTTONS_A_ROW) + SPACING_PX["default"] if actions else 0
    return 2 * PADDING_PX + stack(card.get("body", [])) + buttons
