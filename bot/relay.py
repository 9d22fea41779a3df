"""The human channel of a delegation: an agent's question (a 2FA code) asked in a person's 1:1 chat, the sign-in card
of an agent that acts as the person (an MCP server behind OAuth), and the delegation's progress shown to whoever
follows it (`bot/progress.py`).

The question goes out through the outbox like any proactive message (so it reaches someone who never wrote, and
keeps to Teams' limits), a delivery pass is run at once rather than at the next tick, and the answer arrives as
the person's reply, at whichever replica Teams posts it to (see `ChiefOfStaffBot._answer_question`). A sign-in is
answered by the vendor's authorization server sending the person back to the bot's callback
(bot/http/oauth_callback.py), at whichever replica; the request's `state` binds it to this person and delegation.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.cards.sign_in import EXPIRED, REFUSED, SIGNED_IN
from bot.text import messages
from planner.domain.messages import Message, MessageKind
from planner.ports import AgentTimeout, HumanChannel, QuestionCancelled, SignInChannel
from planner.services.oauth import SignIns
from planner.services.tenants import Tenant

logger = logging.getLogger(__name__)


class TeamsHumanChannel(HumanChannel, SignInChannel):
    """Asks one person, on behalf of one agent, and waits for their answer (or their sign-in)."""

    def __init__(
        self,
        services: Tenant,
        user_id: str,
        *,
        agent: str,
        deliver_now: Callable[[], Awaitable[object]],
        sign_ins: SignIns | None = None,
        delegation_id: int | None = None,
        poll_seconds: float = 0.2,
        on_progress: Callable[[str], None] | None = None,
        on_sign_in: Callable[[], None] | None = None,
    ) -> None:
        """`sign_ins`: where sign-ins wait for their callback (None: an agent that acts as the person cannot ask them
        to sign in); `delegation_id`: the delegation they sign in for; `on_progress`: who shows the agent's steps as
        they arrive (a live card); None: they are only kept; `on_sign_in`: told once a sign-in card went out, before
        the wait for the person (an admin's chat turn then answers at once rather than hold Teams' turn)."""
        self._services = services
        self._sign_ins = sign_ins
        self.delegation_id = delegation_id
        self.tenant_id = services.tenant_id
        self.user_id = user_id
        self.agent = agent
        self._deliver_now = deliver_now
        self._poll_seconds = poll_seconds
        self._on_progress = on_progress
        self._on_sign_in = on_sign_in

    async def ask(self, question: str, *, timeout_seconds: float) -> str:
        """Raises AgentTimeout when nobody answers in time, QuestionCancelled when the person says `cancel`."""
        asked = await self._services.questions.ask(
            self.user_id, question, answer_within=timedelta(seconds=timeout_seconds)
        )
        minutes = max(round(timeout_seconds / 60), 1)
        message = Message(
            recipient=self.user_id,
            kind=MessageKind.QUESTION,
            # The text for an older sender (and the notification); the rest for the question's card.
            payload={
                "question": asked.id,
                "text": messages.question_for(self.agent, question, minutes),
                "agent": self.agent,
                "asked": question,
                "minutes": minutes,
            },
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

    async def sign_in(self, agent: str, authorization_url: str, *, timeout_seconds: float) -> Mapping[str, str]:
        """Send the sign-in card and wait for the callback; raises AgentTimeout when the person does not finish in
        time (or sign-ins cannot be received here)."""
        state = dict(parse_qsl(urlsplit(authorization_url).query)).get("state", "")
        if self._sign_ins is None or not state:
            raise AgentTimeout(agent, 0)
        waiting = await self._sign_ins.open(
            self.user_id,
            agent,
            authorization_url,
            state,
            within=timedelta(seconds=timeout_seconds),
            delegation_id=self.delegation_id,
        )
        minutes = max(round(timeout_seconds / 60), 1)
        message = Message(
            recipient=self.user_id,
            kind=MessageKind.SIGN_IN,
            payload={"agent": agent, "sign_in": waiting.id, "minutes": minutes},
        )
        await self._services.outbox.fire(self.tenant_id, f"{MessageKind.SIGN_IN}:{waiting.id}", [message])
        await self._deliver_now()
        if self._on_sign_in is not None:
            self._on_sign_in()
        ended = await self._sign_ins.wait(waiting, poll_seconds=self._poll_seconds)
        answer = ended.answer
        outcome = _outcome(answer)
        if ended.card is not None or outcome == SIGNED_IN:
            await self._sign_in_ended(waiting.id, agent, outcome, ended.card)
        if answer is None:
            raise AgentTimeout(agent, timeout_seconds)
        return answer

    async def _sign_in_ended(self, sign_in_id: int, agent: str, outcome: str, card: dict[str, Any] | None) -> None:
        """Update the sign-in card in place to say how it ended (without its button), or say it in a message when
        the card lies nowhere known; sent at once. Never raises: the sign-in goes on as it ended, and a message
        queued but not sent yet goes with the next delivery."""
        payload: dict[str, Any] = {"agent": agent, "outcome": outcome, "sign_in": sign_in_id}
        if card is not None:
            payload["card"] = card
        message = Message(recipient=self.user_id, kind=MessageKind.SIGN_IN_ENDED, payload=payload)
        try:
            await self._services.outbox.fire(self.tenant_id, f"{MessageKind.SIGN_IN_ENDED}:{sign_in_id}", [message])
            await self._deliver_now()
        except Exception:
            logger.exception("how the sign-in %s ended could not be shown to the person", sign_in_id)


def _outcome(answer: Mapping[str, str] | None) -> str:
    """How a sign-in ended, from the callback's parameters (None: it expired first)."""
    if answer is None:
        return EXPIRED
    return SIGNED_IN if answer.get("code") and "error" not in answer else REFUSED
