"""Registered adapters, their tools, their capabilities' gates and their circuit breakers: the one writer of
`adapters`, `adapter_tools`, `capability_gates` and `circuit_breakers`.

The registry (planner/services/registry.py) and the breakers (planner/services/breaker.py) both go through here.
Adapters are read without their sealed secrets and session unless a function says it returns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Label, bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from planner.domain.adapters import AdapterTool, CapabilityGates, RegisteredAdapter, ToolState
from planner.domain.circuits import Circuit, CircuitState
from planner.domain.governance import GateCategory
from planner.store import Connection
from planner.store.schema import adapter_tools, adapters, capability_gates, circuit_breakers

# ---- adapters ------------------------------------------------------------------------------------------------

ADAPTER_COLUMNS = tuple(column for column in adapters.c if column.name not in ("secrets", "session"))
"""What makes a `RegisteredAdapter`: never the secrets or the session."""


def adapter_columns(prefix: str) -> tuple[Label[Any], ...]:
    """`ADAPTER_COLUMNS` labelled `<prefix><name>`, for a query joining adapters to another table."""
    return tuple(column.label(f"{prefix}{column.name}") for column in ADAPTER_COLUMNS)


def adapter_from(values: RowMapping, prefix: str = "") -> RegisteredAdapter | None:
    """The adapter in a row's values named `<prefix><column>` (None when an outer join found none)."""
    if values[f"{prefix}id"] is None:
        return None
    return RegisteredAdapter(
        id=values[f"{prefix}id"],
        tenant_id=values[f"{prefix}tenant_id"],
        kind=values[f"{prefix}kind"],
        name=values[f"{prefix}name"],
        config=dict(values[f"{prefix}config"]),
        secret_fields=tuple(values[f"{prefix}secret_fields"]),
        enabled=values[f"{prefix}enabled"],
        created_by=values[f"{prefix}created_by"],
        created_at=values[f"{prefix}created_at"],
        updated_at=values[f"{prefix}updated_at"],
        version=values[f"{prefix}version"],
    )


def _adapter(values: RowMapping) -> RegisteredAdapter:
    adapter = adapter_from(values)
    assert adapter is not None
    return adapter


# Built once: every delegation reads its adapter, and building the statement anew costs about as much as running it.
_BY_NAME = select(*ADAPTER_COLUMNS).where(
    adapters.c.tenant_id == bindparam("tenant"), adapters.c.name == bindparam("name")
)


async def find_adapter(conn: Connection, tenant_id: str, name: str) -> RegisteredAdapter | None:
    """The tenant's adapter called `name` (a bare name), or None."""
    row = (await conn.execute(_BY_NAME, {"tenant": tenant_id, "name": name})).mappings().first()
    return _adapter(row) if row is not None else None


async def adapter_names(conn: Connection, tenant_id: str) -> list[str]:
    """The names of the tenant's adapters."""
    query = select(adapters.c.name).where(adapters.c.tenant_id == tenant_id)
    return list((await conn.execute(query)).scalars())


async def list_adapters(conn: Connection, tenant_id: str, *, kind: str | None = None) -> list[RegisteredAdapter]:
    """The tenant's adapters (of one kind, when given) by name."""
    query = select(*ADAPTER_COLUMNS).where(adapters.c.tenant_id == tenant_id)
    if kind is not None:
        query = query.where(adapters.c.kind == kind)
    rows = (await conn.execute(query.order_by(adapters.c.name))).mappings().all()
    return [_adapter(row) for row in rows]


async def sealed_secrets(conn: Connection, adapter_id: int) -> bytes | None:
    """The adapter's sealed secrets (one vault token), or None when it has none."""
    query = select(adapters.c.secrets).where(adapters.c.id == adapter_id)
    return (await conn.execute(query)).scalar()


async def insert_adapter(
    conn: Connection,
    *,
    tenant_id: str,
    kind: str,
    name: str,
    config: dict[str, Any],
    secret_fields: list[str],
    secrets: bytes | None,
    enabled: bool,
    created_by: str,
    at: datetime,
) -> RegisteredAdapter | None:
    """Store a new adapter; None when the tenant has one of that name already (nothing is written then)."""
    statement = (
        insert(adapters)
        .values(
            tenant_id=tenant_id,
            kind=kind,
            name=name,
            config=config,
            secret_fields=secret_fields,
            secrets=secrets,
            enabled=enabled,
            created_by=created_by,
            created_at=at,
            updated_at=at,
            version=1,
        )
        .returning(*ADAPTER_COLUMNS)
    )
    try:
        async with conn.begin_nested():
            row = (await conn.execute(statement)).mappings().one()
    except IntegrityError:
        return None
    return _adapter(row)


async def update_adapter(conn: Connection, adapter_id: int, *, at: datetime, **values: Any) -> RegisteredAdapter:
    """Write `values` (config, secret_fields, secrets, enabled) over the adapter, one version on."""
    statement = (
        update(adapters)
        .where(adapters.c.id == adapter_id)
        .values(updated_at=at, version=adapters.c.version + 1, **values)
        .returning(*ADAPTER_COLUMNS)
    )
    return _adapter((await conn.execute(statement)).mappings().one())


async def delete_adapter(conn: Connection, adapter: RegisteredAdapter) -> None:
    """Forget the adapter, with its secrets, its session, its tools, its capabilities' gates and its circuit."""
    await conn.execute(delete(adapters).where(adapters.c.id == adapter.id))
    await conn.execute(
        delete(capability_gates).where(
            capability_gates.c.tenant_id == adapter.tenant_id, capability_gates.c.adapter == adapter.name
        )
    )
    await conn.execute(
        delete(adapter_tools).where(
            adapter_tools.c.tenant_id == adapter.tenant_id, adapter_tools.c.adapter == adapter.name
        )
    )
    await conn.execute(
        delete(circuit_breakers).where(
            circuit_breakers.c.tenant_id == adapter.tenant_id, circuit_breakers.c.adapter == adapter.name
        )
    )


async def load_session(conn: Connection, tenant_id: str, name: str) -> bytes | None:
    """The adapter's saved (encrypted) session, or None."""
    query = select(adapters.c.session).where(adapters.c.tenant_id == tenant_id, adapters.c.name == name)
    return (await conn.execute(query)).scalar()


async def save_session(conn: Connection, tenant_id: str, name: str, state: bytes) -> None:
    """Keep `state` as the adapter's session (nothing is written when the adapter is gone)."""
    await conn.execute(
        update(adapters).where(adapters.c.tenant_id == tenant_id, adapters.c.name == name).values(session=state)
    )


@dataclass(frozen=True, kw_only=True)
class SealedAdapter:
    """An adapter with what it keeps sealed with the vault's key."""

    adapter: RegisteredAdapter
    secrets: bytes | None
    session: bytes | None


async def sealed_adapters(conn: Connection) -> list[SealedAdapter]:
    """Every tenant's adapters that keep secrets or a session."""
    sealed = (adapters.c.secrets.is_not(None)) | (adapters.c.session.is_not(None))
    rows = (await conn.execute(select(adapters).where(sealed))).mappings().all()
    return [SealedAdapter(adapter=_adapter(row), secrets=row["secrets"], session=row["session"]) for row in rows]


async def reseal_adapter(conn: Connection, was: SealedAdapter, *, secrets: bytes | None, session: bytes | None) -> bool:
    """Replace the adapter's sealed values, if they are still those of `was`; False when they changed meanwhile."""
    columns = adapters.c
    result = await conn.execute(
        update(adapters)
        .where(
            columns.id == was.adapter.id,
            columns.secrets.is_(None) if was.secrets is None else columns.secrets == was.secrets,
            columns.session.is_(None) if was.session is None else columns.session == was.session,
        )
        .values(secrets=secrets, session=session)
    )
    return result.rowcount == 1


# ---- tools ---------------------------------------------------------------------------------------------------


def _tool(row: RowMapping) -> AdapterTool:
    return AdapterTool(
        tenant_id=row["tenant_id"],
        adapter=row["adapter"],
        capability=row["capability"],
        state=ToolState(row["state"]),
        definition=dict(row["definition"]),
        pin=row["pin"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        held_reason=row["held_reason"],
    )


_TOOL = select(adapter_tools).where(
    adapter_tools.c.tenant_id == bindparam("tenant"),
    adapter_tools.c.adapter == bindparam("adapter_name"),
    adapter_tools.c.capability == bindparam("capability"),
)
"""Built once: every delegation to an adapter whose tools are enabled one by one reads its tool."""


async def tool_of(conn: Connection, tenant_id: str, adapter: str, capability: str) -> AdapterTool | None:
    """The stored state of the adapter's tool `capability`, or None (it is off)."""
    values = {"tenant": tenant_id, "adapter_name": adapter, "capability": capability}
    row = (await conn.execute(_TOOL, values)).mappings().first()
    return _tool(row) if row is not None else None


async def tools_of(conn: Connection, tenant_id: str, adapter: str) -> list[AdapterTool]:
    """The adapter's enabled and held tools, by capability."""
    query = (
        select(adapter_tools)
        .where(adapter_tools.c.tenant_id == tenant_id, adapter_tools.c.adapter == adapter)
        .order_by(adapter_tools.c.capability)
    )
    return [_tool(row) for row in (await conn.execute(query)).mappings().all()]


async def put_tool(conn: Connection, tool: AdapterTool) -> None:
    """Store `tool` in place of what the adapter's tool of that name was (enabled, held or off)."""
    await delete_tool(conn, tool.tenant_id, tool.adapter, tool.capability)
    await conn.execute(
        insert(adapter_tools).values(
            tenant_id=tool.tenant_id,
            adapter=tool.adapter,
            capability=tool.capability,
            state=tool.state.value,
            definition=tool.definition,
            pin=tool.pin,
            decided_by=tool.decided_by,
            decided_at=tool.decided_at,
            held_reason=tool.held_reason,
        )
    )


async def hold_tool(conn: Connection, tool: AdapterTool, *, reason: str) -> bool:
    """Hold the enabled tool `tool` (as it was read); False when it changed meanwhile (held or switched off)."""
    columns = adapter_tools.c
    result = await conn.execute(
        update(adapter_tools)
        .where(
            columns.tenant_id == tool.tenant_id,
            columns.adapter == tool.adapter,
            columns.capability == tool.capability,
            columns.state == ToolState.ENABLED.value,
            columns.pin == tool.pin,
        )
        .values(state=ToolState.HELD.value, held_reason=reason)
    )
    return result.rowcount == 1


async def delete_tool(conn: Connection, tenant_id: str, adapter: str, capability: str) -> bool:
    """Switch the adapter's tool off (forget its state); False when it was off already."""
    columns = adapter_tools.c
    result = await conn.execute(
        delete(adapter_tools).where(
            columns.tenant_id == tenant_id, columns.adapter == adapter, columns.capability == capability
        )
    )
    return result.rowcount == 1


# ---- capability gates ----------------------------------------------------------------------------------------


_GATE_NAMES = {category.value: category for category in GateCategory}


def _known_gates(stored: Any) -> tuple[GateCategory, ...]:
    return tuple(_GATE_NAMES[c] for c in stored or () if c in _GATE_NAMES)


def _gates(row: RowMapping) -> CapabilityGates:
    return CapabilityGates(
        tenant_id=row["tenant_id"],
        adapter=row["adapter"],
        capability=row["capability"],
        categories=_known_gates(row["categories"]),
        classified_by=row["classified_by"],
        classified_at=row["classified_at"],
    )


_GATES = select(capability_gates.c.categories).where(
    capability_gates.c.tenant_id == bindparam("tenant"),
    capability_gates.c.adapter == bindparam("adapter_name"),
    capability_gates.c.capability == bindparam("capability"),
)
"""Built once: the gate reads it before every call of an agent."""


async def gates_of(conn: Connection, tenant_id: str, adapter: str, capability: str) -> tuple[GateCategory, ...]:
    """The gates the adapter's capability is classified under (none when it is unclassified)."""
    values = {"tenant": tenant_id, "adapter_name": adapter, "capability": capability}
    return _known_gates((await conn.execute(_GATES, values)).scalar())


async def classification_of(conn: Connection, tenant_id: str, adapter: str, capability: str) -> CapabilityGates | None:
    """The adapter's capability's classification as stored, or None (unclassified)."""
    columns = capability_gates.c
    query = select(capability_gates).where(
        columns.tenant_id == tenant_id, columns.adapter == adapter, columns.capability == capability
    )
    row = (await conn.execute(query)).mappings().first()
    return _gates(row) if row is not None else None


async def classifications_of(conn: Connection, tenant_id: str, adapter: str | None = None) -> list[CapabilityGates]:
    """The tenant's classified capabilities (of one adapter, when given), by adapter and capability."""
    columns = capability_gates.c
    query = select(capability_gates).where(columns.tenant_id == tenant_id)
    if adapter is not None:
        query = query.where(columns.adapter == adapter)
    rows = (await conn.execute(query.order_by(columns.adapter, columns.capability))).mappings().all()
    return [_gates(row) for row in rows]


async def put_classification(conn: Connection, gates: CapabilityGates) -> None:
    """Store `gates` in place of the capability's classification; no gates at all forgets it (unclassified)."""
    columns = capability_gates.c
    await conn.execute(
        delete(capability_gates).where(
            columns.tenant_id == gates.tenant_id,
            columns.adapter == gates.adapter,
            columns.capability == gates.capability,
        )
    )
    if gates.categories:
        await conn.execute(
            insert(capability_gates).values(
                tenant_id=gates.tenant_id,
                adapter=gates.adapter,
                capability=gates.capability,
                categories=[c.value for c in gates.categories],
                classified_by=gates.classified_by,
                classified_at=gates.classified_at,
            )
        )


# ---- circuit breakers ----------------------------------------------------------------------------------------

CIRCUIT_COLUMNS = (
    circuit_breakers.c.adapter,
    circuit_breakers.c.state,
    circuit_breakers.c.failures,
    circuit_breakers.c.opened_at,
    circuit_breakers.c.probe_until,
    circuit_breakers.c.last_error,
)
"""What makes a `Circuit`."""


def circuit_columns(prefix: str) -> tuple[Label[Any], ...]:
    """`CIRCUIT_COLUMNS` labelled `<prefix><name>`, for a query joining circuits to another table."""
    return tuple(column.label(f"{prefix}{column.name}") for column in CIRCUIT_COLUMNS)


def circuit_from(values: RowMapping, adapter: str, prefix: str = "") -> Circuit:
    """The circuit of `adapter` in a row's values named `<prefix><column>` (closed when an outer join found none)."""
    if values[f"{prefix}adapter"] is None:
        return Circuit(adapter=adapter)
    return Circuit(
        adapter=values[f"{prefix}adapter"],
        state=CircuitState(values[f"{prefix}state"]),
        failures=values[f"{prefix}failures"],
        opened_at=values[f"{prefix}opened_at"],
        probe_until=values[f"{prefix}probe_until"],
        last_error=values[f"{prefix}last_error"],
    )


def _circuit_key(tenant_id: str, adapter: str) -> Any:
    return (circuit_breakers.c.tenant_id == tenant_id) & (circuit_breakers.c.adapter == adapter)


async def circuit_of(conn: Connection, tenant_id: str, adapter: str) -> Circuit:
    """The circuit of `adapter` (closed if none is stored)."""
    return (await versioned_circuit(conn, tenant_id, adapter))[0]


async def versioned_circuit(conn: Connection, tenant_id: str, adapter: str) -> tuple[Circuit, int | None]:
    """The circuit of `adapter` and its stored version (None: none is stored, the circuit is closed)."""
    query = select(*CIRCUIT_COLUMNS, circuit_breakers.c.version).where(_circuit_key(tenant_id, adapter))
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return Circuit(adapter=adapter), None
    return circuit_from(row, adapter), row["version"]


async def circuits_of(conn: Connection, tenant_id: str) -> dict[str, Circuit]:
    """Every stored circuit of the tenant by adapter name."""
    query = select(*CIRCUIT_COLUMNS).where(circuit_breakers.c.tenant_id == tenant_id)
    rows = (await conn.execute(query)).mappings().all()
    return {row["adapter"]: circuit_from(row, row["adapter"]) for row in rows}


def _written(circuit: Circuit, at: datetime) -> dict[str, Any]:
    return dict(
        state=circuit.state.value,
        failures=circuit.failures,
        opened_at=circuit.opened_at,
        probe_until=circuit.probe_until,
        last_error=circuit.last_error,
        updated_at=at,
    )


async def insert_circuit(conn: Connection, tenant_id: str, circuit: Circuit, *, at: datetime) -> bool:
    """Store the first row of a circuit; False when another writer stored it first (nothing is written then)."""
    row = dict(tenant_id=tenant_id, adapter=circuit.adapter, version=1, **_written(circuit, at))
    try:
        async with conn.begin_nested():
            await conn.execute(insert(circuit_breakers).values(**row))
    except IntegrityError:
        return False
    return True


async def update_circuit(conn: Connection, tenant_id: str, circuit: Circuit, *, version: int, at: datetime) -> bool:
    """Write `circuit` if its stored version is still `version`; False when another writer changed it."""
    statement = (
        update(circuit_breakers)
        .where(_circuit_key(tenant_id, circuit.adapter), circuit_breakers.c.version == version)
        .values(version=version + 1, **_written(circuit, at))
    )
    return (await conn.execute(statement)).rowcount == 1


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
"""Built once: every delegation runs it."""


async def close_circuit(conn: Connection, tenant_id: str, adapter: str, *, at: datetime) -> None:
    """Close the circuit and forget its failures; writes nothing while it is closed with nothing to forget, or was
    never stored."""
    await conn.execute(_CLOSE, {"tenant": tenant_id, "adapter_name": adapter, "now": at})
