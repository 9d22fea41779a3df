"""The Adaptive Cards (schema 1.5) the bot sends, as pure functions returning JSON-ready dicts."""

from __future__ import annotations

from typing import Any

from bot.cards.actions import (
    VERB_CONFIRM_DRAFT,
    VERB_DISCARD_DRAFT,
    VERB_MY_TASKS,
    VERB_SHOW_PLAN,
    VERB_SNOOZE,
    VERB_TASK_STATUS,
    execute,
    show_card,
)
from bot.cards.approval import VERB_APPROVE, VERB_REJECT, approval_card
from bot.cards.draft import DraftState, UnknownDraftState, draft_card
from bot.cards.plan import plan_overview
from bot.cards.task import task_card
from bot.cards.text import message_card
from bot.cards.week import member_week
from bot.cards.welcome import welcome_card

ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


def attachment(card: dict[str, Any]) -> dict[str, Any]:
    """A Bot Framework attachment carrying `card`."""
    return {"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "content": card}


__all__ = [
    "ADAPTIVE_CARD_CONTENT_TYPE",
    "VERB_APPROVE",
    "VERB_CONFIRM_DRAFT",
    "VERB_DISCARD_DRAFT",
    "VERB_MY_TASKS",
    "VERB_REJECT",
    "VERB_SHOW_PLAN",
    "VERB_SNOOZE",
    "VERB_TASK_STATUS",
    "DraftState",
    "UnknownDraftState",
    "approval_card",
    "attachment",
    "draft_card",
    "execute",
    "member_week",
    "message_card",
    "plan_overview",
    "show_card",
    "task_card",
    "welcome_card",
]
