"""The store's SQLite driver for SQLAlchemy's asyncio engine: statements run on the event loop, not in a thread.

aiosqlite runs every call on a thread of its own, and SQLAlchemy makes four calls a statement (open a cursor,
execute, fetch, close): four wake-ups of that thread and four of the event loop, about 0.8 ms a statement on a
2-core machine, where SQLAlchemy's own work takes 60 us and SQLite's a few (`bench/delegation.py` measures what it
does to a delegation). In WAL mode a reader takes no lock and a writer waits only for another writer, so a statement
is short unless it has to wait for a lock. Here a statement therefore runs at once on the caller's thread with no
busy timeout, and only one that finds the database locked by another connection (another process, or another of
the pool's connections in a transaction) waits for it on a worker thread, with the timeout the URL or `connect_args`
gave: the event loop goes on meanwhile, so the connection holding the lock can finish and let it go.

What the event loop still waits for: the statement itself (a big read takes as long as it takes, as it would hold
the GIL for its rows anyway), and a WAL checkpoint when a commit crosses SQLite's threshold (1,000 pages).

Use it through `planner.store.create_engine`, which passes `InlineSQLite()` as the DBAPI module of a
`sqlite+aiosqlite` URL; the URL and everything SQLAlchemy does with it (dialect, pool, types) stay the same.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_module
from sqlalchemy.engine import AdaptedConnection
from sqlalchemy.util.concurrency import await_

DEFAULT_TIMEOUT = 5.0
"""Seconds a statement waits for another connection's lock, as `sqlite3.connect`'s default."""

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
        self._connection.run(lambda cursor: self._take(cursor, cursor.execute(operation, parameters)))
        return self

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> InlineCursor:
        rows = list(seq_of_parameters)  # run twice if it waits for a lock: a generator would be spent
        self._connection.run(lambda cursor: self._take(cursor, cursor.executemany(operation, rows)))
        return self

    def _take(self, cursor: sqlite3.Cursor, _executed: object) -> None:
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

    __slots__ = ("_sqlite", "_timeout")

    def __init__(self, connection: sqlite3.Connection, timeout: float) -> None:
        self._connection = connection  # type: ignore[assignment]  # SQLAlchemy's `driver_connection`
        self._sqlite = connection
        self._timeout = timeout

    def run(self, call: Callable[[sqlite3.Cursor], _T]) -> _T:
        """`call` with a cursor at once; if the database is locked, `call` again on a worker thread, waiting for it.

        Through `await_` even when it does not wait: SQLAlchemy's asyncio engine refuses a driver that never awaits.
        """
        return await_(self._run(call))

    async def _run(self, call: Callable[[sqlite3.Cursor], _T]) -> _T:
        cursor = self._sqlite.cursor()
        try:
            return call(cursor)
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or self._timeout <= 0:
                raise
            waiting = asyncio.get_running_loop().run_in_executor(None, self._waiting, call, cursor)
            try:
                return await asyncio.shield(waiting)
            except asyncio.CancelledError:
                # The connection is the thread's until its statement ends: stop the statement, and wait for it.
                self._sqlite.interrupt()
                await _settled(waiting)
                raise
        finally:
            cursor.close()

    def _waiting(self, call: Callable[[sqlite3.Cursor], _T], cursor: sqlite3.Cursor) -> _T:
        connection = self._sqlite
        connection.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
        try:
            return call(cursor)
        finally:
            connection.execute("PRAGMA busy_timeout = 0")

    def cursor(self, server_side: bool = False) -> InlineCursor:
        return InlineCursor(self)

    def execute(self, operation: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> InlineCursor:
        return self.cursor().execute(operation, parameters)

    def commit(self) -> None:
        self.run(lambda _cursor: self._sqlite.commit())

    def rollback(self) -> None:
        self._sqlite.rollback()

    def close(self) -> None:
        self._sqlite.close()

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._sqlite.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._sqlite.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._sqlite.isolation_level = value  # type: ignore[assignment]  # SQLAlchemy passes what sqlite3 takes

    @property
    def in_transaction(self) -> bool:
        return self._sqlite.in_transaction


class InlineSQLite(AsyncAdapt_dbapi_module):
    """The DBAPI module SQLAlchemy's aiosqlite dialect is given (`create_async_engine(url, module=InlineSQLite())`)."""

    paramstyle = "qmark"
    has_stop = False  # no thread to stop: the dialect closes connections instead of terminating them

    def __init__(self) -> None:
        super().__init__(sqlite3, dbapi_module=sqlite3)
        self.sqlite = sqlite3
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
        return InlineConnection(sqlite3.connect(database, timeout=0, **kwargs), timeout=float(timeout))
