from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from planner.services.questions import Questions
from planner.store import Store
from planner.store.schema import questions
from tests.conftest import FakeClock


async def test_an_answer_reaches_the_waiting_job_once_and_is_wiped(store: Store) -> None:
    asked = Questions(store, "contoso")
    question = await asked.ask("aad-owner", "The vendor site asks for a code", answer_within=timedelta(minutes=5))
    assert (await asked.open_for("aad-owner")) == question
    waiting = asyncio.create_task(asked.wait(question, poll_seconds=0.01))
    assert await asked.answer(question.id, "123456")
    assert await asyncio.wait_for(waiting, 5) == "123456"
    assert not await asked.answer(question.id, "654321")  # answered already
    assert await asked.open_for("aad-owner") is None
    async with store.engine.connect() as conn:
        stored = (await conn.execute(select(questions.c.answer, questions.c.status))).one()
    assert tuple(stored) == (None, "consumed")


async def test_a_question_nobody_answers_in_time_expires(store: Store, clock: FakeClock) -> None:
    asked = Questions(store, "contoso")
    question = await asked.ask("aad-owner", "code?", answer_within=timedelta(minutes=2))
    clock.advance(minutes=3)
    assert await asked.open_for("aad-owner") is None
    assert not await asked.answer(question.id, "123456")
    assert await asyncio.wait_for(asked.wait(question, poll_seconds=0.01), 5) is None


async def test_a_cancelled_question_ends_the_wait_and_other_tenants_cannot_answer(store: Store) -> None:
    asked = Questions(store, "contoso")
    question = await asked.ask("aad-owner", "code?", answer_within=timedelta(minutes=2))
    assert not await Questions(store, "fabrikam").answer(question.id, "123456")
    assert await Questions(store, "fabrikam").open_for("aad-owner") is None
    assert await asked.cancel(question.id)
    assert await asyncio.wait_for(asked.wait(question, poll_seconds=0.01), 5) is None
