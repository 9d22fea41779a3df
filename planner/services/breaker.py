"""A circuit breaker per adapter, stored in the database so every replica sees the same circuit.

Closed: calls go through; consecutive failures to reach the agent (`AgentUnavailable`, `AgentTimeout`) are
counted, and the circuit opens at the threshold. A call the agent answered, even with a refusal, is not a
failure: the agent is there. Open: calls are refused. Half-open: once the cool-down has passed, one probe, a health
check of the agent (`check_health`, never somebody's call), is let through, under a lease so a prober that dies
does not wedge the circuit; its success closes the circuit, its failure opens it again for another cool-down.
The gated agent (planner/governance/gated_agent.py) applies the circuit to every call and tells it how each went.

The transitions are pure functions of a `Circuit` (planner/domain/circuits.py); `Breakers` applies them with a
compare-and-set on the row's version, so concurrent replicas never lose a failure or let two probes through. Most
calls change nothing (a closed circuit lets a call through as it is): those are answered from a plain read, without a
write transaction. A success needs no compare-and-set, as it resets the circuit whatever it was: it is one
conditional UPDATE (`succeeded_in` runs it in a caller's transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from planner.domain.circuits import BreakerSettings, Circuit, Permit
from planner.ports import Agent
from planner.store import Connection, Store
from planner.store.adapters import (
    circuit_of,
    circuits_of,
    close_circuit,
    insert_circuit,
    update_circuit,
    versioned_circuit,
)

T = TypeVar("T")
_ATTEMPTS = 20


class Breakers:
    """The circuits of one tenant's adapters."""

    def __init__(self, store: Store, tenant_id: str, settings: BreakerSettings | None = None) -> None:
        self._store = store
        self.tenant_id = tenant_id
        self.settings = settings or BreakerSettings()

    async def state(self, adapter: str) -> Circuit:
        """The circuit of `adapter` now (closed if it never failed)."""
        async with self._store.read() as conn:
            return await circuit_of(conn, self.tenant_id, adapter)

    async def states(self) -> dict[str, Circuit]:
        """Every stored circuit of the tenant by adapter name (an adapter missing from it is closed)."""
        async with self._store.read() as conn:
            return await circuits_of(conn, self.tenant_id)

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

    async def succeeded_in(self, conn: Connection, adapter: str) -> None:
        """`succeeded`, in the caller's transaction.

        One UPDATE, needing no compare-and-set as it resets the circuit whatever it was; it matches no row (and
        writes nothing) while the circuit is closed with nothing to forget, or was never stored.
        """
        await close_circuit(conn, self.tenant_id, adapter, at=self._store.clock())

    async def failed(self, adapter: str, error: str | None) -> Circuit:
        """The agent could not be reached: one more failure, and the circuit may open. `error`: what the agent or its
        adapter said of it, None when it said nothing."""
        now = self._store.clock()
        said = error[:2000] if error else None
        return await self._apply(adapter, lambda circuit: circuit.after_failure(now, self.settings, said))

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
        return await self.failed(adapter, health.detail or None)

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
        for _attempt in range(_ATTEMPTS):
            async with self._store.transaction() as conn:
                before, version = await versioned_circuit(conn, self.tenant_id, adapter)
                after, answer = transition(before)
                if after == before:
                    return answer
                now = self._store.clock()
                if version is None:
                    if not await insert_circuit(conn, self.tenant_id, after, at=now):
                        continue  # another replica wrote the first row: read it and apply again
                    return answer
                if await update_circuit(conn, self.tenant_id, after, version=version, at=now):
                    return answer
        raise RuntimeError(f"the circuit of {adapter!r} kept changing under {_ATTEMPTS} attempts to update it")
