"""Prepared statements: on SQLite's own driver they skip Core's execution path, and nothing else may differ."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.types import TypeDecorator

from planner.prepared import Prepared, inline_driver
from planner.schema import UTCDateTime
from planner.store import Store
from tests.conftest import Database

metadata = MetaData()
cards = Table(
    "prepared_cards",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", String(100), nullable=False, unique=True),
    Column("due", Date, nullable=True),
    Column("at", UTCDateTime, nullable=True),
    Column("body", JSON, nullable=True),
    Column("done", Boolean, nullable=False),
    Column("score", Float, nullable=True),
    Column("blob", LargeBinary, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
)
odd = Table("prepared_odd", metadata, Column("id", Integer, primary_key=True), Column("tags", JSON, default=list))

_ADD = Prepared(insert(cards))
_ALL = Prepared(select(cards).order_by(cards.c.id))
_CLOSE = Prepared(
    update(cards).where(cards.c.title == bindparam("which")).values(done=True, score=bindparam("mark")).returning(cards)
)

AT = datetime(2026, 6, 4, 9, 30, 15, 123456, tzinfo=UTC)
ROW = dict(
    title="Launch email",
    due=date(2026, 6, 20),
    at=AT,
    body={"audience": "CFOs", "steps": [1, 2], "nested": {"ok": True}},
    done=False,
    score=2.5,
    blob=b"\x00\x01png",
)


@pytest.fixture
async def tables(store: Store) -> Store:
    async with store.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return store


async def core_rows(store: Store) -> list[tuple[Any, ...]]:
    async with store.engine.connect() as conn:
        return [tuple(row) for row in (await conn.execute(select(cards).order_by(cards.c.id))).all()]


async def test_what_a_prepared_statement_writes_and_reads_is_what_core_writes_and_reads(tables: Store) -> None:
    store = tables
    async with store.transaction() as conn:
        await _ADD.many(conn, [ROW])
        await conn.execute(insert(cards), {**ROW, "title": "Written by Core"})

    async with store.transaction() as conn:
        prepared = await _ALL.rows(conn, {})
    core = await core_rows(store)

    assert prepared == core
    first, second = prepared
    assert first[1:] == ("Launch email", ROW["due"], AT, ROW["body"], False, 2.5, b"\x00\x01png", 0)
    assert second[1:] == ("Written by Core", ROW["due"], AT, ROW["body"], False, 2.5, b"\x00\x01png", 0)
    assert first[3].tzinfo is not None


async def test_none_is_stored_as_core_stores_it(tables: Store) -> None:
    """JSON keeps None as `null`, not SQL NULL: a query for NULL finds the rows of both or of neither."""
    store = tables
    empty = {**ROW, "body": None, "at": None, "score": None}
    async with store.transaction() as conn:
        await _ADD.many(conn, [empty])
        await conn.execute(insert(cards), {**empty, "title": "Written by Core"})
    async with store.engine.connect() as conn:
        null_bodies = select(cards.c.title).where(cards.c.body.is_(None)).order_by(cards.c.id)
        null_times = select(cards.c.title).where(cards.c.at.is_(None)).order_by(cards.c.id)
        assert (await conn.execute(null_bodies)).scalars().all() == []
        assert (await conn.execute(null_times)).scalars().all() == ["Launch email", "Written by Core"]
    assert [row[4] for row in await core_rows(store)] == [None, None]


async def test_a_prepared_update_returns_the_changed_rows_and_counts_them(tables: Store) -> None:
    store = tables
    async with store.transaction() as conn:
        await _ADD.many(conn, [ROW, {**ROW, "title": "Segment", "body": None, "at": None}])
    async with store.transaction() as conn:
        returned = await _CLOSE.rows(conn, {"which": "Segment", "mark": 9.0})
        missing = await _CLOSE.first(conn, {"which": "No such card", "mark": 1.0})
        counted = await Prepared(update(cards).values(attempts=cards.c.attempts + 1)).count(conn, {})

    assert [(row[1], row[3], row[4], row[5], row[6]) for row in returned] == [("Segment", None, None, True, 9.0)]
    assert missing is None
    assert counted == 2
    assert [row[8] for row in await core_rows(store)] == [1, 1]


async def test_a_missing_parameter_is_named_and_nothing_is_written(tables: Store) -> None:
    store = tables

    async def close_without_a_mark() -> None:
        async with store.transaction() as conn:
            await _ADD.many(conn, [ROW])
            await _CLOSE.rows(conn, {"which": "Launch email"})

    with pytest.raises(StatementError, match="A value is required for bind parameter 'mark'"):
        await close_without_a_mark()
    assert await core_rows(store) == []


async def test_a_broken_constraint_raises_cores_error_and_rolls_back_core_and_prepared_writes_alike(
    tables: Store,
) -> None:
    store = tables

    async def add_twice() -> None:
        async with store.transaction() as conn:
            await conn.execute(insert(cards), {**ROW, "title": "By Core"})
            await _ADD.many(conn, [{**ROW, "title": "Prepared"}])
            await _ADD.many(conn, [ROW, ROW])

    with pytest.raises(IntegrityError, match=r"prepared_cards\.title|prepared_cards_title"):
        await add_twice()
    assert await core_rows(store) == []

    async with store.transaction() as conn:  # the connection is fine afterwards
        await _ADD.many(conn, [{**ROW, "title": "Prepared"}])
        await conn.execute(insert(cards), {**ROW, "title": "By Core"})
    assert [row[1] for row in await core_rows(store)] == ["Prepared", "By Core"]


async def test_a_cancelled_transaction_keeps_nothing_and_the_next_one_commits(tables: Store) -> None:
    store = tables
    written = asyncio.Event()

    async def interrupted() -> None:
        async with store.transaction() as conn:
            await _ADD.many(conn, [ROW])
            written.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(interrupted())
    async with asyncio.timeout(10):
        await written.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await core_rows(store) == []
    async with store.transaction() as conn:
        await _ADD.many(conn, [ROW])
    assert len(await core_rows(store)) == 1


async def test_statement_listeners_see_prepared_statements_too(tables: Store) -> None:
    store = tables
    seen: list[str] = []

    def listen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", listen)
    try:
        async with store.transaction() as conn:
            assert inline_driver(conn) is None
            await _ADD.many(conn, [ROW])
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", listen)
    assert [s.split()[:3] for s in seen] == [["INSERT", "INTO", "prepared_cards"]]

    async with store.transaction() as conn:
        assert (inline_driver(conn) is not None) == (store.engine.dialect.name == "sqlite")
        await _ADD.many(conn, [{**ROW, "title": "Unheard"}])
    assert len(seen) == 1
    assert len(await core_rows(store)) == 2


async def test_a_default_computed_by_python_must_be_given(tables: Store, database: Database) -> None:
    store = tables
    async with store.transaction() as conn:
        if database.backend == "sqlite":
            with pytest.raises(TypeError, match=r"prepared_odd\.tags"):
                await Prepared(insert(odd)).many(conn, [{"id": 1}])
        await Prepared(insert(odd)).many(conn, [{"id": 2, "tags": ["given"]}])
        assert await Prepared(select(odd.c.tags)).rows(conn, {}) == [(["given"],)]


async def test_a_prepared_write_waits_for_another_process_holding_the_lock(tables: Store, database: Database) -> None:
    if database.backend != "sqlite":
        pytest.skip("SQLite's file lock")
    store = tables
    other = sqlite3.connect(Path(database.url.split("///", 1)[1]), isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO prepared_cards (title, done, attempts) VALUES ('Theirs', 0, 0)")

        async def write() -> None:
            async with store.transaction() as conn:
                await _ADD.many(conn, [ROW])

        writing = asyncio.create_task(write())
        for _ in range(20):
            await asyncio.sleep(0.01)  # the loop turns meanwhile: this test's own coroutine runs
        assert not writing.done()
        other.execute("COMMIT")
        async with asyncio.timeout(10):
            await writing
    finally:
        other.close()
    assert [row[1] for row in await core_rows(store)] == ["Theirs", "Launch email"]


@pytest.mark.parametrize(
    "value",
    [
        AT,
        datetime(2026, 3, 1, 1, 2, 3, 456789, tzinfo=timezone(timedelta(hours=-5))),
        datetime(5, 1, 1, 0, 0, 0, 7, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 6, 4, 9, 30, 0, 120, tzinfo=timezone(timedelta(0), "UTC")),  # UTC, but not `datetime.UTC`
        None,
    ],
)
def test_a_utc_datetime_is_stored_on_sqlite_as_sqlalchemy_stores_it(value: datetime | None) -> None:
    dialect = sqlite.dialect()
    column_type = UTCDateTime().dialect_impl(dialect)
    ours = column_type.bind_processor(dialect)
    sqlalchemys = TypeDecorator.bind_processor(column_type, dialect)  # the time zone, then SQLite's text: two steps
    assert ours is not None
    assert sqlalchemys is not None
    assert ours(value) == sqlalchemys(value)


def test_a_naive_datetime_is_refused_on_sqlite_too() -> None:
    dialect = sqlite.dialect()
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    with pytest.raises(ValueError, match="naive datetime"):
        process(datetime(2026, 6, 4, 9, 30))
