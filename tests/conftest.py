"""Shared fixtures: a store on every backend, a controllable clock, and a guard against real network calls."""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from planner.store import Store, create_engine
from planner.store.migrate import upgrade

PG_URL = os.environ.get("COS_TEST_DATABASE_URL", "")


def _is_local(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        if host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return True  # unix sockets


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    """Refuse any connection that leaves the machine: tests talk to loopback peers only."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: object) -> object:
        if not _is_local(address):
            raise ConnectionRefusedError(f"tests may not reach {address!r}: use a loopback fake")
        return real_connect(self, address)  # type: ignore[arg-type]

    def guarded_connect_ex(self: socket.socket, address: object) -> int:
        if not _is_local(address):
            raise ConnectionRefusedError(f"tests may not reach {address!r}: use a loopback fake")
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _own_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test's `cos` keeps its default files (database, key) in a folder of its own, never in the user's."""
    monkeypatch.setenv("COS_DATA_DIR", str(tmp_path_factory.mktemp("cos-data")))
    monkeypatch.delenv("COS_ENV_FILE", raising=False)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))


BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not PG_URL, reason="set COS_TEST_DATABASE_URL to run the PostgreSQL half"),
    ),
]


@dataclass
class Database:
    """A fresh, migrated, empty database of one backend; `url` is its SQLAlchemy URL."""

    backend: str
    url: str

    def engine(self) -> AsyncEngine:
        return create_engine(self.url)


async def _pg_admin(statement: str) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """SQLite always; PostgreSQL (a database of its own, dropped afterwards) when COS_TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        db = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'cos.db'}")
    else:
        name = f"cos_test_{uuid.uuid4().hex[:12]}"
        await _pg_admin(f'CREATE DATABASE "{name}"')
        db = Database("postgresql", make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    engine = db.engine()
    await upgrade(engine)
    await engine.dispose()
    yield db
    if db.backend == "postgresql":
        await _pg_admin(f'DROP DATABASE IF EXISTS "{make_url(db.url).database}" WITH (FORCE)')


@pytest.fixture
async def store(database: Database, clock: FakeClock) -> AsyncIterator[Store]:
    """A store on each backend, with the test's clock."""
    store = Store(database.engine(), clock=clock)
    yield store
    await store.close()
