"""Questions to a person that a running job waits on: a 2FA code a vendor site asks for mid-delegation.

The job asks (a row, open until it expires), the bot relays the question in the person's 1:1 chat, and the
person's reply, arriving at whichever replica, answers it. The waiting job reads the answer once: it is wiped
as it is read, so a code never stays in the database, and never logged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update

from planner.store import Store
from planner.store.schema import questions

OPEN, ANSWERED, CONSUMED, CANCELLED, EXPIRED = "open", "answered", "consumed", "cancelled", "expired"
POLL_SECONDS = 0.2


@dataclass(frozen=True, kw_only=True)
class Question:
    id: int
    tenant_id: str
    user_id: str
    text: str
    asked_at: datetime
    expires_at: datetime


class Questions:
    """Open questions of one tenant."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self.tenant_id = tenant_id

    async def ask(self, user_id: str, text: str, *, answer_within: timedelta) -> Question:
        """Open a question to `user_id`, answerable for `answer_within` from now."""
        now = self._store.clock()
        text, expires_at = text[:1000], now + answer_within
        values = dict(
            tenant_id=self.tenant_id, user_id=user_id, text=text, status=OPEN, asked_at=now, expires_at=expires_at
        )
        async with self._store.transaction() as conn:
            question_id = (
                await conn.execute(insert(questions).values(**values).returning(questions.c.id))
            ).scalar_one()
        return Question(
            id=question_id, tenant_id=self.tenant_id, user_id=user_id, text=text, asked_at=now, expires_at=expires_at
        )

    async def open_for(self, user_id: str) -> Question | None:
        """The newest question still waiting for `user_id`'s answer."""
        query = (
            select(questions)
            .where(
                questions.c.tenant_id == self.tenant_id,
                questions.c.user_id == user_id,
                questions.c.status == OPEN,
                questions.c.expires_at > self._store.clock(),
            )
            .order_by(questions.c.id.desc())
            .limit(1)
        )
        async with self._store.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return Question(
            id=row.id,
            tenant_id=row.tenant_id,
            user_id=row.user_id,
            text=row.text,
            asked_at=row.asked_at,
            expires_at=row.expires_at,
        )

    async def _move(self, question_id: int, from_status: str, **values: object) -> bool:
        async with self._store.transaction() as conn:
            result = await conn.execute(
                update(questions)
                .where(
                    questions.c.id == question_id,
                    questions.c.tenant_id == self.tenant_id,
                    questions.c.status == from_status,
                )
                .values(**values)
            )
        return bool(result.rowcount)

    async def answer(self, question_id: int, answer: str) -> bool:
        """Record the person's answer; False if the question was answered, cancelled or expired meanwhile."""
        async with self._store.transaction() as conn:
            result = await conn.execute(
                update(questions)
                .where(
                    questions.c.id == question_id,
                    questions.c.tenant_id == self.tenant_id,
                    questions.c.status == OPEN,
                    questions.c.expires_at > self._store.clock(),
                )
                .values(status=ANSWERED, answer=answer[:200], answered_at=self._store.clock())
            )
        return bool(result.rowcount)

    async def cancel(self, question_id: int) -> bool:
        return await self._move(question_id, OPEN, status=CANCELLED)

    async def wait(self, question: Question, *, poll_seconds: float = POLL_SECONDS) -> str | None:
        """The answer, read once (then wiped); None when the question expired or was cancelled first."""
        while True:
            async with self._store.transaction() as conn:
                row = (
                    await conn.execute(
                        select(questions.c.status, questions.c.answer).where(questions.c.id == question.id)
                    )
                ).one()
                if row.status == ANSWERED:
                    await conn.execute(
                        update(questions).where(questions.c.id == question.id).values(status=CONSUMED, answer=None)
                    )
                    return str(row.answer)
                if row.status != OPEN:
                    return None
                if self._store.clock() >= question.expires_at:
                    await conn.execute(
                        update(questions)
                        .where(questions.c.id == question.id, questions.c.status == OPEN)
                        .values(status=EXPIRED)
                    )
                    return None
            await asyncio.sleep(poll_seconds)
