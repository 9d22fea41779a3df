"""A scratch database for a benchmark: a SQLite file in a temporary folder, or a database of its own on a PostgreSQL
server, dropped afterwards."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import make_url, text

from planner.store import create_engine


@contextlib.asynccontextmanager
async def scratch_database(server_url: str | None) -> AsyncIterator[str]:
    """The URL of a new, empty database: a SQLite file in a temporary directory, or (given a PostgreSQL URL) a
    database of its own on that server, dropped afterwards."""
    if server_url is None:
        with tempfile.TemporaryDirectory() as scratch:
            yield f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
        return
    name = f"cos_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
