"""The human channel of a delegation: an agent's question (a 2FA code) asked in a person's 1:1 chat, and its progress
shown to whoever follows it (`bot/progress.py`).

The question goes out through the outbox like any proactive message (so it reaches someone who never wrote, and
keeps to Teams' limits), a delivery pass is run at once rather than at the next tick, and the answer arrives as
the person's reply, at whichever replica Teams posts it to (see `ChiefOfStaffBot._answer_question`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.text import messages
from planner.domain.messages import Message, MessageKind
from planner.ports import AgentTimeout, HumanChannel, QuestionCancelled
from planner.services.tenants import Tenant


class TeamsHumanChannel(HumanChannel):
    """Asks one person, on behalf of one agent, and waits for their answer."""

    def __init__(
        self,
        services: Tenant,
        user_id: str,
        *,
        agent: str,
        deliver_now: Callable[[], Awaitable[object]],
        poll_seconds: float = 0.2,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        """`on_progress`: who shows the agent's steps as they arrive (a live card); None: they are only kept."""
        self._services = services
        self.tenant_id = services.tenant_id
        self.user_id = user_id
        self.agent = agent
        self._deliver_now = deliver_now
        self._poll_seconds = poll_seconds
        self._on_progress = on_progress

    async def ask(self, question: str, *, timeout_seconds: float) -> str:
        """Raises AgentTimeout when nobody answers in time, QuestionCancelled when the person says `cancel`."""
        asked = await self._services.questions.ask(
            self.user_id, question, answer_within=timedelta(seconds=timeout_seconds)
        )
        minutes = max(round(timeout_seconds / 60), 1)
        message = Message(
            recipient=self.user_id,
            kind=MessageKind.QUESTION,
            payload={"question": asked.id, "text": messages.question_for(self.agent, question, minutes)},
        )
        await self._services.outbox.fire(self.tenant_id, f"{MessageKind.QUESTION}:{asked.id}", [message])
        await self._deliver_now()
        answer = await self._services.questions.wait(asked, poll_seconds=self._poll_seconds)
        if answer is None:
            if await self._services.questions.cancelled(asked.id):
                raise QuestionCancelled(self.agent)
            raise AgentTimeout(self.agent, timeout_seconds)
        return answer

    async def progressed(self, step: str) -> None:
        if self._on_progress is not None:
            self._on_progress(step)
