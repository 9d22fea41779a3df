"""The card that asks a person what an agent needs half-way through a delegation (a sign-in code, a form's fields).

The question is the agent's (or its adapter's) words: shown literally, line by line, since a TextBlock would join
its lines into one paragraph and a form's fields would run together. The person answers in the chat.
"""

from __future__ import annotations

from typing import Any

from bot.cards.elements import Element, adaptive_card, heading, text_block
from bot.controls import without_controls

MOST_LINES = 25
"""Lines of a question shown apart at most (the rest joined into the last)."""
QUESTION_CHARS = 2000
"""How much of a question the card shows: a screen's worth (adapters cut what an agent says well before)."""
_ITEM = "- "


def question_card(agent: str, question: str, minutes: int) -> dict[str, Any]:
    """Who asks, what (a line a block; a `- ` line, a form's field, as a bullet), and how long the person has."""
    cut = question if len(question) <= QUESTION_CHARS else question[: QUESTION_CHARS - 1] + "…"
    lines = [line.strip() for line in without_controls(cut).splitlines() if line.strip()] or [""]
    if len(lines) > MOST_LINES:
        lines[MOST_LINES - 1 :] = [" ".join(lines[MOST_LINES - 1 :])]
    body: list[Element] = [heading(f"A question from {agent}")]
    for index, line in enumerate(lines):
        item = line.startswith(_ITEM)
        shown = "• " + line.removeprefix(_ITEM) if item else line
        body.append(text_block(shown, spacing="none" if item else "small" if index else None))
    body.append(
        text_block(
            f'Reply here within {minutes} minutes, or say "cancel". I pass your answer on once and don\'t keep it.',
            subtle=True,
            spacing="medium",
        )
    )
    return adaptive_card(body)
