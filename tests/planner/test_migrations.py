from __future__ import annotations

from datetime import UTC, date, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect

from planner.domain.model import MetricSpec, Window
from planner.services.plans import Plans
from planner.store import Store
from planner.store.migrate import alembic_config, current_revision, downgrade, upgrade
from planner.store.schema import metadata, metric_readings
from tests.conftest import Database, FakeClock


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
    engine = database.engine()
    store = Store(engine, clock=clock)
    try:
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
    finally:
        await store.close()
