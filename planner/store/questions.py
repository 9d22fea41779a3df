"""The questions table: the one module that writes it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update

from planner.domain.questions import ANSWERED, CANCELLED, CONSUMED, EXPIRED, OPEN, Question
from planner.store import Connection
from planner.store.schema import questions


async def insert_question(
    conn: Connection, tenant_id: str, user_id: str, text: str, *, asked_at: datetime, expires_at: datetime
) -> int:
    """Store an open question; its id."""
    values = dict(
        tenant_id=tenant_id, user_id=user_id, text=text, status=OPEN, asked_at=asked_at, expires_at=expires_at
    )
    return int((await conn.execute(insert(questions).values(**values).returning(questions.c.id))).scalar_one())


async def open_for(conn: Connection, tenant_id: str, user_id: str, *, now: datetime) -> Question | None:
    """The newest question to `user_id` still open and not expired at `now`."""
    query = (
        select(questions)
        .where(
            questions.c.tenant_id == tenant_id,
            questions.c.user_id == user_id,
            questions.c.status == OPEN,
            questions.c.expires_at > now,
        )
        .order_by(questions.c.id.desc())
        .limit(1)
    )
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


async def cancel(conn: Connection, tenant_id: str, question_id: int) -> bool:
    """Cancel an open question; False when it is not open."""
    result = await conn.execute(
        update(questions)
        .where(questions.c.id == question_id, questions.c.tenant_id == tenant_id, questions.c.status == OPEN)
        .values(status=CANCELLED)
    )
    return bool(result.rowcount)


async def answer(conn: Connection, tenant_id: str, question_id: int, answer: str, *, at: datetime) -> bool:
    """Record the answer of an open question not expired by `at`; False when it is not."""
    result = await conn.execute(
        update(questions)
        .where(
            questions.c.id == question_id,
            questions.c.tenant_id == tenant_id,
            questions.c.status == OPEN,
            questions.c.expires_at > at,
        )
        .values(status=ANSWERED, answer=answer, answered_at=at)
    )
    return bool(result.rowcount)


async def state(conn: Connection, question_id: int) -> tuple[str, str | None]:
    """A question's status and answer."""
    row = (
        await conn.execute(select(questions.c.status, questions.c.answer).where(questions.c.id == question_id))
    ).one()
    return row.status, row.answer


async def consume(conn: Connection, question_id: int) -> None:
    """Mark the answer read, and wipe it."""
    await conn.execute(update(questions).where(questions.c.id == question_id).values(status=CONSUMED, answer=None))


async def expire(conn: Connection, question_id: int) -> None:
    """Expire the question if it is still open."""
    await conn.execute(
        update(questions).where(questions.c.id == question_id, questions.c.status == OPEN).values(status=EXPIRED)
    )
