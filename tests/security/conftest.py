"""What the security suite shares: a bot on loopback with settings of the test's choosing, and a whole-database
snapshot to prove that a refused input wrote nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.http.app import create_app
from bot.settings import Settings
from bot.teams.botbuilder import create_adapter
from bot.teams.handler import ChiefOfStaffBot
from planner.store import Store
from tests.bot.conftest import Running
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector

BOOKKEEPING = frozenset({"people", "conversations", "processed_keys"})
"""What every turn writes, whatever it says: who wrote, from where, and that the activity was seen."""

Snapshot = dict[str, list[tuple[str, ...]]]


_reflected: WeakKeyDictionary[AsyncEngine, MetaData] = WeakKeyDictionary()


async def _tables(engine: AsyncEngine) -> MetaData:
    """Every table in the database as it is (reflected, so tables added by later migrations are included too)."""
    metadata = _reflected.get(engine)
    if metadata is None:
        metadata = MetaData()
        async with engine.connect() as conn:
            await conn.run_sync(metadata.reflect)
        _reflected[engine] = metadata
    return metadata


async def snapshot(store: Store, *, without: Iterable[str] = ()) -> Snapshot:
    """Every row of every table (but `without`), as text, in a stable order."""
    skipped = set(without)
    metadata = await _tables(store.engine)
    found: Snapshot = {}
    async with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in skipped:
                continue
            rows = (await conn.execute(select(table))).all()
            found[table.name] = sorted(tuple(repr(value) for value in row) for row in rows)
    return found


async def every_stored_value(engine: AsyncEngine) -> list[tuple[str, str, Any]]:
    """(table, column, value) for every non-null value of every row of every table."""
    metadata = await _tables(engine)
    values: list[tuple[str, str, Any]] = []
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in (await conn.execute(select(table))).mappings():
                values.extend((table.name, column, value) for column, value in row.items() if value is not None)
    return values


def changed_tables(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))


@dataclass(repr=False)
class BotUnderTest(Running):
    """A running bot with a short repr (hypothesis prints its arguments, and the connector's log grows long)."""

    def __repr__(self) -> str:
        return f"BotUnderTest({self.url})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


async def start_bot_with(
    store: Store, connector: FakeConnector, clock: FakeClock, env: dict[str, str], **bot_kwargs: Any
) -> Running:
    """`tests.bot.conftest.start_bot`, with settings read from `env`."""
    settings = Settings.from_env(env)
    adapter = create_adapter(settings)
    bot = ChiefOfStaffBot(store, settings, clock=clock, **bot_kwargs)
    bot.adapter = adapter
    server = TestServer(create_app(store, adapter, bot, settings), host="127.0.0.1")
    await server.start_server()
    return BotUnderTest(store, bot, server, connector, aiohttp.ClientSession())


async def stop_bot(running: Running) -> None:
    await running.bot.drain()
    await running.session.close()
    await running.server.close()


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = FakeConnector()
    await fake.start()
    yield fake
    await fake.close()


def secret_fragments(secret: str) -> Iterator[str]:
    """The secret, and the parts of it long enough to give it away (a leak may cut or wrap it)."""
    yield secret
    if len(secret) >= 24:
        yield secret[:16]
        yield secret[-16:]
