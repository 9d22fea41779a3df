"""Exactly once on PostgreSQL, with real replicas: engine processes (tests/fakes/engine.py) ticking against one
database and sending to one fake Teams, which counts every outbox id it accepts.

The fake can hold sends without answering; a held send counts as delivered (Teams took it, only the answer is
late). That makes the kill deterministic: the test knows exactly which sends were in flight when it struck.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from planner.domain.messages import FOLDED, SENDING, SENT, MessageKind
from planner.store import Store
from planner.store.schema import outbox
from tests.conftest import PG_URL, Database, FakeClock
from tests.fakes.members import add_members
from tests.fakes.teams_limits import TeamsLimitsConnector

pytestmark = [
    pytest.mark.skipif(not PG_URL, reason="set COS_TEST_DATABASE_URL: replicas share a PostgreSQL database"),
    pytest.mark.parametrize("database", ["postgresql"], indirect=True),
]

REPO = Path(__file__).resolve().parents[2]
TENANT = "contoso"
AT = datetime(2026, 2, 11, 10, tzinfo=UTC)  # a Wednesday morning: nobody's quiet hours
STARTUP = 90.0  # a replica's start (imports, connections) on a loaded machine; a bound, not an expectation


class Replica:
    """An engine process; killed in `stop` if it is still running."""

    def __init__(self, process: asyncio.subprocess.Process, worker: str) -> None:
        self.process = process
        self.worker = worker

    async def report(self, within: float = STARTUP) -> dict[str, Any]:
        """Wait (bounded) for the tick to finish; its report."""
        stdout, stderr = await asyncio.wait_for(self.process.communicate(), timeout=within)
        assert self.process.returncode == 0, stderr.decode()
        return dict(json.loads(stdout.decode().strip().splitlines()[-1]))

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        await self.process.communicate()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.communicate()


@pytest.fixture
async def replicas(database: Database) -> AsyncIterator[Any]:
    started: list[Replica] = []

    async def start(worker: str, at: datetime, **options: int) -> Replica:
        arguments = ["--database-url", database.url, "--at", at.isoformat(), "--worker", worker]
        for name, value in options.items():
            arguments += [f"--{name.replace('_', '-')}", str(value)]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fakes.engine",
            *arguments,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        started.append(Replica(process, worker))
        return started[-1]

    try:
        yield start
    finally:
        for replica in started:
            await replica.stop()


@pytest.fixture
async def teams() -> AsyncIterator[TeamsLimitsConnector]:
    """The fake Teams without its rate limits: each replica paces its own 50 a second per tenant, so replicas
    together could pass it (and a 429 would only postpone a message); what is checked here is that no message
    goes twice or not at all."""
    fake = TeamsLimitsConnector(per_conversation=(), per_tenant=())
    await fake.start()
    yield fake
    await fake.close()


async def rows(store: Store) -> list[Any]:
    async with store.engine.connect() as conn:
        return list((await conn.execute(select(outbox).order_by(outbox.c.id))).all())


async def leased_by(store: Store, ids: Sequence[int]) -> set[str]:
    async with store.engine.connect() as conn:
        found = await conn.execute(select(outbox.c.leased_by).where(outbox.c.id.in_(list(ids))))
        return {worker for (worker,) in found}


async def test_three_replicas_ticking_at_once_deliver_every_nudge_exactly_once(
    store: Store, replicas: Any, teams: TeamsLimitsConnector, clock: FakeClock
) -> None:
    clock.now = AT
    await add_members(store.engine, tenant=TENANT, count=60, service_url=teams.url, at=AT)
    teams.hold()  # nothing is answered until every replica is sending
    engines = [await replicas(f"replica-{n}", AT, batch=10, concurrency=3) for n in range(3)]
    # Three sends each, held: each replica has claimed a batch of its own while the others held theirs.
    await teams.wait_until(lambda f: f.held == 9, within=STARTUP)
    assert await leased_by(store, list(teams.deliveries)) == {"replica-0", "replica-1", "replica-2"}
    teams.release()
    reports = [await engine.report() for engine in engines]

    written = await rows(store)
    assert (
        sum(1 for r in written if r.kind == MessageKind.DEADLINE_SLIPPED) == 60
    )  # one nudge per slipped task, not three
    assert {r.status for r in written} == {SENT}
    assert teams.deliveries == {r.id: 1 for r in written}
    assert teams.duplicates == 0
    assert sum(report["sent"] for report in reports) == len(written)
    assert {r.leased_by for r in written} == {"replica-0", "replica-1", "replica-2"}


async def test_a_replica_killed_mid_delivery_loses_nothing_and_duplicates_only_its_sends_in_flight(
    store: Store, replicas: Any, teams: TeamsLimitsConnector, clock: FakeClock
) -> None:
    clock.now = AT
    await add_members(store.engine, tenant=TENANT, count=40, service_url=teams.url, at=AT)
    teams.hold(after=10)  # ten are answered, then sends hang as if the network had stalled
    doomed = await replicas("doomed", AT, batch=30, concurrency=4)
    # A slot is freed only once its message is recorded as sent, so with all four slots hanging, the ten
    # answered before are recorded: the state at the kill is known exactly.
    await teams.wait_until(lambda f: f.held == 4, within=STARTUP)
    await doomed.kill()
    teams.release()

    before = await rows(store)
    in_flight = [r.id for r in before if r.status == SENDING and r.id in teams.deliveries]
    recorded = [r.id for r in before if r.status == SENT]
    stranded = [r.id for r in before if r.status == SENDING]
    assert (len(in_flight), len(recorded), len(stranded)) == (4, 10, 20)

    # Within the dead replica's lease, another delivers everything else and leaves its batch alone.
    patient = await (await replicas("patient", AT + timedelta(minutes=1))).report()
    # A member's two messages of one claim (their week and their reminder) go as one summary card.
    assert patient["sent"] + patient["folded"] == len(before) - 30
    assert [r.id for r in await rows(store) if r.status == SENDING] == stranded

    # Once the lease has run out, the next takes the batch over.
    heir = await (await replicas("heir", AT + timedelta(minutes=3))).report()
    assert heir["sent"] + heir["folded"] == len(stranded)

    after = await rows(store)
    assert {r.status for r in after} <= {SENT, FOLDED}
    assert set(teams.deliveries) == {r.id for r in after if r.status == SENT}  # nothing lost
    assert all(teams.deliveries[i] == 1 for i in recorded)  # what was recorded is never sent again
    duplicates = teams.duplicates
    print(
        f"\nkill test: {len(in_flight)} sends in flight at the kill, {duplicates} duplicates (bound {len(in_flight)})"
    )
    assert duplicates <= len(in_flight)
