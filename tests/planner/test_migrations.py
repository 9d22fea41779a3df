from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import column, insert, inspect, select, table
from sqlalchemy.ext.asyncio import AsyncEngine

from planner.domain.model import MetricSpec, Window
from planner.services.plans import Plans
from planner.store import Store
from planner.store.migrate import alembic_config, current_revision, downgrade, upgrade
from planner.store.schema import delegations, metadata, metric_readings
from tests.conftest import Database, FakeClock


@asynccontextmanager
async def migrating(database: Database, clock: FakeClock) -> AsyncIterator[tuple[AsyncEngine, Store]]:
    """The database's engine, to migrate it, and a store on it."""
    store = Store(database.engine(), clock=clock)
    try:
        yield store.engine, store
    finally:
        await store.close()


async def test_migrations_build_exactly_the_schema_the_code_declares(database: Database) -> None:
    engine = database.engine()
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata)
            )
        assert diff == []
        assert await current_revision(engine) == ScriptDirectory.from_config(alembic_config()).get_current_head()
    finally:
        await engine.dispose()


async def test_migrations_go_down_and_up_again(database: Database) -> None:
    engine = database.engine()
    try:
        await downgrade(engine, "base")
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await upgrade(engine)
        await upgrade(engine)  # a second upgrade is a no-op
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert {"plans", "tasks", "weekly_items", "metrics", "metric_readings", "events"} <= set(tables)
    finally:
        await engine.dispose()


async def test_upgrading_links_tactical_metrics_to_their_master_kpi_and_moves_their_readings(
    database: Database, clock: FakeClock
) -> None:
    async with migrating(database, clock) as (engine, store):
        tenant = Plans(store, "contoso")
        window = Window(start=date(2026, 10, 1), end=date(2026, 10, 31))
        master = await tenant.create_master_plan(
            title="Q4", owner="lead", window=window, metrics=[MetricSpec(name="SQLs", target=200)], actor="lead"
        )
        tactical = await tenant.create_tactical_plan(
            master.id,
            title="Launch",
            owner="lead",
            window=window,
            metrics=[MetricSpec(name="sqls", target=80)],
            actor="x",
        )
        [kpi], [share] = await tenant.list_metrics(master.id), await tenant.list_metrics(tactical.id)
        first, second = datetime(2026, 10, 5, tzinfo=UTC), datetime(2026, 10, 9, tzinfo=UTC)
        await tenant.record_reading(kpi.id, 30, at=first, source="chat", actor="lead")
        async with store.transaction() as conn:  # as readings recorded on a tactical plan's copy were stored before
            for at, value in ((first, 31.0), (second, 45.0)):
                await conn.execute(
                    insert(metric_readings).values(
                        tenant_id="contoso", metric_id=share.id, at=at, value=value, source="chat"
                    )
                )
        await downgrade(engine, "0014")  # dropping the link keeps every reading
        await upgrade(engine)
        [share] = await tenant.list_metrics(tactical.id)
        assert share.kpi_id == kpi.id
        # The copy's reading moved to the KPI; the one colliding with the KPI's own (same time, same source) stayed.
        assert [(r.at, r.value) for r in await tenant.readings(kpi.id)] == [(first, 30), (second, 45)]
        assert [(r.at, r.value) for r in await tenant.readings(share.id)] == [(first, 31)]


async def test_upgrading_moves_the_old_cut_mark_out_of_an_answer_into_its_own_column(
    database: Database, clock: FakeClock
) -> None:
    async with migrating(database, clock) as (engine, store):
        tenant = Plans(store, "contoso")
        window = Window(start=date(2026, 10, 1), end=date(2026, 10, 31))
        master = await tenant.create_master_plan(title="Q4", owner="lead", window=window, actor="lead")
        tactical = await tenant.create_tactical_plan(master.id, title="Launch", owner="lead", window=window, actor="x")
        task = await tenant.add_task(tactical.id, title="Brief", due_on=date(2026, 10, 9), owner="lead", actor="x")
        await downgrade(engine, "0025")
        before = table(
            "delegations", *(column(name) for name in ("tenant_id", "task_id", "adapter", "adapter_kind")),
            *(column(name) for name in ("capability", "input", "timeout_seconds", "actor", "status", "output")),
            column("queued_at"), column("attempts"),
        )  # fmt: skip
        answers = ["a" * 200_000 + " … (cut: the answer was longer)", "ends with (cut: the answer was longer)", None]
        async with store.transaction() as conn:
            for answer in answers:
                await conn.execute(
                    insert(before).values(
                        tenant_id="contoso", task_id=task.id, adapter="crm", adapter_kind="mcp", capability="brief",
                        input="{}", timeout_seconds=60.0, actor="lead", status="succeeded", output=answer,
                        queued_at=clock.now, attempts=1,
                    )
                )  # fmt: skip
        await upgrade(engine)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(delegations.c.output, delegations.c.output_cut).order_by("id"))).all()
        assert [tuple(row) for row in rows] == [
            ("a" * 200_000, True),
            ("ends with (cut: the answer was longer)", False),
            (None, False),
        ]
