"""The store's SQLite driver for SQLAlchemy's asyncio engine: statements run on the event loop, not in a thread.

aiosqlite runs every call on a thread of its own, and SQLAlchemy makes four calls a statement (open a cursor,
execute, fetch, close): four wake-ups of that thread and four of the event loop, about 0.8 ms a statement on a
2-core machine, where SQLAlchemy's own work takes 60 us and SQLite's a few (`bench/delegation.py` measures what it
does to a delegation). In WAL mode a reader takes no lock and a writer waits only for another writer, so a statement
is short unless it has to wait for a lock. Here a statement therefore runs at once on the caller's thread with no
busy timeout, and only one that finds the database locked by another connection (another process, or another of
the pool's connections in a transaction) waits for it on a worker thread, with the timeout the URL or `connect_args`
gave: the event loop goes on meanwhile, so the connection holding the lock can finish and let it go.

Two things keep a long job from stopping the event loop (the hourly sweep makes hundreds of statements, some of
30-50 ms on a big plan): a statement that took longer than `SLOW_STATEMENT` runs on a worker thread from then on,
where SQLite lets go of the GIL while it works, until a run there is quick again; and a caller whose statements have
kept the loop from everyone else for `LOOP_SLICE` gives it a turn before its next one. What the loop still waits
for: a statement's first slow run, and a WAL checkpoint when a commit crosses SQLite's threshold (1,000 pages).

Use it through `planner.store.create_engine`, which passes `InlineSQLite()` as the DBAPI module of a
`sqlite+aiosqlite` URL; the URL and everything SQLAlchemy does with it (dialect, pool, types) stay the same.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_module
from sqlalchemy.engine import AdaptedConnection
from sqlalchemy.util.concurrency import await_

DEFAULT_TIMEOUT = 5.0
"""Seconds a statement waits for another connection's lock, as `sqlite3.connect`'s default."""
SLOW_STATEMENT = 0.005
"""Seconds a statement may take on the event loop; one that took longer runs on a worker thread from then on."""
LOOP_SLICE = 0.02
"""Seconds of statements one after another, with nothing else run between, before the event loop gets a turn."""
_REMEMBERED = 1000
"""Slow statements remembered at most (the texts are SQLAlchemy's cached ones; a flood of others is forgotten)."""

_T = TypeVar("_T")
_BUSY_SNAPSHOT = sqlite3.SQLITE_BUSY | 2 << 8


def _is_busy(error: sqlite3.OperationalError) -> bool:
    """Whether `error` is SQLite's "database is locked" (another connection holds the lock), which waiting may end.

    A stale read snapshot (SQLITE_BUSY_SNAPSHOT) is not: waiting cannot make a transaction's old snapshot current.
    """
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return "locked" in str(error)
    return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) and code != _BUSY_SNAPSHOT


async def _settled(future: asyncio.Future[Any]) -> None:
    """Wait until `future` is done, however often the waiting task is cancelled meanwhile (it is being cancelled
    already); what it raised is dropped."""
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            continue
    if not future.cancelled():
        future.exception()


class Pace:
    """What an engine's connections learn of their statements: which ones are slow, and when the event loop last had
    a turn (a callback it runs whenever it gets to it)."""

    def __init__(self) -> None:
        self.slow: dict[str, float] = {}
        """Statement text -> seconds its last run took, for those over `SLOW_STATEMENT`."""
        self._last_turn = time.perf_counter()
        self._waiting_turn: asyncio.AbstractEventLoop | None = None

    def is_slow(self, operation: str | None) -> bool:
        return operation is not None and operation in self.slow

    def took(self, operation: str | None, seconds: float) -> None:
        if operation is None:
            return
        if seconds > SLOW_STATEMENT:
            if len(self.slow) >= _REMEMBERED:
                self.slow.clear()
            self.slow[operation] = seconds
        elif seconds < SLOW_STATEMENT / 2:
            self.slow.pop(operation, None)

    def loop_starved(self) -> bool:
        """Whether statements have run one after another for `LOOP_SLICE` with the event loop getting no turn."""
        loop = asyncio.get_running_loop()
        if self._waiting_turn is not loop:
            self._waiting_turn = loop
            loop.call_soon(self._turn)
        return time.perf_counter() - self._last_turn > LOOP_SLICE

    def _turn(self) -> None:
        self._last_turn = time.perf_counter()
        self._waiting_turn = None


class InlineCursor:
    """A DBAPI cursor that runs its statement through `InlineConnection.run` and fetches every row at once, as
    SQLAlchemy's asyncio adaptation expects (its results are read after the statement, outside the greenlet)."""

    __slots__ = ("_connection", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1
        self._rows: deque[Any] = deque()

    def execute(self, operation: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> InlineCursor:
        sqlite = self._connection.sqlite
        self._connection.run(lambda: self._take(sqlite.execute(operation, parameters)), operation)
        return self

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> InlineCursor:
        rows = list(seq_of_parameters)  # run twice if it waits for a lock: a generator would be spent
        sqlite = self._connection.sqlite
        self._connection.run(lambda: self._take(sqlite.executemany(operation, rows)), operation)
        return self

    def _take(self, cursor: sqlite3.Cursor) -> None:
        """What the statement just run on `cursor` gave (sqlite3's execute returns its cursor)."""
        self.description = cursor.description
        self._rows = deque(cursor.fetchall()) if cursor.description else deque()
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid

    async def _async_soft_close(self) -> None:
        """Nothing to close: the rows were fetched with the statement."""

    def close(self) -> None:
        self._rows.clear()

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = self._rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()


class InlineConnection(AdaptedConnection):
    """A sqlite3 connection adapted to SQLAlchemy's asyncio engine (see the module's docstring)."""

    __slots__ = ("_pace", "_timeout", "sqlite")

    def __init__(self, connection: sqlite3.Connection, timeout: float, pace: Pace) -> None:
        self._connection = connection  # type: ignore[assignment]  # SQLAlchemy's `driver_connection`
        self.sqlite = connection
        self._timeout = timeout
        self._pace = pace

    def run(self, call: Callable[[], _T], operation: str | None = None) -> _T:
        """`call` (which runs the statement `operation` on `sqlite`): at once, or on a worker thread if the statement
        is known to be slow; if the database is locked, again on a worker thread, waiting for the lock.

        Through `await_` even when it does not wait: SQLAlchemy's asyncio engine refuses a driver that never awaits.
        """
        return await_(self._run(call, operation))

    async def statement(
        self, operation: str, parameters: Sequence[Any], *, many: bool = False
    ) -> tuple[list[Any], int]:
        """Run one statement from a coroutine, as `run` does for SQLAlchemy's greenlet (see `planner.prepared`):
        its rows and the count of rows it changed. With `many`, `parameters` is a list of rows of them."""
        sqlite = self.sqlite

        def call() -> tuple[list[Any], int]:
            done = sqlite.executemany(operation, parameters) if many else sqlite.execute(operation, parameters)
            return (done.fetchall() if done.description else []), done.rowcount

        return await self._run(call, operation)

    async def end(self, *, commit: bool) -> None:
        """Commit (or roll back) from a coroutine the transaction `statement`'s writes began (see `Store._begin`)."""
        if commit:
            await self._run(self.sqlite.commit, None)
        else:
            self.sqlite.rollback()

    async def _run(self, call: Callable[[], _T], operation: str | None) -> _T:
        pace = self._pace
        if pace.loop_starved():
            await asyncio.sleep(0)
        if pace.is_slow(operation):
            return await self._off_loop(call, operation)
        began = time.perf_counter()
        try:
            result = call()
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or self._timeout <= 0:
                raise
            return await self._off_loop(call, operation)
        seconds = time.perf_counter() - began
        if seconds > SLOW_STATEMENT:  # else there is nothing to learn: it was not known to be slow either
            pace.took(operation, seconds)
        return result

    async def _off_loop(self, call: Callable[[], _T], operation: str | None) -> _T:
        waiting = asyncio.get_running_loop().run_in_executor(None, self._waiting, call)
        try:
            result, seconds = await asyncio.shield(waiting)
        except asyncio.CancelledError:
            # The connection is the thread's until its statement ends: stop the statement, and wait for it.
            self.sqlite.interrupt()
            await _settled(waiting)
            raise
        self._pace.took(operation, seconds)
        return result

    def _waiting(self, call: Callable[[], _T]) -> tuple[_T, float]:
        connection = self.sqlite
        connection.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
        try:
            began = time.perf_counter()
            return call(), time.perf_counter() - began
        finally:
            connection.execute("PRAGMA busy_timeout = 0")

    def cursor(self, server_side: bool = False) -> InlineCursor:
        return InlineCursor(self)

    def execute(self, operation: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> InlineCursor:
        return self.cursor().execute(operation, parameters)

    def commit(self) -> None:
        self.run(self.sqlite.commit)

    def rollback(self) -> None:
        self.sqlite.rollback()

    def close(self) -> None:
        self.sqlite.close()

    def terminate(self) -> None:
        """What SQLAlchemy calls on a connection it invalidates (a statement cancelled, say): close it, so a
        transaction the statement began is rolled back and its lock let go now, not when it is collected."""
        self.sqlite.close()

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.sqlite.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self.sqlite.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self.sqlite.isolation_level = value  # type: ignore[assignment]  # SQLAlchemy passes what sqlite3 takes

    @property
    def in_transaction(self) -> bool:
        return self.sqlite.in_transaction


class InlineSQLite(AsyncAdapt_dbapi_module):
    """The DBAPI module SQLAlchemy's aiosqlite dialect is given (`create_async_engine(url, module=InlineSQLite())`)."""

    paramstyle = "qmark"
    has_stop = False  # no thread to stop: the dialect closes connections instead of terminating them

    def __init__(self) -> None:
        super().__init__(sqlite3, dbapi_module=sqlite3)
        self.sqlite = sqlite3
        self.pace = Pace()
        for name in (
            "DatabaseError",
            "Error",
            "IntegrityError",
            "InterfaceError",
            "NotSupportedError",
            "OperationalError",
            "ProgrammingError",
            "sqlite_version",
            "sqlite_version_info",
            "PARSE_COLNAMES",
            "PARSE_DECLTYPES",
            "Binary",
        ):
            setattr(self, name, getattr(sqlite3, name))

    def connect(self, database: str, *, timeout: float = DEFAULT_TIMEOUT, **kwargs: Any) -> InlineConnection:
        kwargs.pop("async_creator_fn", None)
        kwargs["check_same_thread"] = False  # a statement that waits for a lock runs on a worker thread
        return InlineConnection(sqlite3.connect(database, timeout=0, **kwargs), float(timeout), self.pace)
