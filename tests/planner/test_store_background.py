"""Background work (delegations' runs) holds at most a few of the store's connections, so people's turns find one,
and lets a turn in progress go first."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

import planner.store
from planner.store import BACKGROUND_CONNECTIONS, Store


async def test_background_work_holds_few_connections_and_a_turn_reads_meanwhile(store: Store) -> None:
    slots = BACKGROUND_CONNECTIONS[store.engine.dialect.name]
    holding = 0
    most = 0
    release = asyncio.Event()
    all_in = asyncio.Event()

    async def background_read() -> None:
        nonlocal holding, most
        async with store.read() as conn:
            await conn.execute(text("SELECT 1"))
            holding += 1
            most = max(most, holding)
            if holding == slots:
                all_in.set()
            await release.wait()
            holding -= 1

    with store.background():
        work = [asyncio.create_task(background_read()) for _ in range(slots * 3)]
    await asyncio.wait_for(all_in.wait(), timeout=30)
    # Every background slot is taken and more background reads wait: a turn's read and write still go through.
    async with store.read() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    async with store.transaction(receipt=False) as conn:
        await conn.execute(text("SELECT 1"))
    assert holding == slots
    release.set()
    await asyncio.wait_for(asyncio.gather(*work), timeout=30)
    assert most == slots


async def test_background_work_that_nests_a_read_in_a_transaction_does_not_wait_for_itself(store: Store) -> None:
    async def nested() -> int:
        async with store.transaction(receipt=False) as conn:
            await conn.execute(text("SELECT 1"))
            async with store.read() as other:
                return int((await other.execute(text("SELECT 2"))).scalar_one())

    with store.background():
        work = [asyncio.create_task(nested()) for _ in range(BACKGROUND_CONNECTIONS["postgresql"] * 2)]
    assert await asyncio.wait_for(asyncio.gather(*work), timeout=30) == [2] * len(work)


async def test_background_work_waits_while_a_person_is_served_and_goes_on_once_the_turn_ends(store: Store) -> None:
    order: list[str] = []

    async def background_read() -> None:
        async with store.read() as conn:
            await conn.execute(text("SELECT 1"))
            order.append("background")

    with store.serving_a_person():
        with store.background():
            work = asyncio.create_task(background_read())
        for _ in range(20):  # the turn's own steps: the background read gets every chance to run meanwhile
            async with store.read() as conn:
                await conn.execute(text("SELECT 1"))
        order.append("turn")
    await asyncio.wait_for(work, timeout=30)
    assert order == ["turn", "background"]


async def test_a_stream_of_turns_never_stops_background_work(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner.store, "PEOPLE_FIRST_SECONDS", 0.01)
    done = asyncio.Event()

    async def background_write() -> None:
        async with store.transaction(receipt=False) as conn:
            await conn.execute(text("SELECT 1"))
        done.set()

    with store.serving_a_person():  # a turn that does not end before the background work goes on
        with store.background():
            work = asyncio.create_task(background_write())
        await asyncio.wait_for(done.wait(), timeout=30)
    await work
