"""The database: SQLAlchemy 2 (async) over SQLite by default, PostgreSQL in production.

`Store` owns the engine and hands out connections: `transaction()` for writes (committed together, with the
receipt of the activity that made them), `read()` for reads. The modules of this package hold the statements, one
module per aggregate, each the one writer of its tables; `planner.services` holds the use cases that call them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, closing, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, event, insert, make_url, select, text, update
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from planner.domain.policy import RuleCache
from planner.domain.rollup import HealthRules
from planner.ports import Clock, utcnow
from planner.store.schema import processed_keys
from planner.store.shared_reads import SharedReads

if TYPE_CHECKING:
    from planner.domain.decisions import DecisionKeys

Connection = AsyncConnection
"""What a store function works on: a connection, in a transaction (`Store.transaction`) or reading (`Store.read`).
Services pass it along without knowing the database library."""

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///chief_of_staff.db"


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names (relative to the current folder when it is relative); None for another database
    or an in-memory one. Raises ValueError for a URL that is not one."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise ValueError(f"{url!r} is not a database URL: {error}") from None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    if parsed.database.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(parsed.database)


def copy_sqlite_file(source: Path, target: Path) -> None:
    """Copy a SQLite database, consistently even while a server writes it (SQLite's online backup, WAL included)."""
    if not source.exists():
        raise FileNotFoundError(f"no SQLite database at {source}")
    with closing(sqlite3.connect(source)) as reading, closing(sqlite3.connect(target)) as writing:
        reading.backup(writing)


def anchored_url(url: str, folder: Path) -> str:
    """`url`, with a relative SQLite file made relative to `folder` rather than to the current folder."""
    path = sqlite_file(url)
    if path is None or path.is_absolute():
        return url
    return make_url(url).set(database=str(folder / path)).render_as_string(hide_password=False)


def url_without_password(url: str) -> str:
    """`url` as it may be printed, its password hidden. Raises ValueError for a URL that is not one (and so shows
    none of it)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        raise ValueError("not a database URL") from None


POOL_SIZE = 10
POOL_OVERFLOW = 20
"""PostgreSQL connections a process keeps open, and opens beyond them under load: each delegation takes one for its
few statements before and after its agent call (none during it), and with 200 in flight SQLAlchemy's 5 + 10 kept
the rest (and chat turns) queueing for one, until some gave up after the pool's 30 s. Three replicas stay under
PostgreSQL's default of 100 connections."""
BACKGROUND_CONNECTIONS = {"sqlite": 2, "postgresql": 2}
"""How many connections work in the background (delegations' runs) may hold at once, by backend: the rest of the
pool stays free for people's turns, which would otherwise queue behind hundreds of delegations' bookkeeping (and, on
SQLite, behind their writes at the one writer). Two carry a delegation's few short transactions many times a second;
more let more of its work run on the event loop while a person's turn waits there (PostgreSQL's driver works on the
loop itself)."""
PEOPLE_FIRST_SECONDS = 0.25
"""How long background work about to take a connection waits for people's turns in progress to end (see
`Store.serving_a_person`), at most: long enough for a turn, short enough that a stream of turns never stops it."""

_BACKGROUND: ContextVar[bool] = ContextVar("cos_store_background", default=False)
_HOLDING: ContextVar[bool] = ContextVar("cos_store_background_holding", default=False)


def create_engine(url: str = DEFAULT_DATABASE_URL, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url`, with SQLite set up for one process (foreign keys on, WAL, a busy timeout).

    SQLite syncs at checkpoints only (`synchronous=NORMAL`): in WAL mode that keeps the database consistent through
    a crash, and a power cut can only lose the last commits, where a sync at every commit made each writer wait for
    the disk (the sender's outbox marks, every turn's activity id) while holding the process's write lock.
    """
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", POOL_SIZE)
    kwargs.setdefault("max_overflow", POOL_OVERFLOW)
    return create_async_engine(url, **kwargs)


async def upsert(
    conn: AsyncConnection, table: Table, key: ColumnElement[bool], changes: dict[str, Any], row: dict[str, Any]
) -> None:
    """Update the row at `key`, or insert `row`; a concurrent insert of the same key turns into the update."""
    if (await conn.execute(update(table).where(key).values(**changes))).rowcount:
        return
    try:
        async with conn.begin_nested():
            await conn.execute(insert(table).values(**row))
    except IntegrityError:
        await conn.execute(update(table).where(key).values(**changes))


class AlreadyProcessed(Exception):
    """A write under a receipt found the receipt's key recorded: another attempt at the same activity (Teams' retry,
    on this replica or another) already wrote what it does. Nothing of this transaction is kept."""

    def __init__(self, tenant_id: str, key: str) -> None:
        self.tenant_id = tenant_id
        self.key = key
        super().__init__(f"{key} of tenant {tenant_id} was processed already")


@dataclass
class Receipt:
    """The key of the activity a turn handles, recorded by the turn's first write transaction (see `Store.receipt`)."""

    tenant_id: str
    key: str
    recorded: bool = False
    """Committed with one of the turn's writes."""
    pending: bool = False
    """In a write transaction not yet committed; others of the turn leave it to that one."""


_RECEIPT: ContextVar[Receipt | None] = ContextVar("planner_receipt", default=None)


class _Transaction:
    """`Store.transaction`: on SQLite, the process's one writer connection, taken in turn under a lock; on
    PostgreSQL, a pooled connection. Either way Core's own transaction, which commits on a clean exit."""

    def __init__(self, store: Store, *, receipt: bool = True) -> None:
        self._store = store
        self._under_receipt = receipt
        self._receipt: Receipt | None = None
        self._writer: AsyncConnection | None = None
        """SQLite: the store's writer connection, while this transaction holds it."""
        self._core: AbstractAsyncContextManager[Any] | None = None

    async def __aenter__(self) -> AsyncConnection:
        receipt = _RECEIPT.get() if self._under_receipt else None
        if receipt is not None and (receipt.recorded or receipt.pending):
            receipt = None  # recorded already, or by a transaction of the turn still open
        if receipt is not None:
            receipt.pending = True
        self._receipt = receipt
        try:
            conn = await self._begin()
        except BaseException:
            self._settle(committed=False)
            raise
        if receipt is not None:
            try:
                await self._store._record_receipt(conn, receipt)
            except BaseException as error:
                await self.__aexit__(type(error), error, error.__traceback__)
                raise
        return conn

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        committed = False
        try:
            await self._end(kind, error, traceback)
            committed = error is None
        finally:
            self._settle(committed=committed)

    def _settle(self, *, committed: bool) -> None:
        receipt = self._receipt
        if receipt is not None:
            # Committed: recorded. Rolled back: nothing of it happened, and the turn's next write records it.
            receipt.recorded = committed
            receipt.pending = False

    async def _begin(self) -> AsyncConnection:
        store = self._store
        lock = store._write_lock
        if lock is None:
            began = store.engine.begin()
            self._core = began
            return await began.__aenter__()
        await lock.acquire()
        try:
            writer = store._writer
            if writer is None or writer.closed or writer.invalidated:
                writer = store._writer = await store.engine.connect()
            self._writer = writer
            transaction = writer.begin()
            self._core = transaction
            await transaction.__aenter__()
        except BaseException:
            await self._close_if_broken()
            lock.release()
            raise
        return writer

    async def _end(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        core, lock = self._core, self._store._write_lock
        assert core is not None
        if lock is None:  # PostgreSQL
            await core.__aexit__(kind, error, traceback)
            return
        try:
            await core.__aexit__(kind, error, traceback)
        except BaseException:
            await self._close_if_broken()
            raise
        else:
            if error is not None:
                await self._close_if_broken()
        finally:
            lock.release()

    async def _close_if_broken(self) -> None:
        """A writer that broke (the file went away) is closed: the next transaction opens another."""
        writer = self._writer
        if writer is not None and writer.invalidated:
            self._store._writer = None
            await writer.close()


class Store:
    """The database, shared by every tenant (each store function takes the tenant whose rows it reads or writes)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock = utcnow,
        rules: HealthRules | None = None,
        decision_keys: DecisionKeys | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.rules = rules or HealthRules()
        self.decision_keys = decision_keys
        """The keys that sign the decision log (see `planner.domain.decisions`); None: it is kept unsigned."""
        # SQLite has one writer at a time, and a writer that finds it busy sleeps in steps of up to 100 ms:
        # queueing this process's write transactions here instead keeps them from colliding.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._writer: AsyncConnection | None = None
        """SQLite: the connection every write transaction of this process uses in turn (see `transaction`)."""
        self.shared_reads = SharedReads()
        """Reads many callers ask for at once (see `planner.store.shared_reads`)."""
        self.rule_cache = RuleCache()
        """The policy rules compiled in this process, shared by every policy engine on this store."""
        self._background_slots = asyncio.Semaphore(BACKGROUND_CONNECTIONS.get(engine.dialect.name, 2))
        self._people_served = 0
        self._nobody_waiting = asyncio.Event()
        self._nobody_waiting.set()

    @contextmanager
    def serving_a_person(self) -> Iterator[None]:
        """Within the block a person waits for the answer (a chat turn, a card's click): background work about to
        take a connection waits until no such block is open (at most `PEOPLE_FIRST_SECONDS`). The event loop has no
        priorities; without this, under hundreds of delegations a turn's every statement queued behind theirs."""
        self._people_served += 1
        self._nobody_waiting.clear()
        try:
            yield
        finally:
            self._people_served -= 1
            if not self._people_served:
                self._nobody_waiting.set()

    @staticmethod
    @contextmanager
    def background() -> Iterator[None]:
        """Within the block, and in tasks started from it, reads and transactions are background work: together they
        hold at most a few connections (`BACKGROUND_CONNECTIONS`), so a person's turn always finds one."""
        token = _BACKGROUND.set(True)
        try:
            yield
        finally:
            _BACKGROUND.reset(token)

    async def people_first(self) -> None:
        """Background work waits here while a person waits for an answer (`serving_a_person`), at most
        `PEOPLE_FIRST_SECONDS`; other work, and background work holding a connection already, goes on at once."""
        if not self._people_served or not _BACKGROUND.get() or _HOLDING.get():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PEOPLE_FIRST_SECONDS):
                await self._nobody_waiting.wait()

    @asynccontextmanager
    async def _slot(self, inner: AbstractAsyncContextManager[AsyncConnection]) -> AsyncIterator[AsyncConnection]:
        # A task holding a slot already (a read inside a transaction, a task started meanwhile) takes no second one:
        # waiting for it could wait for itself.
        if not _BACKGROUND.get() or _HOLDING.get():
            async with inner as conn:
                yield conn
            return
        await self.people_first()
        async with self._background_slots:
            await self.people_first()  # a turn that began while this waited for the slot goes first too
            token = _HOLDING.set(True)
            try:
                async with inner as conn:
                    yield conn
            finally:
                _HOLDING.reset(token)

    def transaction(self, *, receipt: bool = True) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection in a transaction that commits on exit (rolls back on error).

        Under a receipt (`receipt`), the first one also records the receipt's key; raises AlreadyProcessed when it
        is recorded already. `receipt=False` is for a write that is no part of what the activity does (what the
        assistant remembers of it): it neither records the key nor is refused for it, so a retry of a turn that only
        read still answers again.

        SQLite: the process's write transactions queue for its one writer connection, kept open between them
        (taking a connection from the pool and giving it back cost more than most transactions' statements).
        """
        return self._slot(_Transaction(self, receipt=receipt))

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for reads, outside any transaction of this process's writer (never blocked by one)."""
        return self._slot(self.engine.connect())

    def reading(self, conn: AsyncConnection | None) -> AbstractAsyncContextManager[AsyncConnection]:
        """`conn`, a read the caller holds (left open), or a new `read()`."""
        return nullcontext(conn) if conn is not None else self.read()

    async def _record_receipt(self, conn: AsyncConnection, receipt: Receipt) -> None:
        row = {"tenant_id": receipt.tenant_id, "key": receipt.key, "created_at": self.clock()}
        try:
            await conn.execute(insert(processed_keys), row)
        except IntegrityError:
            raise AlreadyProcessed(receipt.tenant_id, receipt.key) from None

    @contextmanager
    def receipt(self, tenant_id: str, key: str) -> Iterator[Receipt]:
        """Within the block, and in tasks started from it, the first write transaction records `key` as processed
        in its own commit, so what an activity writes is written once however often it is delivered: a second
        attempt's first write raises AlreadyProcessed and keeps nothing. An attempt that writes nothing records
        nothing (it may run again: it changed nothing). Check `processed` first to skip a known retry at once."""
        receipt = Receipt(tenant_id=tenant_id, key=key[:300])
        token = _RECEIPT.set(receipt)
        try:
            yield receipt
        finally:
            _RECEIPT.reset(token)

    async def processed(self, tenant_id: str, key: str) -> bool:
        """Whether a write under a receipt for `key` was committed (across replicas)."""
        query = select(processed_keys.c.key).where(
            processed_keys.c.tenant_id == tenant_id, processed_keys.c.key == key[:300]
        )
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

    @classmethod
    def from_url(
        cls, url: str = DEFAULT_DATABASE_URL, *, clock: Clock = utcnow, decision_keys: DecisionKeys | None = None
    ) -> Store:
        return cls(create_engine(url), clock=clock, decision_keys=decision_keys)

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.close()
        await self.engine.dispose()
