"""Circuit breakers on every backend: open after N failures, one probe after the cool-down, shared by replicas."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from planner.domain.circuits import BreakerSettings, CircuitState
from planner.domain.errors import InvalidValue
from planner.services.breaker import Breakers
from planner.store import Store
from tests.conftest import Database, FakeClock
from tests.fakes.agents import ScriptedAgent

SETTINGS = BreakerSettings(failure_threshold=3, cool_down=timedelta(minutes=10), probe_lease=timedelta(minutes=2))


def breakers(store: Store, tenant: str = "contoso") -> Breakers:
    return Breakers(store, tenant, SETTINGS)


async def open_circuit(b: Breakers, adapter: str = "hubspot") -> None:
    for _ in range(SETTINGS.failure_threshold):
        await b.failed(adapter, "connection refused")


async def test_the_circuit_opens_after_n_consecutive_failures_and_refuses_calls(store: Store, clock: FakeClock) -> None:
    b = breakers(store)
    assert (await b.acquire("hubspot")).allowed
    await b.failed("hubspot", "connection refused")
    await b.failed("hubspot", "connection refused")
    assert (await b.acquire("hubspot")).allowed
    await b.failed("hubspot", "no answer within 60 s")
    circuit = await b.state("hubspot")
    assert (circuit.state, circuit.failures, circuit.last_error) == (CircuitState.OPEN, 3, "no answer within 60 s")
    permit = await b.acquire("hubspot")
    assert not permit.allowed
    assert permit.retry_at == clock.now + timedelta(minutes=10)


async def test_a_success_forgets_the_failures_before_it(store: Store) -> None:
    b = breakers(store)
    await b.failed("hubspot", "connection refused")
    await b.failed("hubspot", "connection refused")
    await b.succeeded("hubspot")
    await b.failed("hubspot", "connection refused")
    await b.failed("hubspot", "connection refused")
    assert (await b.state("hubspot")).state is CircuitState.CLOSED


async def test_after_the_cool_down_one_probe_goes_through_and_its_success_closes_the_circuit(
    store: Store, clock: FakeClock
) -> None:
    b = breakers(store)
    await open_circuit(b)
    clock.advance(minutes=9)
    assert not (await b.acquire("hubspot")).allowed
    clock.advance(minutes=1)
    probe = await b.acquire("hubspot")
    assert (probe.allowed, probe.probe, probe.circuit.state) == (True, True, CircuitState.HALF_OPEN)
    assert not (await b.acquire("hubspot")).allowed  # one probe at a time
    await b.succeeded("hubspot")
    assert (await b.state("hubspot")).state is CircuitState.CLOSED
    assert all([(await b.acquire("hubspot")).allowed for _ in range(3)])


async def test_a_failed_probe_opens_the_circuit_for_another_cool_down(store: Store, clock: FakeClock) -> None:
    b = breakers(store)
    await open_circuit(b)
    clock.advance(minutes=10)
    assert (await b.acquire("hubspot")).probe
    await b.failed("hubspot", "connection refused")
    permit = await b.acquire("hubspot")
    assert (permit.allowed, permit.circuit.state) == (False, CircuitState.OPEN)
    assert permit.retry_at == clock.now + timedelta(minutes=10)


async def test_a_probe_whose_caller_vanished_is_granted_again_after_its_lease(store: Store, clock: FakeClock) -> None:
    b = breakers(store)
    await open_circuit(b)
    clock.advance(minutes=10)
    assert (await b.acquire("hubspot")).probe
    clock.advance(minutes=1)
    assert not (await b.acquire("hubspot")).allowed
    clock.advance(minutes=1)
    assert (await b.acquire("hubspot")).probe


async def test_an_unused_probe_is_given_back_for_the_next_caller(store: Store, clock: FakeClock) -> None:
    b = breakers(store)
    await open_circuit(b)
    clock.advance(minutes=10)
    assert (await b.acquire("hubspot")).probe
    await b.release("hubspot")
    assert (await b.acquire("hubspot")).probe


async def test_every_replica_sees_the_same_circuit_and_no_failure_is_lost(
    store: Store, database: Database, clock: FakeClock
) -> None:
    replicas = [Store(database.engine(), clock=clock) for _ in range(3)]
    lenient = BreakerSettings(failure_threshold=100, cool_down=timedelta(minutes=10))
    try:
        await asyncio.gather(
            *(Breakers(r, "contoso", lenient).failed("hubspot", "refused") for r in replicas for _ in range(4))
        )
        assert (await breakers(store).state("hubspot")).failures == 12
        for _ in range(88):
            await Breakers(store, "contoso", lenient).failed("hubspot", "refused")
        assert not (await Breakers(replicas[0], "contoso", lenient).acquire("hubspot")).allowed
        clock.advance(minutes=10)
        permits = await asyncio.gather(*(Breakers(r, "contoso", lenient).acquire("hubspot") for r in replicas))
        assert sorted(p.allowed for p in permits) == [False, False, True]
    finally:
        for r in replicas:
            await r.close()


async def test_a_health_check_can_be_the_probe(store: Store, clock: FakeClock) -> None:
    b = breakers(store)
    agent = ScriptedAgent("hubspot", clock)
    await open_circuit(b)
    agent.healthy = True
    assert (await b.check_health("hubspot", agent)).state is CircuitState.OPEN  # still cooling down: not called
    clock.advance(minutes=10)
    agent.healthy = False
    assert (await b.check_health("hubspot", agent)).state is CircuitState.OPEN
    clock.advance(minutes=10)
    agent.healthy = True
    assert (await b.check_health("hubspot", agent)).state is CircuitState.CLOSED


async def test_circuits_are_kept_per_tenant_and_per_adapter(store: Store) -> None:
    await open_circuit(breakers(store), "hubspot")
    assert (await breakers(store).acquire("salesforce")).allowed
    assert (await breakers(store, "fabrikam").acquire("hubspot")).allowed
    assert set(await breakers(store).states()) == {"hubspot"}


def test_settings_that_make_no_sense_are_refused() -> None:
    with pytest.raises(InvalidValue, match="failure_threshold"):
        BreakerSettings(failure_threshold=0)
    with pytest.raises(InvalidValue, match="cool_down"):
        BreakerSettings(cool_down=timedelta(0))
