"""The store's SQLite driver: statements on the event loop, and a wait for another connection's lock off it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from planner.sqlite import InlineConnection, InlineSQLite
from planner.store import create_engine

notes = Table("notes", MetaData(), Column("id", Integer, primary_key=True), Column("text", String(100)))


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "driver.db"


@pytest.fixture
async def engine(database: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{database}", connect_args={"timeout": 10})
    async with engine.begin() as conn:
        await conn.run_sync(notes.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def other_process(database: Path) -> Iterator[sqlite3.Connection]:
    """Another writer on the same file, as a `cos` command run beside the bot would be."""
    connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    yield connection
    connection.close()


async def test_the_engine_runs_statements_through_the_inline_driver(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection, InlineConnection)
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"


async def test_a_write_waits_for_another_writers_lock_without_stopping_the_event_loop(
    engine: AsyncEngine, other_process: sqlite3.Connection
) -> None:
    other_process.execute("BEGIN IMMEDIATE")
    other_process.execute("INSERT INTO notes (text) VALUES ('theirs')")

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(notes).values(text="ours"))

    writing = asyncio.create_task(write())
    ticks = 0
    for _ in range(20):  # the loop keeps turning while the write waits for the lock
        await asyncio.sleep(0.005)
        ticks += 1
    assert (ticks, writing.done()) == (20, False)
    other_process.execute("COMMIT")
    await asyncio.wait_for(writing, timeout=10)
    async with engine.connect() as conn:
        assert (await conn.execute(select(notes.c.text).order_by(notes.c.id))).scalars().all() == ["theirs", "ours"]


async def test_a_lock_held_past_the_timeout_fails_the_write_as_locked(
    database: Path, engine: AsyncEngine, other_process: sqlite3.Connection
) -> None:
    impatient = create_engine(f"sqlite+aiosqlite:///{database}", connect_args={"timeout": 0.2})
    other_process.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            async with impatient.begin() as conn:
                await conn.execute(insert(notes).values(text="ours"))
    finally:
        other_process.execute("ROLLBACK")
        await impatient.dispose()
    async with engine.begin() as conn:  # the connection that gave up is fine to use again
        await conn.execute(insert(notes).values(text="later"))
        assert (await conn.execute(select(notes.c.text))).scalars().all() == ["later"]


async def test_a_write_cancelled_while_it_waits_for_a_lock_leaves_nothing_and_its_connection_free(
    engine: AsyncEngine, other_process: sqlite3.Connection
) -> None:
    other_process.execute("BEGIN IMMEDIATE")

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(notes).values(text="cancelled"))

    writing = asyncio.create_task(write())
    await asyncio.sleep(0.05)
    writing.cancel()
    asyncio.get_running_loop().call_later(0.05, other_process.execute, "COMMIT")
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(writing, timeout=10)
    for text in ("after", "again"):  # each write takes a connection of the pool, the one given back among them
        async with engine.begin() as conn:
            await conn.execute(insert(notes).values(text=text))
    async with engine.connect() as conn:
        assert (await conn.execute(select(notes.c.text).order_by(notes.c.id))).scalars().all() == ["after", "again"]


async def test_an_invalidated_connection_is_closed_at_once_and_lets_go_of_its_lock(
    engine: AsyncEngine, other_process: sqlite3.Connection
) -> None:
    """SQLAlchemy invalidates a connection whose statement was cancelled; a lock it kept would stop every writer."""
    async with engine.connect() as conn:
        await conn.execute(insert(notes).values(text="never committed"))  # its transaction holds the write lock
        await conn.invalidate()
    other_process.execute("PRAGMA busy_timeout = 0")  # no waiting for it: the lock must be free now
    other_process.execute("INSERT INTO notes (text) VALUES ('theirs')")
    assert [text for (text,) in other_process.execute("SELECT text FROM notes")] == ["theirs"]


async def test_a_result_keeps_its_rows_when_the_connection_runs_another_statement(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(notes), [{"text": "one"}, {"text": "two"}])
        before = await conn.execute(select(notes.c.text).order_by(notes.c.id))
        await conn.execute(insert(notes).values(text="three"))
        assert before.scalars().all() == ["one", "two"]


COUNT_TO = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT count(*) FROM c"


class Ticker:
    """Counts the event loop's turns while it runs."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0)
            self.ticks += 1

    def __enter__(self) -> Ticker:
        self._task = asyncio.create_task(self._tick())
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def test_a_statement_seen_slow_runs_off_the_event_loop_until_it_is_quick_again(database: Path) -> None:
    driver = InlineSQLite()
    engine = create_engine(f"sqlite+aiosqlite:///{database}", module=driver)
    try:
        async with engine.connect() as conn:
            await asyncio.sleep(0)  # let the ticker start before the first statement
            with Ticker() as first:
                await asyncio.sleep(0)
                before = first.ticks
                assert (await conn.exec_driver_sql(COUNT_TO, (400_000,))).scalar() == 400_000
                assert first.ticks == before  # the first run held the loop: it was not known to be slow
            assert COUNT_TO in driver.pace.slow
            with Ticker() as second:
                await asyncio.sleep(0)
                before = second.ticks
                assert (await conn.exec_driver_sql(COUNT_TO, (400_000,))).scalar() == 400_000
                assert second.ticks > before + 3  # on a worker thread, while the loop went on
            assert (await conn.exec_driver_sql(COUNT_TO, (10,))).scalar() == 10  # quick now, on the thread
            assert COUNT_TO not in driver.pace.slow  # so back on the loop from here
    finally:
        await engine.dispose()


async def test_a_long_run_of_quick_statements_gives_the_event_loop_turns(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with Ticker() as ticker:
            await asyncio.sleep(0)
            before = ticker.ticks
            began = asyncio.get_running_loop().time()
            while asyncio.get_running_loop().time() - began < 0.3:  # statements only, nothing that waits
                await conn.exec_driver_sql("SELECT 1")
            assert ticker.ticks - before >= 5  # a turn at least every 20 ms of statements


async def test_sql_errors_are_sqlalchemys_as_with_any_driver(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with pytest.raises(OperationalError, match="no such table"):
            await conn.exec_driver_sql("SELECT * FROM missing")
