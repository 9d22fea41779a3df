"""A sentence that reads two ways: each reading as a button that runs exactly that operation with its arguments.

Nothing changes until a reading is picked; the card the button is on is then replaced by what that reading did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.cards.actions import execute
from bot.cards.elements import adaptive_card, heading, text_block


def readings_card(question: str, readings: Sequence[tuple[str, str, Mapping[str, Any]]]) -> dict[str, Any]:
    """A card asking `question`: which of `readings` (button title, operation, its arguments) was meant."""
    body = [heading("Which did you mean?"), text_block(question)]
    return adaptive_card(body, [execute(title, operation, dict(args)) for title, operation, args in readings])
