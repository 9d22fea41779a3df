"""The plan store: SQLAlchemy 2 (async) over SQLite by default, PostgreSQL in production.

`Store` owns the engine; `Store.tenant(tenant_id)` hands out a `TenantStore` whose every query is bound to
that tenant, so no code path can read or write another tenant's rows. Every change is written in one
transaction together with its event (see `planner.services.events`). Edits are optimistic: each row carries a
version, and an update only lands on the version it read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from importlib import import_module
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast, overload

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    event,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from planner.domain.derivation import weekly_selection
from planner.domain.errors import (
    InvalidValue,
    MetricNotFound,
    PlanNotFound,
    StaleEdit,
    TaskNotFound,
    TenantMismatch,
)
from planner.domain.model import (
    Direction,
    Event,
    Metric,
    MetricReading,
    MetricSpec,
    Plan,
    Task,
    TaskChanges,
    TaskStatus,
    Tier,
    WeeklyItem,
    Window,
    iso_week_window,
)
from planner.domain.policy import RuleCache
from planner.domain.rollup import HealthRules, MetricFacts, PlanFacts, PlanRollup, TaskCounts, roll_up
from planner.ports import Clock, utcnow
from planner.services import events as event_log
from planner.services.shared_reads import SharedReads
from planner.store.schema import events, metric_readings, metrics, people, plans, processed_keys, tasks, weekly_items

if TYPE_CHECKING:
    from planner.domain.decisions import DecisionKeys

Connection = AsyncConnection
"""What a store function works on: a connection, in a transaction (`Store.transaction`) or reading (`Store.read`).
Services pass it along without knowing the database library."""

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///chief_of_staff.db"
EDIT_ATTEMPTS = 20


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

    def __init__(self, store: Store) -> None:
        self._store = store
        self._receipt: Receipt | None = None
        self._writer: AsyncConnection | None = None
        """SQLite: the store's writer connection, while this transaction holds it."""
        self._core: AbstractAsyncContextManager[Any] | None = None

    async def __aenter__(self) -> AsyncConnection:
        receipt = _RECEIPT.get()
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
    """The database, shared by every tenant; ask it for a tenant's view with `tenant()`."""

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
        """Reads many callers ask for at once (see `planner.services.shared_reads`)."""
        self.rule_cache = RuleCache()
        """The policy rules compiled in this process, shared by every policy engine on this store."""

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection in a transaction that commits on exit (rolls back on error).

        Under a receipt (`receipt`), the first one also records the receipt's key; raises AlreadyProcessed when it
        is recorded already.

        SQLite: the process's write transactions queue for its one writer connection, kept open between them
        (taking a connection from the pool and giving it back cost more than most transactions' statements).
        """
        return _Transaction(self)

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for reads, outside any transaction of this process's writer (never blocked by one)."""
        return self.engine.connect()

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

    def tenant(self, tenant_id: str) -> TenantStore:
        """The store seen by one tenant (the Teams tenant id)."""
        if not tenant_id or not tenant_id.strip():
            raise InvalidValue("tenant id", tenant_id, "the Teams tenant id of the conversation")
        return TenantStore(self, tenant_id)

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.close()
        await self.engine.dispose()


def _plan(row: Row[Any]) -> Plan:
    return Plan(
        id=row.id,
        tenant_id=row.tenant_id,
        tier=Tier(row.tier),
        parent_id=row.parent_id,
        master_id=row.master_id,
        title=row.title,
        owner=row.owner,
        window=Window(start=row.starts_on, end=row.ends_on),
        constraints=tuple(row.constraints or ()),
        iso_week=row.iso_week,
        created_at=row.created_at,
        version=row.version,
    )


_STATUSES = {status.value: status for status in TaskStatus}


def task_in(row: Sequence[Any]) -> Task:
    """The task in a row that begins with the tasks table's columns (a join may add others after them)."""
    return _task(row)


def _task(row: Sequence[Any]) -> Task:
    # Unpacked by position: this runs once per task listed, and attribute access on rows costs more.
    (
        task_id,
        tenant_id,
        plan_id,
        master_id,
        title,
        owner,
        due_on,
        status,
        milestone,
        created_at,
        started_at,
        done_at,
        snoozed_until,
        blocked_reason,
        version,
    ) = cast("tuple[Any, ...]", row)[:15]
    return Task(
        id=task_id,
        tenant_id=tenant_id,
        plan_id=plan_id,
        master_id=master_id,
        title=title,
        owner=owner,
        due_on=due_on,
        status=_STATUSES[status],
        milestone=milestone,
        created_at=created_at,
        started_at=started_at,
        done_at=done_at,
        snoozed_until=snoozed_until,
        blocked_reason=blocked_reason,
        version=version,
    )


def _metric(row: Row[Any]) -> Metric:
    return Metric(
        id=row.id,
        tenant_id=row.tenant_id,
        plan_id=row.plan_id,
        name=row.name,
        unit=row.unit,
        direction=Direction(row.direction),
        baseline=row.baseline,
        target=row.target,
        tolerance=row.tolerance,
        version=row.version,
    )


def _prefixed_metric(row: Row[Any]) -> Metric:
    """A metric from a row whose metric columns are labelled `metric_<name>` (next to a plan's)."""
    return Metric(
        id=row.metric_id,
        tenant_id=row.metric_tenant_id,
        plan_id=row.metric_plan_id,
        name=row.metric_name,
        unit=row.metric_unit,
        direction=Direction(row.metric_direction),
        baseline=row.metric_baseline,
        target=row.metric_target,
        tolerance=row.metric_tolerance,
        version=row.metric_version,
    )


def _reading(row: Row[Any]) -> MetricReading:
    return MetricReading(
        id=row.id, tenant_id=row.tenant_id, metric_id=row.metric_id, at=row.at, value=row.value, source=row.source
    )


def _event(row: Row[Any]) -> Event:
    return Event(
        id=row.id,
        tenant_id=row.tenant_id,
        at=row.at,
        actor=row.actor,
        kind=row.kind,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        before=row.before,
        after=row.after,
    )


def _text(field: str, value: str, *, limit: int = 500) -> str:
    cleaned = " ".join(value.split())
    if not cleaned:
        raise InvalidValue(field, value, "some text")
    if len(cleaned) > limit:
        raise InvalidValue(field, value[:40] + "…", f"at most {limit} characters")
    return cleaned


def _task_counts(plan_id: ColumnElement[int]) -> Select[*tuple[Any, ...]]:
    """Per plan: its tasks, done, overdue (open and due before `:as_of`) and blocked."""
    status = tasks.c.status
    overdue = and_(status != TaskStatus.DONE.value, tasks.c.due_on < bindparam("as_of"))
    one, zero = literal_column("1", Integer()), literal_column("0", Integer())
    return select(
        plan_id.label("plan_id"),
        func.count().label("total"),
        func.sum(case((status == TaskStatus.DONE.value, one), else_=zero)).label("done"),
        func.sum(case((overdue, one), else_=zero)).label("overdue"),
        func.sum(case((status == TaskStatus.BLOCKED.value, one), else_=zero)).label("blocked"),
    ).group_by(plan_id)


def _rollup_statement(root_id: Select[Any]) -> Select[*tuple[Any, ...]]:
    """The master plan tree rooted at the plan `root_id` selects, in one statement: a row per plan and metric of
    the plan (one with no metric when it has none), with the plan's task counts, its owner's name in the directory
    and the metric's latest reading before `:cutoff`.

    Parameters: tenant_id, as_of, cutoff, and those of `root_id`.
    """
    root = select(root_id.cte("root").c[0]).scalar_subquery()
    tree = (
        select(plans.c.id)
        .where(plans.c.tenant_id == bindparam("tenant_id"), or_(plans.c.id == root, plans.c.master_id == root))
        .cte("tree")
    )
    weekly = plans.alias("weekly")
    counted = union_all(
        # Tactical plans count their tasks; weekly plans their items.
        _task_counts(tasks.c.plan_id).where(tasks.c.tenant_id == bindparam("tenant_id"), tasks.c.master_id == root),
        _task_counts(weekly_items.c.weekly_plan_id)
        .select_from(weekly_items)
        .join(tasks, tasks.c.id == weekly_items.c.task_id)
        .join(weekly, weekly.c.id == weekly_items.c.weekly_plan_id)
        .where(weekly_items.c.tenant_id == bindparam("tenant_id"), weekly.c.master_id == root),
    ).subquery("counted")
    latest = (
        select(
            metric_readings.c.metric_id,
            metric_readings.c.value,
            func.row_number()
            .over(
                partition_by=metric_readings.c.metric_id,
                order_by=(metric_readings.c.at.desc(), metric_readings.c.id.desc()),
            )
            .label("rank"),
        )
        .join(metrics, metrics.c.id == metric_readings.c.metric_id)
        .where(
            metrics.c.tenant_id == bindparam("tenant_id"),
            metrics.c.plan_id.in_(select(tree.c.id)),
            metric_readings.c.at < bindparam("cutoff"),
        )
        .subquery("latest")
    )
    return (
        select(
            plans,
            counted.c.total,
            counted.c.done,
            counted.c.overdue,
            counted.c.blocked,
            *(column.label(f"metric_{column.name}") for column in metrics.c),
            latest.c.value.label("latest"),
            people.c.name.label("owner_name"),
        )
        .select_from(
            plans.join(tree, tree.c.id == plans.c.id)
            .outerjoin(counted, counted.c.plan_id == plans.c.id)
            .outerjoin(people, and_(people.c.tenant_id == plans.c.tenant_id, people.c.user_id == plans.c.owner))
            .outerjoin(metrics, and_(metrics.c.plan_id == plans.c.id, metrics.c.tenant_id == plans.c.tenant_id))
            .outerjoin(latest, and_(latest.c.metric_id == metrics.c.id, latest.c.rank == literal_column("1")))
        )
        .order_by(plans.c.id, metrics.c.id)
    )


def _active_master() -> Select[Any]:
    """The id of the master plan whose window includes `:as_of`, or of the only master plan when none does; NULL
    when there is not exactly one such plan (as `Context.plan_arg` picks the plan to show)."""
    active = and_(plans.c.starts_on <= bindparam("as_of"), plans.c.ends_on >= bindparam("as_of"))
    actives = func.count(case((active, literal_column("1"))))
    return select(
        case(
            (actives == literal_column("1"), func.max(case((active, plans.c.id)))),
            (and_(actives == literal_column("0"), func.count() == literal_column("1")), func.max(plans.c.id)),
        ).label("id")
    ).where(plans.c.tenant_id == bindparam("tenant_id"), plans.c.tier == Tier.MASTER.value)


# Built once, with bound parameters: building the statement (and its cache key) anew costs more than running it.
_ROLLUP_OF_PLAN = _rollup_statement(
    select(func.coalesce(plans.c.master_id, plans.c.id).label("id")).where(
        plans.c.id == bindparam("plan_id"), plans.c.tenant_id == bindparam("tenant_id")
    )
)
_ROLLUP_OF_ACTIVE_MASTER = _rollup_statement(_active_master())


@dataclass(frozen=True, kw_only=True)
class OwnedRollup:
    """A rollup, with the display names of its plans' owners as the directory knows them (unknown owners left out)."""

    rollup: PlanRollup
    owner_names: dict[str, str]


class TenantStore:
    """Plans, tasks and metrics of one tenant. Every method reads and writes that tenant's rows only."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self.tenant_id = tenant_id

    @property
    def _engine(self) -> AsyncEngine:
        return self._store.engine

    def _now(self) -> datetime:
        return self._store.clock()

    def _check_tenant(self, value: Plan | Task | Metric) -> None:
        if value.tenant_id != self.tenant_id:
            raise TenantMismatch(self.tenant_id, value.tenant_id)

    async def _record(
        self,
        conn: AsyncConnection,
        *,
        actor: str,
        kind: str,
        subject: Plan | Task | Metric | MetricReading,
        before: Plan | Task | Metric | MetricReading | None,
    ) -> None:
        subject_type = kind.split(".", 1)[0]
        await event_log.record(
            conn,
            tenant_id=self.tenant_id,
            at=self._now(),
            actor=actor,
            kind=kind,
            subject_type=subject_type,
            subject_id=subject.id,
            before=event_log.snapshot(before) if before is not None else None,
            after=event_log.snapshot(subject),
        )

    # ---- plans ---------------------------------------------------------------------------------------------

    async def _plan_row(self, conn: AsyncConnection, plan_id: int, tier: Tier | None = None) -> Plan:
        query = select(plans).where(plans.c.id == plan_id, plans.c.tenant_id == self.tenant_id)
        row = (await conn.execute(query)).first()
        if row is None or (tier is not None and row.tier != tier.value):
            raise PlanNotFound(plan_id, tier.value if tier else None)
        return _plan(row)

    async def get_plan(self, plan_id: int, tier: Tier | None = None) -> Plan:
        """The plan with this id. Raises PlanNotFound (also for another tier when `tier` is given)."""
        async with self._engine.connect() as conn:
            return await self._plan_row(conn, plan_id, tier)

    async def list_plans(self, tier: Tier | None = None, *, parent_id: int | None = None) -> list[Plan]:
        """Plans of the tenant, optionally of one tier or under one parent, oldest window first."""
        query = select(plans).where(plans.c.tenant_id == self.tenant_id)
        if tier is not None:
            query = query.where(plans.c.tier == tier.value)
        if parent_id is not None:
            query = query.where(plans.c.parent_id == parent_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(plans.c.starts_on, plans.c.id))).all()
        return [_plan(r) for r in rows]

    async def _insert_plan(
        self,
        conn: AsyncConnection,
        *,
        tier: Tier,
        parent: Plan | None,
        title: str,
        owner: str,
        window: Window,
        constraints: Sequence[str] = (),
        iso_week: str | None = None,
        actor: str,
    ) -> Plan:
        values = dict(
            tenant_id=self.tenant_id,
            tier=tier.value,
            parent_id=parent.id if parent else None,
            master_id=(parent.master_id or parent.id) if parent else None,
            title=_text("title", title),
            owner=_text("owner", owner, limit=200),
            starts_on=window.start,
            ends_on=window.end,
            constraints=[_text("constraint", c) for c in constraints],
            iso_week=iso_week,
            created_at=self._now(),
            version=1,
        )
        result = await conn.execute(insert(plans).values(**values).returning(plans))
        plan = _plan(result.one())
        await self._record(conn, actor=actor, kind=f"plan.created.{tier.value}", subject=plan, before=None)
        return plan

    async def create_master_plan(
        self,
        *,
        title: str,
        owner: str,
        window: Window,
        constraints: Sequence[str] = (),
        metrics: Sequence[MetricSpec] = (),
        actor: str,
    ) -> Plan:
        """A new master plan (the north star) with its KPI metrics, in one transaction."""
        for spec in metrics:
            spec.validate()
        async with self._store.transaction() as conn:
            plan = await self._insert_plan(
                conn,
                tier=Tier.MASTER,
                parent=None,
                title=title,
                owner=owner,
                window=window,
                constraints=constraints,
                actor=actor,
            )
            for spec in metrics:
                await self._insert_metric(conn, plan, spec, actor=actor)
            return plan

    async def create_tactical_plan(
        self,
        master_id: int,
        *,
        title: str,
        owner: str,
        window: Window,
        constraints: Sequence[str] = (),
        metrics: Sequence[MetricSpec] = (),
        actor: str,
    ) -> Plan:
        """A tactical plan under a master plan. Raises WindowConflict if its window leaves the master's."""
        for spec in metrics:
            spec.validate()
        async with self._store.transaction() as conn:
            master = await self._plan_row(conn, master_id, Tier.MASTER)
            window.require_inside(master.window, what="tactical plan", parent_name=f"master plan {master.id}")
            plan = await self._insert_plan(
                conn,
                tier=Tier.TACTICAL,
                parent=master,
                title=title,
                owner=owner,
                window=window,
                constraints=constraints,
                actor=actor,
            )
            for spec in metrics:
                await self._insert_metric(conn, plan, spec, actor=actor)
            return plan

    async def update_plan(
        self,
        plan_id: int,
        *,
        title: str | None = None,
        owner: str | None = None,
        window: Window | None = None,
        constraints: Sequence[str] | None = None,
        expected_version: int | None = None,
        actor: str,
    ) -> Plan:
        """Edit a plan. A new window must stay inside the parent's and keep children and due dates inside it."""
        async with self._store.transaction() as conn:
            before = await self._plan_row(conn, plan_id)
            if expected_version is not None and expected_version != before.version:
                raise StaleEdit("Plan", plan_id, expected_version, before.version)
            after = replace(
                before,
                title=_text("title", title) if title is not None else before.title,
                owner=_text("owner", owner, limit=200) if owner is not None else before.owner,
                window=window or before.window,
                constraints=tuple(_text("constraint", c) for c in constraints)
                if constraints is not None
                else before.constraints,
                version=before.version + 1,
            )
            if window is not None and window != before.window:
                await self._check_window_change(conn, before, window)
            result = await conn.execute(
                update(plans)
                .where(plans.c.id == plan_id, plans.c.tenant_id == self.tenant_id, plans.c.version == before.version)
                .values(
                    title=after.title,
                    owner=after.owner,
                    starts_on=after.window.start,
                    ends_on=after.window.end,
                    constraints=list(after.constraints),
                    version=after.version,
                )
            )
            if result.rowcount != 1:
                raise StaleEdit("Plan", plan_id, before.version, None)
            await self._record(conn, actor=actor, kind="plan.updated", subject=after, before=before)
            return after

    async def _check_window_change(self, conn: AsyncConnection, plan: Plan, window: Window) -> None:
        if plan.tier is Tier.WEEKLY:
            raise InvalidValue("window", window, "no change: a weekly plan always covers its ISO week")
        if plan.parent_id is not None:
            parent = await self._plan_row(conn, plan.parent_id)
            window.require_inside(
                parent.window, what=f"{plan.tier} plan", parent_name=f"{parent.tier} plan {parent.id}"
            )
        child_rows = (
            await conn.execute(select(plans).where(plans.c.parent_id == plan.id, plans.c.tenant_id == self.tenant_id))
        ).all()
        for row in child_rows:
            child = _plan(row)
            child.window.require_inside(
                window, what=f"{child.tier} plan {child.id}", parent_name=f"the new window of plan {plan.id}"
            )
        if plan.tier is Tier.TACTICAL:
            outside = (
                await conn.execute(
                    select(tasks)
                    .where(
                        tasks.c.plan_id == plan.id,
                        tasks.c.tenant_id == self.tenant_id,
                        or_(tasks.c.due_on < window.start, tasks.c.due_on > window.end),
                    )
                    .limit(1)
                )
            ).first()
            if outside is not None:
                Window(start=outside.due_on, end=outside.due_on).require_inside(
                    window, what=f"due date of task {outside.id}", parent_name=f"the new window of plan {plan.id}"
                )

    # ---- weekly plans --------------------------------------------------------------------------------------

    async def derive_weekly_plan(self, tactical_id: int, iso_week: str, *, actor: str) -> tuple[Plan, list[WeeklyItem]]:
        """The weekly plan of `iso_week` under a tactical plan, created or refreshed by the derivation rules.

        Idempotent: deriving again adds tasks that became due that week and never removes a task.
        Raises PlanNotFound, InvalidValue (bad week) or WindowConflict (week outside the tactical plan).
        """
        week = iso_week_window(iso_week)
        iso_week = f"{week.start.isocalendar().year}-W{week.start.isocalendar().week:02d}"
        async with self._store.transaction() as conn:
            tactical = await self._plan_row(conn, tactical_id, Tier.TACTICAL)
            if week.end < tactical.window.start or week.start > tactical.window.end:
                week.require_inside(
                    tactical.window, what=f"week {iso_week}", parent_name=f"tactical plan {tactical.id}"
                )
            # A week the tactical plan only partly covers is clipped to it, so the child stays inside its parent.
            week = Window(start=max(week.start, tactical.window.start), end=min(week.end, tactical.window.end))
            existing = (
                await conn.execute(
                    select(plans).where(
                        plans.c.tenant_id == self.tenant_id,
                        plans.c.parent_id == tactical.id,
                        plans.c.iso_week == iso_week,
                    )
                )
            ).first()
            if existing is not None:
                weekly = _plan(existing)
            else:
                weekly = await self._insert_plan(
                    conn,
                    tier=Tier.WEEKLY,
                    parent=tactical,
                    title=f"{tactical.title}, week {iso_week}",
                    owner=tactical.owner,
                    window=week,
                    iso_week=iso_week,
                    actor=actor,
                )
            candidates = (
                await conn.execute(
                    select(tasks).where(
                        tasks.c.tenant_id == self.tenant_id,
                        tasks.c.plan_id == tactical.id,
                        tasks.c.due_on <= week.end,
                        or_(tasks.c.due_on >= week.start, tasks.c.status != TaskStatus.DONE.value),
                    )
                )
            ).all()
            selection = weekly_selection((_task(r) for r in candidates), week)
            present = set(
                (
                    await conn.execute(select(weekly_items.c.task_id).where(weekly_items.c.weekly_plan_id == weekly.id))
                ).scalars()
            )
            new_items = [item for item in selection if item.task.id not in present]
            if new_items:
                await conn.execute(
                    insert(weekly_items),
                    [
                        dict(
                            weekly_plan_id=weekly.id,
                            task_id=item.task.id,
                            tenant_id=self.tenant_id,
                            carried_over=item.carried_over,
                        )
                        for item in new_items
                    ],
                )
                await event_log.record(
                    conn,
                    tenant_id=self.tenant_id,
                    at=self._now(),
                    actor=actor,
                    kind="plan.derived.weekly",
                    subject_type="plan",
                    subject_id=weekly.id,
                    before={"task_ids": sorted(present)},
                    after={"task_ids": sorted(present | {i.task.id for i in new_items})},
                )
            return weekly, await self._weekly_items(conn, weekly.id)

    async def _weekly_items(self, conn: AsyncConnection, weekly_id: int) -> list[WeeklyItem]:
        rows = (
            await conn.execute(
                select(tasks, weekly_items.c.carried_over)
                .join(weekly_items, weekly_items.c.task_id == tasks.c.id)
                .where(weekly_items.c.weekly_plan_id == weekly_id, weekly_items.c.tenant_id == self.tenant_id)
                .order_by(weekly_items.c.carried_over.desc(), tasks.c.due_on, tasks.c.id)
            )
        ).all()
        return [WeeklyItem(task=_task(r), carried_over=r.carried_over) for r in rows]

    async def weekly_items(self, weekly_id: int) -> list[WeeklyItem]:
        """The tasks of a weekly plan, carried-over ones first. Raises PlanNotFound."""
        async with self._engine.connect() as conn:
            await self._plan_row(conn, weekly_id, Tier.WEEKLY)
            return await self._weekly_items(conn, weekly_id)

    # ---- tasks ---------------------------------------------------------------------------------------------

    async def add_task(
        self,
        plan_id: int,
        *,
        title: str,
        due_on: date,
        owner: str | None = None,
        milestone: bool = False,
        actor: str,
    ) -> Task:
        """A new task in a tactical plan, or in a weekly plan (then it belongs to that week's tactical plan).

        Raises PlanNotFound, InvalidValue (a master plan: tasks go into tactical plans) or WindowConflict.
        """
        async with self._store.transaction() as conn:
            plan = await self._plan_row(conn, plan_id)
            weekly: Plan | None = None
            if plan.tier is Tier.MASTER:
                raise InvalidValue("plan", plan_id, "a tactical or weekly plan: tasks live under a tactical plan")
            if plan.tier is Tier.WEEKLY:
                weekly, plan = plan, await self._plan_row(conn, plan.parent_id or 0, Tier.TACTICAL)
            home = weekly or plan
            Window(start=due_on, end=due_on).require_inside(
                home.window, what="due date", parent_name=f"{home.tier} plan {home.id}"
            )
            result = await conn.execute(
                insert(tasks)
                .values(
                    tenant_id=self.tenant_id,
                    plan_id=plan.id,
                    master_id=plan.master_id,
                    title=_text("title", title),
                    owner=_text("owner", owner, limit=200) if owner else None,
                    due_on=due_on,
                    status=TaskStatus.TODO.value,
                    milestone=milestone,
                    created_at=self._now(),
                    version=1,
                )
                .returning(tasks)
            )
            task = _task(result.one())
            await self._record(conn, actor=actor, kind="task.created", subject=task, before=None)
            week_plan = weekly or await self._week_containing(conn, plan.id, due_on)
            if week_plan is not None:
                await conn.execute(
                    insert(weekly_items).values(
                        weekly_plan_id=week_plan.id, task_id=task.id, tenant_id=self.tenant_id, carried_over=False
                    )
                )
            return task

    async def _week_containing(self, conn: AsyncConnection, tactical_id: int, day: date) -> Plan | None:
        row = (
            await conn.execute(
                select(plans).where(
                    plans.c.tenant_id == self.tenant_id,
                    plans.c.parent_id == tactical_id,
                    plans.c.tier == Tier.WEEKLY.value,
                    plans.c.starts_on <= day,
                    plans.c.ends_on >= day,
                )
            )
        ).first()
        return _plan(row) if row is not None else None

    async def _task_row(self, conn: AsyncConnection, task_id: int) -> Task:
        row = (
            await conn.execute(select(tasks).where(tasks.c.id == task_id, tasks.c.tenant_id == self.tenant_id))
        ).first()
        if row is None:
            raise TaskNotFound(task_id)
        return _task(row)

    async def get_task(self, task_id: int) -> Task:
        """The task with this id. Raises TaskNotFound."""
        async with self._engine.connect() as conn:
            return await self._task_row(conn, task_id)

    async def tasks_by_id(self, task_ids: Iterable[int]) -> dict[int, Task]:
        """The tasks with these ids, in one query (ids of no task of the tenant are left out)."""
        wanted = sorted(set(task_ids))
        if not wanted:
            return {}
        query = select(tasks).where(tasks.c.tenant_id == self.tenant_id, tasks.c.id.in_(wanted))
        async with self._engine.connect() as conn:
            return {row.id: _task(row) for row in await conn.execute(query)}

    async def plans_by_id(self, plan_ids: Iterable[int]) -> dict[int, Plan]:
        """The plans with these ids, in one query (ids of no plan of the tenant are left out)."""
        wanted = sorted(set(plan_ids))
        if not wanted:
            return {}
        query = select(plans).where(plans.c.tenant_id == self.tenant_id, plans.c.id.in_(wanted))
        async with self._engine.connect() as conn:
            return {row.id: _plan(row) for row in await conn.execute(query)}

    async def list_tasks(self, plan_id: int) -> list[Task]:
        """The tasks of a tactical plan, or of a weekly plan, or of all tactical plans under a master plan."""
        async with self._engine.connect() as conn:
            plan = await self._plan_row(conn, plan_id)
            if plan.tier is Tier.WEEKLY:
                return [item.task for item in await self._weekly_items(conn, plan.id)]
            column = tasks.c.master_id if plan.tier is Tier.MASTER else tasks.c.plan_id
            rows = (
                await conn.execute(
                    select(tasks)
                    .where(column == plan.id, tasks.c.tenant_id == self.tenant_id)
                    .order_by(tasks.c.due_on, tasks.c.id)
                )
            ).all()
            return [_task(r) for r in rows]

    async def tasks_due(
        self, start: date, end: date, *, open_only: bool = True, owner: str | None = None, limit: int | None = None
    ) -> list[Task]:
        """Tasks due between `start` and `end` inclusive, by due date; open ones only unless told otherwise."""
        Window(start=start, end=end)
        query = select(tasks).where(tasks.c.tenant_id == self.tenant_id, tasks.c.due_on >= start, tasks.c.due_on <= end)
        if open_only:
            query = query.where(tasks.c.status != TaskStatus.DONE.value)
        if owner is not None:
            query = query.where(tasks.c.owner == owner)
        query = query.order_by(tasks.c.due_on, tasks.c.id)
        if limit is not None:
            query = query.limit(limit)
        async with self._engine.connect() as conn:
            return [_task(r) for r in (await conn.execute(query)).all()]

    async def tasks_of_owner(self, owner: str, *, open_only: bool = True) -> list[Task]:
        """A person's tasks across all plans, by due date."""
        query = select(tasks).where(tasks.c.tenant_id == self.tenant_id, tasks.c.owner == owner)
        if open_only:
            query = query.where(tasks.c.status != TaskStatus.DONE.value)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(tasks.c.due_on, tasks.c.id))).all()
        return [_task(r) for r in rows]

    async def update_task(
        self, task_id: int, changes: TaskChanges, *, actor: str, expected_version: int | None = None
    ) -> Task:
        """Apply `changes` to a task and record the event.

        With `expected_version`, the edit lands only on that version (else StaleEdit): for a person who edited
        what they saw. Without it, the changes are applied to whatever version is current, retried on a
        concurrent write, so concurrent edits of different fields never lose one another.
        Raises TaskNotFound, WindowConflict (due date outside the plan), StaleEdit.
        """
        return await self.edit_task(
            task_id, lambda task: self._apply(task, changes), actor=actor, expected_version=expected_version
        )

    def _apply(self, task: Task, changes: TaskChanges) -> Task:
        now = self._now()
        status = changes.status or task.status
        started_at = task.started_at
        done_at = task.done_at
        if status is TaskStatus.DOING and started_at is None:
            started_at = now
        if status is TaskStatus.DONE and task.status is not TaskStatus.DONE:
            done_at = now
            started_at = started_at or now
        if status is not TaskStatus.DONE:
            done_at = None
        blocked_reason = task.blocked_reason if status is TaskStatus.BLOCKED else None
        if status is TaskStatus.BLOCKED and changes.blocked_reason is not None:
            blocked_reason = _text("reason", changes.blocked_reason) if changes.blocked_reason.strip() else None
        if changes.clear_owner:
            owner = None
        else:
            owner = _text("owner", changes.owner, limit=200) if changes.owner is not None else task.owner
        snoozed_until = task.snoozed_until if changes.snoozed_until is None else changes.snoozed_until
        if status is TaskStatus.DONE:
            snoozed_until = None
        return replace(
            task,
            title=_text("title", changes.title) if changes.title is not None else task.title,
            owner=owner,
            due_on=changes.due_on or task.due_on,
            status=status,
            milestone=task.milestone if changes.milestone is None else changes.milestone,
            started_at=started_at,
            done_at=done_at,
            snoozed_until=snoozed_until,
            blocked_reason=blocked_reason,
        )

    async def edit_task(
        self,
        task_id: int,
        edit: Callable[[Task], Task],
        *,
        actor: str,
        expected_version: int | None = None,
    ) -> Task:
        """Read the task, apply `edit` to it and write it back if nobody wrote in between; retry otherwise.

        `edit` must be a pure function of the task it is given. With `expected_version` there is no retry.
        """
        for _attempt in range(1 if expected_version is not None else EDIT_ATTEMPTS):
            async with self._store.transaction() as conn:
                before = await self._task_row(conn, task_id)
                if expected_version is not None and before.version != expected_version:
                    raise StaleEdit("Task", task_id, expected_version, before.version)
                after = edit(before)
                self._check_tenant(after)
                if after.id != before.id or after.plan_id != before.plan_id:
                    raise InvalidValue("task", after.id, "the same task in the same plan")
                after = replace(after, version=before.version + 1)
                if after.due_on != before.due_on:
                    plan = await self._plan_row(conn, before.plan_id)
                    Window(start=after.due_on, end=after.due_on).require_inside(
                        plan.window, what="due date", parent_name=f"tactical plan {plan.id}"
                    )
                result = await conn.execute(
                    update(tasks)
                    .where(
                        tasks.c.id == task_id, tasks.c.tenant_id == self.tenant_id, tasks.c.version == before.version
                    )
                    .values(
                        title=after.title,
                        owner=after.owner,
                        due_on=after.due_on,
                        status=after.status.value,
                        milestone=after.milestone,
                        started_at=after.started_at,
                        done_at=after.done_at,
                        snoozed_until=after.snoozed_until,
                        blocked_reason=after.blocked_reason,
                        version=after.version,
                    )
                )
                if result.rowcount == 1:
                    kind = self._task_event_kind(before, after)
                    await self._record(conn, actor=actor, kind=kind, subject=after, before=before)
                    return after
            if expected_version is not None:
                raise StaleEdit("Task", task_id, expected_version, None)
        current = await self.get_task(task_id)
        raise StaleEdit("Task", task_id, current.version - 1, current.version)

    @staticmethod
    def _task_event_kind(before: Task, after: Task) -> str:
        if before.status is not after.status:
            return f"task.status.{after.status.value}"
        if before.owner != after.owner:
            return "task.assigned"
        if before.snoozed_until != after.snoozed_until and after.snoozed_until is not None:
            return "task.snoozed"
        return "task.updated"

    # ---- metrics -------------------------------------------------------------------------------------------

    async def _insert_metric(self, conn: AsyncConnection, plan: Plan, spec: MetricSpec, *, actor: str) -> Metric:
        if plan.tier is Tier.WEEKLY:
            raise InvalidValue("plan", plan.id, "a master or tactical plan: weekly plans have no metrics of their own")
        spec.validate()
        try:
            async with conn.begin_nested():
                result = await conn.execute(
                    insert(metrics)
                    .values(
                        tenant_id=self.tenant_id,
                        plan_id=plan.id,
                        name=_text("metric name", spec.name, limit=200),
                        unit=spec.unit.strip(),
                        direction=spec.resolved_direction().value,
                        baseline=spec.baseline,
                        target=spec.target,
                        tolerance=spec.tolerance,
                        version=1,
                    )
                    .returning(metrics)
                )
        except IntegrityError:
            raise InvalidValue("metric name", spec.name, f"a name not yet used on plan {plan.id}") from None
        metric = _metric(result.one())
        await self._record(conn, actor=actor, kind="metric.created", subject=metric, before=None)
        return metric

    async def add_metric(self, plan_id: int, spec: MetricSpec, *, actor: str) -> Metric:
        """A new KPI on a master or tactical plan. Raises PlanNotFound or InvalidValue."""
        async with self._store.transaction() as conn:
            plan = await self._plan_row(conn, plan_id)
            return await self._insert_metric(conn, plan, spec, actor=actor)

    async def set_metric_target(self, metric_id: int, target: float, *, actor: str) -> Metric:
        """A KPI's new target (the baseline, unit and direction stay). Raises MetricNotFound or InvalidValue."""
        async with self._store.transaction() as conn:
            query = select(metrics).where(metrics.c.id == metric_id, metrics.c.tenant_id == self.tenant_id)
            row = (await conn.execute(query)).first()
            if row is None:
                raise MetricNotFound(metric_id)
            before = _metric(row)
            spec = MetricSpec(
                name=before.name,
                target=target,
                unit=before.unit,
                baseline=before.baseline,
                direction=before.direction,
                tolerance=before.tolerance,
            )
            spec.validate()
            after = replace(before, target=target, version=before.version + 1)
            await conn.execute(
                update(metrics)
                .where(metrics.c.id == metric_id, metrics.c.tenant_id == self.tenant_id)
                .values(target=target, version=after.version)
            )
            await self._record(conn, actor=actor, kind="metric.updated", subject=after, before=before)
            return after

    async def list_metrics(self, plan_id: int) -> list[Metric]:
        """The KPIs defined on one plan."""
        async with self._engine.connect() as conn:
            await self._plan_row(conn, plan_id)
            rows = (
                await conn.execute(
                    select(metrics)
                    .where(metrics.c.plan_id == plan_id, metrics.c.tenant_id == self.tenant_id)
                    .order_by(metrics.c.id)
                )
            ).all()
        return [_metric(r) for r in rows]

    async def find_metric(self, name: str, *, plan_id: int | None = None) -> Metric:
        """A metric by name (case-insensitive), on one plan or on any of the tenant's plans.

        Raises MetricNotFound listing the names that exist, or InvalidValue if the name is ambiguous.
        """
        query = select(metrics).where(metrics.c.tenant_id == self.tenant_id)
        if plan_id is not None:
            query = query.where(metrics.c.plan_id == plan_id)
        async with self._engine.connect() as conn:
            rows = [_metric(r) for r in (await conn.execute(query.order_by(metrics.c.id))).all()]
        matches = [m for m in rows if m.name.casefold() == name.strip().casefold()]
        if not matches:
            raise MetricNotFound(name, plan_id, tuple(sorted({m.name for m in rows})))
        if len(matches) > 1:
            raise InvalidValue(
                "metric", name, "a plan id too: plans " + ", ".join(str(m.plan_id) for m in matches) + " all have it"
            )
        return matches[0]

    async def record_reading(
        self,
        metric_id: int,
        value: float,
        *,
        at: datetime | None = None,
        source: str = "chat",
        actor: str,
        conn: AsyncConnection | None = None,
    ) -> MetricReading:
        """Store a reading. Idempotent by (metric, time, source): the same reading twice is stored once; a
        different value for the same key corrects it. With `conn`, inside the caller's transaction. Raises
        MetricNotFound."""
        at = at or self._now()
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidValue("value", value, "a finite number")
        if conn is not None:
            return await self._record_reading(conn, metric_id, value, at=at, source=source, actor=actor)
        async with self._store.transaction() as own:
            return await self._record_reading(own, metric_id, value, at=at, source=source, actor=actor)

    async def _record_reading(
        self, conn: AsyncConnection, metric_id: int, value: float, *, at: datetime, source: str, actor: str
    ) -> MetricReading:
        metric_row = (
            await conn.execute(select(metrics).where(metrics.c.id == metric_id, metrics.c.tenant_id == self.tenant_id))
        ).first()
        if metric_row is None:
            raise MetricNotFound(metric_id)
        key = and_(
            metric_readings.c.metric_id == metric_id, metric_readings.c.at == at, metric_readings.c.source == source
        )
        existing = (await conn.execute(select(metric_readings).where(key))).first()
        if existing is None:
            try:
                async with conn.begin_nested():
                    result = await conn.execute(
                        insert(metric_readings)
                        .values(tenant_id=self.tenant_id, metric_id=metric_id, at=at, value=value, source=source)
                        .returning(metric_readings)
                    )
                    reading = _reading(result.one())
            except IntegrityError:
                existing = (await conn.execute(select(metric_readings).where(key))).one()
            else:
                await self._record(conn, actor=actor, kind="metric.reading", subject=reading, before=None)
                return reading
        before = _reading(existing)
        if before.value == value:
            return before
        await conn.execute(update(metric_readings).where(metric_readings.c.id == before.id).values(value=value))
        after = replace(before, value=value)
        await self._record(conn, actor=actor, kind="metric.reading.corrected", subject=after, before=before)
        return after

    async def readings(self, metric_id: int, *, since: datetime | None = None) -> list[MetricReading]:
        """A metric's readings, oldest first."""
        query = select(metric_readings).where(
            metric_readings.c.metric_id == metric_id, metric_readings.c.tenant_id == self.tenant_id
        )
        if since is not None:
            query = query.where(metric_readings.c.at >= since)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(metric_readings.c.at, metric_readings.c.id))).all()
        return [_reading(r) for r in rows]

    async def metrics_of(self, plan_ids: Sequence[int]) -> list[Metric]:
        """The KPIs of several plans in one query, by plan and then as they were defined."""
        query = (
            select(metrics)
            .where(metrics.c.tenant_id == self.tenant_id, metrics.c.plan_id.in_(list(plan_ids)))
            .order_by(metrics.c.plan_id, metrics.c.id)
        )
        async with self._engine.connect() as conn:
            return [_metric(r) for r in (await conn.execute(query)).all()]

    async def readings_of(self, metric_ids: Sequence[int]) -> dict[int, list[MetricReading]]:
        """Several metrics' readings in one query, each metric's oldest first (an empty list for one without)."""
        query = (
            select(metric_readings)
            .where(metric_readings.c.tenant_id == self.tenant_id, metric_readings.c.metric_id.in_(list(metric_ids)))
            .order_by(metric_readings.c.metric_id, metric_readings.c.at, metric_readings.c.id)
        )
        found: dict[int, list[MetricReading]] = {metric_id: [] for metric_id in metric_ids}
        async with self._engine.connect() as conn:
            for row in (await conn.execute(query)).all():
                found[row.metric_id].append(_reading(row))
        return found

    # ---- rollup --------------------------------------------------------------------------------------------

    async def rollup(self, plan_id: int, as_of: date | None = None) -> PlanRollup:
        """Progress and health of the master plan's tree containing `plan_id`, as of a day (today by default).

        Reads aggregates only (task counts per plan, the latest reading per metric), never every task, in one query
        whatever the size of the tree. Returns the rollup of the tree's root; use `.find(plan_id)` for a subtree.
        Raises PlanNotFound.
        """
        return (await self.owned_rollup(plan_id, as_of or self._now().date())).rollup

    @overload
    async def owned_rollup(self, plan_id: int, as_of: date) -> OwnedRollup: ...

    @overload
    async def owned_rollup(self, plan_id: None, as_of: date) -> OwnedRollup | None: ...

    async def owned_rollup(self, plan_id: int | None, as_of: date) -> OwnedRollup | None:
        """`rollup(plan_id, as_of)` with its owners' names, in the same query. Without a plan id, that of the master
        plan active on `as_of` (the only master plan when none is), or None when there is not exactly one.
        Raises PlanNotFound for a plan id."""
        cutoff = datetime.combine(as_of + timedelta(days=1), time(), tzinfo=UTC)
        parameters = {"tenant_id": self.tenant_id, "plan_id": plan_id, "as_of": as_of, "cutoff": cutoff}
        statement = _ROLLUP_OF_ACTIVE_MASTER if plan_id is None else _ROLLUP_OF_PLAN
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement, parameters)).all()
        facts: dict[int, PlanFacts] = {}
        owner_names: dict[str, str] = {}
        for row in rows:
            known = facts.get(row.id)
            if known is None:
                counts = TaskCounts()
                if row.total is not None:
                    counts = TaskCounts(total=row.total, done=row.done, overdue=row.overdue, blocked=row.blocked)
                known = facts[row.id] = PlanFacts(plan=_plan(row), counts=counts)
                if row.owner_name is not None:
                    owner_names[row.owner] = row.owner_name
            if row.metric_id is not None:
                metric = MetricFacts(metric=_prefixed_metric(row), latest=row.latest)
                facts[row.id] = replace(known, metrics=(*known.metrics, metric))
        by_tier: dict[Tier, list[PlanFacts]] = {tier: [] for tier in Tier}
        for f in facts.values():
            by_tier[f.plan.tier].append(f)
        if not by_tier[Tier.MASTER]:
            if plan_id is None:
                return None
            raise PlanNotFound(plan_id)
        rollup = roll_up(
            by_tier[Tier.MASTER][0], by_tier[Tier.TACTICAL], by_tier[Tier.WEEKLY], as_of, self._store.rules
        )
        return OwnedRollup(rollup=rollup, owner_names=owner_names)

    # ---- events --------------------------------------------------------------------------------------------

    async def events(
        self, *, subject_type: str | None = None, subject_id: int | None = None, limit: int = 100
    ) -> list[Event]:
        """Recorded changes, newest first, optionally of one subject."""
        query = select(events).where(events.c.tenant_id == self.tenant_id)
        if subject_type is not None:
            query = query.where(events.c.subject_type == subject_type)
        if subject_id is not None:
            query = query.where(events.c.subject_id == subject_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(events.c.id.desc()).limit(limit))).all()
        return [_event(r) for r in rows]

    async def delete_plan(self, plan_id: int, *, actor: str) -> None:
        """Remove a plan with everything under it; the event keeps what it was."""
        async with self._store.transaction() as conn:
            plan = await self._plan_row(conn, plan_id)
            await conn.execute(delete(plans).where(plans.c.id == plan.id, plans.c.tenant_id == self.tenant_id))
            await event_log.record(
                conn,
                tenant_id=self.tenant_id,
                at=self._now(),
                actor=actor,
                kind="plan.deleted",
                subject_type="plan",
                subject_id=plan.id,
                before=event_log.snapshot(plan),
                after=None,
            )


# Importing the submodule `planner.store.tasks` binds its name here, where this module's queries mean the tasks table
# by it: import the submodule first, then bind the name to the table again.
import_module("planner.store.tasks")
from planner.store.schema import tasks  # noqa: E402, F811
