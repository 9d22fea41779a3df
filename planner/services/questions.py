"""Questions to a person that a running job waits on: a 2FA code a vendor site asks for mid-delegation.

The job asks (a row, open until it expires), the bot relays the question in the person's 1:1 chat, and the
person's reply, arriving at whichever replica, answers it. The waiting job reads the answer once: it is wiped
as it is read, so a code never stays in the database, and never logged.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from planner.domain.questions import ANSWERED, CANCELLED, OPEN, Question
from planner.store import Store
from planner.store import questions as question_store

POLL_SECONDS = 0.2


class Questions:
    """Open questions of one tenant."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self.tenant_id = tenant_id

    async def ask(self, user_id: str, text: str, *, answer_within: timedelta) -> Question:
        """Open a question to `user_id`, answerable for `answer_within` from now."""
        now = self._store.clock()
        text, expires_at = text[:1000], now + answer_within
        async with self._store.transaction() as conn:
            question_id = await question_store.insert_question(
                conn, self.tenant_id, user_id, text, asked_at=now, expires_at=expires_at
            )
        return Question(
            id=question_id, tenant_id=self.tenant_id, user_id=user_id, text=text, asked_at=now, expires_at=expires_at
        )

    async def open_for(self, user_id: str) -> Question | None:
        """The newest question still waiting for `user_id`'s answer."""
        async with self._store.read() as conn:
            return await question_store.open_for(conn, self.tenant_id, user_id, now=self._store.clock())

    async def answer(self, question_id: int, answer: str) -> bool:
        """Record the person's answer; False if the question was answered, cancelled or expired meanwhile."""
        async with self._store.transaction() as conn:
            return await question_store.answer(conn, self.tenant_id, question_id, answer[:200], at=self._store.clock())

    async def cancel(self, question_id: int) -> bool:
        async with self._store.transaction() as conn:
            return await question_store.cancel(conn, self.tenant_id, question_id)

    async def cancelled(self, question_id: int) -> bool:
        """Whether the person cancelled the question (rather than let it expire)."""
        async with self._store.read() as conn:
            status, _ = await question_store.state(conn, question_id)
        return status == CANCELLED

    async def wait(self, question: Question, *, poll_seconds: float = POLL_SECONDS) -> str | None:
        """The answer, read once (then wiped); None when the question expired or was cancelled first."""
        while True:
            async with self._store.transaction() as conn:
                status, answer = await question_store.state(conn, question.id)
                if status == ANSWERED:
                    await question_store.consume(conn, question.id)
                    return str(answer)
                if status != OPEN:
                    return None
                if self._store.clock() >= question.expires_at:
                    await question_store.expire(conn, question.id)
                    return None
            await asyncio.sleep(poll_seconds)
