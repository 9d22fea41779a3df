"""A circuit breaker per adapter, stored in the database so every replica sees the same circuit.

Closed: calls go through; consecutive failures to reach the agent (`AgentUnavailable`, `AgentTimeout`) are
counted, and the circuit opens at the threshold. A call the agent answered, even with a refusal, is not a
failure: the agent is there. Open: calls are refused. Half-open: once the cool-down has passed, one probe, a health
check of the agent (`check_health`, never somebody's call), is let through, under a lease so a prober that dies
does not wedge the circuit; its success closes the circuit, its failure opens it again for another cool-down.
The gated agent (planner/governance/gated_agent.py) applies the circuit to every call and tells it how each went.

Transitions are pure functions of a `Circuit`; `Breakers` applies them with a compare-and-set on the row's
version, so concurrent replicas never lose a failure or let two probes through. Most calls change nothing (a closed
circuit lets a call through as it is): those are answered from a plain read, without a write transaction. A success
needs no compare-and-set, as it resets the circuit whatever it was: it is one conditional UPDATE (`succeeded_in`
runs it in a caller's transaction).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, bindparam, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from planner.domain.errors import InvalidValue
from planner.ports import Agent
from planner.store import Store
from planner.store.schema import circuit_breakers

T = TypeVar("T")
_ATTEMPTS = 20


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, kw_only=True)
class BreakerSettings:
    """When a circuit opens and how long it stays open."""

    failure_threshold: int = 5
    """Consecutive failures that open the circuit."""
    cool_down: timedelta = timedelta(minutes=5)
    """How long an open circuit refuses calls before it lets one probe through."""
    probe_lease: timedelta = timedelta(minutes=5)
    """How long a probe may take before another one is allowed (its prober is presumed dead)."""

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise InvalidValue("failure threshold", self.failure_threshold, "a whole number of failures, 1 or more")
        if self.cool_down <= timedelta(0):
            raise InvalidValue("cool-down", self.cool_down, "a positive duration, e.g. 5 minutes")
        if self.probe_lease <= timedelta(0):
            raise InvalidValue("probe lease", self.probe_lease, "a positive duration, e.g. 5 minutes")


@dataclass(frozen=True, kw_only=True)
class Circuit:
    """The breaker of one adapter; a circuit that never failed is closed."""

    adapter: str
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at: datetime | None = None
    probe_until: datetime | None = None
    last_error: str | None = None

    @property
    def clean(self) -> bool:
        """Closed with nothing to forget: a success leaves it as it is."""
        return self == Circuit(adapter=self.adapter)

    def retry_at(self, settings: BreakerSettings) -> datetime | None:
        """When a call may next go through (None: now)."""
        if self.state is CircuitState.OPEN and self.opened_at is not None:
            return self.opened_at + settings.cool_down
        if self.state is CircuitState.HALF_OPEN:
            return self.probe_until
        return None

    def allows(self, at: datetime, settings: BreakerSettings) -> bool:
        """Whether a call at `at` would be let through (as a normal call or as the probe); changes nothing."""
        retry_at = self.retry_at(settings)
        return retry_at is None or retry_at <= at

    def awaits_health_check(self, at: datetime, settings: BreakerSettings) -> bool:
        """Not closed, and past its cool-down at `at`: a health check of the agent decides whether calls go again."""
        return self.state is not CircuitState.CLOSED and self.allows(at, settings)

    def permit(self, at: datetime, settings: BreakerSettings) -> tuple[Circuit, Permit]:
        """The circuit after asking to call at `at`, and the answer."""
        if self.state is CircuitState.CLOSED:
            return self, Permit(allowed=True, circuit=self)
        if not self.allows(at, settings):
            return self, Permit(allowed=False, retry_at=self.retry_at(settings), circuit=self)
        probing = replace(self, state=CircuitState.HALF_OPEN, probe_until=at + settings.probe_lease)
        return probing, Permit(allowed=True, probe=True, circuit=probing)

    def after_failure(self, at: datetime, settings: BreakerSettings, error: str) -> Circuit:
        failures = self.failures + 1
        if self.state is CircuitState.HALF_OPEN or (
            self.state is CircuitState.CLOSED and failures >= settings.failure_threshold
        ):
            return replace(
                self, state=CircuitState.OPEN, failures=failures, opened_at=at, probe_until=None, last_error=error
            )
        # Open already (a call let through before it opened failed late): the cool-down runs from the opening.
        return replace(self, failures=failures, last_error=error)

    def after_unused_probe(self) -> Circuit:
        """The probe was granted but never made (a policy stopped the call): let another caller probe."""
        if self.state is CircuitState.HALF_OPEN:
            return replace(self, probe_until=None)
        return self


@dataclass(frozen=True, kw_only=True)
class Permit:
    """Whether a call may go through now; a probe's outcome decides the circuit."""

    allowed: bool
    probe: bool = False
    retry_at: datetime | None = None
    circuit: Circuit


CIRCUIT_COLUMNS = (
    circuit_breakers.c.adapter,
    circuit_breakers.c.state,
    circuit_breakers.c.failures,
    circuit_breakers.c.opened_at,
    circuit_breakers.c.probe_until,
    circuit_breakers.c.last_error,
)
"""What a row needs to make a `Circuit` (beside other tables' columns in a join: read by position, with
`circuit_in`)."""


def _circuit(row: Row[Any]) -> Circuit:
    values = row._mapping
    return _circuit_from([values[column] for column in CIRCUIT_COLUMNS])


def circuit_in(row: Sequence[Any], adapter: str, at: int) -> Circuit:
    """The circuit of `adapter` in a row that outer-joined `CIRCUIT_COLUMNS` from position `at` (closed when it found
    none)."""
    values = row[at : at + len(CIRCUIT_COLUMNS)]
    return _circuit_from(values) if values[0] is not None else Circuit(adapter=adapter)


def _circuit_from(values: Sequence[Any]) -> Circuit:
    """The circuit of the values of `CIRCUIT_COLUMNS`, in their order."""
    adapter, state, failures, opened_at, probe_until, last_error = values
    return Circuit(
        adapter=adapter,
        state=CircuitState(state),
        failures=failures,
        opened_at=opened_at,
        probe_until=probe_until,
        last_error=last_error,
    )


def _close_statement() -> Any:
    closed = Circuit(adapter="")
    columns = circuit_breakers.c
    to_reset = or_(
        columns.state != closed.state.value,
        columns.failures != closed.failures,
        columns.opened_at.is_not(None),
        columns.probe_until.is_not(None),
        columns.last_error.is_not(None),
    )
    return (
        update(circuit_breakers)
        .where(columns.tenant_id == bindparam("tenant"), columns.adapter == bindparam("adapter_name"), to_reset)
        .values(
            state=closed.state.value,
            failures=closed.failures,
            opened_at=closed.opened_at,
            probe_until=closed.probe_until,
            last_error=closed.last_error,
            updated_at=bindparam("now"),
            version=columns.version + 1,
        )
    )


_CLOSE = _close_statement()
"""A circuit closed with its failures forgotten (`succeeded`). Built once: every delegation runs it."""


class Breakers:
    """The circuits of one tenant's adapters."""

    def __init__(self, store: Store, tenant_id: str, settings: BreakerSettings | None = None) -> None:
        self._store = store
        self.tenant_id = tenant_id
        self.settings = settings or BreakerSettings()

    def _key(self, adapter: str) -> ColumnElement[bool]:
        return (circuit_breakers.c.tenant_id == self.tenant_id) & (circuit_breakers.c.adapter == adapter)

    async def state(self, adapter: str) -> Circuit:
        """The circuit of `adapter` now (closed if it never failed)."""
        async with self._store.engine.connect() as conn:
            row = (await conn.execute(select(circuit_breakers).where(self._key(adapter)))).first()
        return _circuit(row) if row is not None else Circuit(adapter=adapter)

    async def states(self) -> dict[str, Circuit]:
        """Every stored circuit of the tenant by adapter name (an adapter missing from it is closed)."""
        async with self._store.engine.connect() as conn:
            rows = (
                await conn.execute(select(circuit_breakers).where(circuit_breakers.c.tenant_id == self.tenant_id))
            ).all()
        return {row.adapter: _circuit(row) for row in rows}

    async def acquire(self, adapter: str, *, circuit: Circuit | None = None) -> Permit:
        """Ask to call `adapter` now. In half-open, only the first caller gets the (leased) probe.

        `circuit`: the adapter's circuit as the caller has just read it; when the answer changes nothing (a closed
        circuit, or an open one still cooling down) it is given without reading the circuit again.
        """
        now = self._store.clock()
        return await self._change(adapter, lambda current: current.permit(now, self.settings), known=circuit)

    async def succeeded(self, adapter: str) -> Circuit:
        """The agent answered: the circuit closes and its failures are forgotten."""
        closed = Circuit(adapter=adapter)
        if await self.state(adapter) != closed:  # a closed circuit with nothing to forget is left as it is
            async with self._store.transaction() as conn:
                await self.succeeded_in(conn, adapter)
        return closed

    async def succeeded_in(self, conn: AsyncConnection, adapter: str) -> None:
        """`succeeded`, in the caller's transaction.

        One UPDATE, needing no compare-and-set as it resets the circuit whatever it was; it matches no row (and
        writes nothing) while the circuit is closed with nothing to forget, or was never stored.
        """
        await conn.execute(_CLOSE, {"tenant": self.tenant_id, "adapter_name": adapter, "now": self._store.clock()})

    async def failed(self, adapter: str, error: str) -> Circuit:
        """The agent could not be reached: one more failure, and the circuit may open."""
        now = self._store.clock()
        return await self._apply(adapter, lambda circuit: circuit.after_failure(now, self.settings, error[:2000]))

    async def release(self, adapter: str) -> Circuit:
        """Give back a probe permit that was not used."""
        return await self._apply(adapter, lambda circuit: circuit.after_unused_probe())

    async def reset(self, adapter: str) -> Circuit:
        """Close the circuit by hand (an admin knows the system is back)."""
        return await self.succeeded(adapter)

    async def check_health(self, adapter: str, agent: Agent) -> Circuit:
        """Probe `adapter` with a health check if its circuit lets a call through; the answer moves the circuit.

        The scheduler calls this for open circuits past their cool-down, so deferred delegations wait for a
        cheap check rather than spend a real delegation on a system that is still down.
        """
        permit = await self.acquire(adapter)
        if not permit.allowed:
            return permit.circuit
        health = await agent.health()
        if health.ok:
            return await self.succeeded(adapter)
        return await self.failed(adapter, health.detail or "the health check failed")

    async def _apply(self, adapter: str, transition: Callable[[Circuit], Circuit]) -> Circuit:
        def both(circuit: Circuit) -> tuple[Circuit, Circuit]:
            after = transition(circuit)
            return after, after

        return await self._change(adapter, both)

    async def _change(
        self, adapter: str, transition: Callable[[Circuit], tuple[Circuit, T]], *, known: Circuit | None = None
    ) -> T:
        """Read the circuit, apply `transition`, and write it back if nobody wrote in between; else retry.

        A transition that changes nothing is answered from a plain read (or from `known`): no write transaction, so
        on SQLite it does not queue for the store's write lock.
        """
        read = known if known is not None else await self.state(adapter)
        after, answer = transition(read)
        if after == read:
            return answer
        key = self._key(adapter)
        for _attempt in range(_ATTEMPTS):
            async with self._store.transaction() as conn:
                row = (await conn.execute(select(circuit_breakers).where(key))).first()
                before = _circuit(row) if row is not None else Circuit(adapter=adapter)
                version = row.version if row is not None else 0
                after, answer = transition(before)
                if after == before:
                    return answer
                values = dict(
                    state=after.state.value,
                    failures=after.failures,
                    opened_at=after.opened_at,
                    probe_until=after.probe_until,
                    last_error=after.last_error,
                    updated_at=self._store.clock(),
                    version=version + 1,
                )
                if row is None:
                    try:
                        async with conn.begin_nested():
                            await conn.execute(
                                insert(circuit_breakers).values(tenant_id=self.tenant_id, adapter=adapter, **values)
                            )
                    except IntegrityError:
                        continue  # another replica wrote the first row: read it and apply again
                    return answer
                result = await conn.execute(
                    update(circuit_breakers).where(key, circuit_breakers.c.version == version).values(**values)
                )
                if result.rowcount == 1:
                    return answer
        raise RuntimeError(f"the circuit of {adapter!r} kept changing under {_ATTEMPTS} attempts to update it")
