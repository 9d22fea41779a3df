"""A plain card: a heading and a few lines of text, for answers that need no buttons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.cards.elements import adaptive_card, heading, text_block


def message_card(title: str, lines: Sequence[str]) -> dict[str, Any]:
    """A heading followed by one wrapping TextBlock per non-empty line."""
    return adaptive_card([heading(title), *(text_block(line) for line in lines if line.strip())])
