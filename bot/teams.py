"""The Teams bot: turns activities into planner operations and answers in Teams."""

from __future__ import annotations

import logging

from botbuilder.core import ActivityHandler, MessageFactory, TurnContext

from bot.settings import Settings
from planner.store import Store

logger = logging.getLogger(__name__)


class ChiefOfStaffBot(ActivityHandler):
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        text = TurnContext.remove_recipient_mention(turn_context.activity) or ""
        await turn_context.send_activity(MessageFactory.text(f"You said: {text.strip()}"))
