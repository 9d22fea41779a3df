from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from planner.store.migrate import alembic_config, current_revision, downgrade, upgrade
from planner.store.schema import metadata
from tests.conftest import Database


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
