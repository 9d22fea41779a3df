"""Delegations and their evidence: the one writer of `delegations` and `delegation_evidence`.

A runner holds a delegation under a lease: `claim` takes it with a single `UPDATE … RETURNING` that only matches a
runnable delegation nobody holds, and the writes of a claimed delegation (`start`, `let_go`, `finish`) only match while
the runner still holds it, so of several runners (or replicas) exactly one writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.engine import RowMapping

from planner.domain.adapters import RegisteredAdapter
from planner.domain.circuits import Circuit
from planner.domain.delegations import (
    CANCELLABLE,
    RUNNABLE,
    AdapterOutcomes,
    Delegation,
    DelegationStatus,
    OverdueDelegation,
    Prospect,
    StoredEvidence,
)
from planner.domain.model import Task, TaskStatus
from planner.store import Connection
from planner.store.adapters import adapter_columns, adapter_from, circuit_columns, circuit_from
from planner.store.schema import adapters, circuit_breakers, delegation_evidence, delegations, tasks
from planner.store.tasks import LABELLED_COLUMNS, labelled_task_from

_ADAPTER = "registered_"
_CIRCUIT = "circuit_"


def delegation_from(values: RowMapping) -> Delegation:
    """The delegation in a row's values, named as the delegations table's columns."""
    return Delegation(
        id=values["id"],
        tenant_id=values["tenant_id"],
        task_id=values["task_id"],
        adapter=values["adapter"],
        adapter_kind=values["adapter_kind"],
        capability=values["capability"],
        input=dict(values["input"]),
        timeout_seconds=values["timeout_seconds"],
        actor=values["actor"],
        status=DelegationStatus(values["status"]),
        output=values["output"],
        output_cut=values["output_cut"],
        data=values["data"],
        progress=tuple(values["progress"] or ()),
        live_card=values["live_card"],
        error=values["error"],
        queued_at=values["queued_at"],
        started_at=values["started_at"],
        finished_at=values["finished_at"],
        seconds=values["seconds"],
        attempts=values["attempts"],
        deferred_at=values["deferred_at"],
        retry_at=values["retry_at"],
        owner_told_at=values["owner_told_at"],
    )


def _statuses(statuses: Sequence[DelegationStatus]) -> list[str]:
    return [status.value for status in statuses]


# The statements every delegation runs, built once with bound parameters: building one anew (and its cache key)
# costs about as much CPU as running it on SQLite.
_THIS = and_(delegations.c.tenant_id == bindparam("tenant"), delegations.c.id == bindparam("delegation"))
_HELD = and_(
    _THIS,
    delegations.c.leased_by == bindparam("runner"),
    delegations.c.status == DelegationStatus.RUNNING.value,
)
"""The delegation, while this runner holds it. Parameters: tenant, delegation, runner."""
_QUEUE = insert(delegations).returning(delegations.c.id)
_ASK = (
    select(*LABELLED_COLUMNS, *adapter_columns(_ADAPTER), *circuit_columns(_CIRCUIT))
    .select_from(
        tasks.outerjoin(
            adapters, and_(adapters.c.tenant_id == tasks.c.tenant_id, adapters.c.name == bindparam("adapter"))
        ).outerjoin(
            circuit_breakers,
            and_(circuit_breakers.c.tenant_id == tasks.c.tenant_id, circuit_breakers.c.adapter == bindparam("adapter")),
        )
    )
    .where(tasks.c.tenant_id == bindparam("tenant"), tasks.c.id == bindparam("task"))
)
"""What a request needs, in one statement: the task, the adapter (if registered) and its circuit (if stored)."""
_PROSPECT = (
    select(
        delegations,
        *adapter_columns(_ADAPTER),
        *circuit_columns(_CIRCUIT),
        tasks.c.owner.label("task_owner"),
        tasks.c.status.label("task_status"),
    )
    .select_from(
        delegations.outerjoin(
            adapters, and_(adapters.c.tenant_id == delegations.c.tenant_id, adapters.c.name == delegations.c.adapter)
        )
        .outerjoin(
            circuit_breakers,
            and_(
                circuit_breakers.c.tenant_id == delegations.c.tenant_id,
                circuit_breakers.c.adapter == delegations.c.adapter,
            ),
        )
        .join(tasks, tasks.c.id == delegations.c.task_id)
    )
    .where(_THIS)
)
"""The delegation, its adapter (if still registered), the adapter's circuit (if stored) and the task's owner."""


def _claim_statement(*, start: bool) -> Any:
    """Parameters: tenant, delegation, runner, now, lease_end."""
    takeable = delegations.c.status.in_(_statuses(RUNNABLE))
    values: dict[str, Any] = dict(
        status=DelegationStatus.RUNNING.value, leased_by=bindparam("runner"), lease_until=bindparam("lease_end")
    )
    if start:
        values.update(started_at=bindparam("now"), attempts=delegations.c.attempts + 1)
    return update(delegations).where(_THIS, takeable).values(**values).returning(delegations)


_CLAIM = _claim_statement(start=False)
_CLAIM_AND_START = _claim_statement(start=True)
_FINISH = (
    update(delegations)
    .where(_HELD)
    .values(
        status=bindparam("outcome"),
        output=bindparam("answer"),
        output_cut=bindparam("answer_cut"),
        data=bindparam("answer_data"),
        progress=bindparam("steps"),
        error=bindparam("failure"),
        finished_at=bindparam("now"),
        seconds=bindparam("took"),
        leased_by=None,
        lease_until=None,
        retry_at=None,
    )
)
_KEEP_EVIDENCE = insert(delegation_evidence)


# ---- reading -----------------------------------------------------------------------------------------------------


async def get_delegation(conn: Connection, tenant_id: str, delegation_id: int) -> Delegation | None:
    """One delegation of the tenant, or None."""
    query = select(delegations).where(delegations.c.tenant_id == tenant_id, delegations.c.id == delegation_id)
    row = (await conn.execute(query)).mappings().first()
    return delegation_from(row) if row is not None else None


async def locked_delegation(conn: Connection, tenant_id: str, delegation_id: int) -> Delegation | None:
    """One delegation of the tenant, locked for the caller's transaction (on PostgreSQL), or None."""
    query = select(delegations).where(delegations.c.tenant_id == tenant_id, delegations.c.id == delegation_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    return delegation_from(row) if row is not None else None


async def delegations_of_task(conn: Connection, tenant_id: str, task_id: int) -> list[Delegation]:
    """A task's delegations, newest first."""
    query = (
        select(delegations)
        .where(delegations.c.tenant_id == tenant_id, delegations.c.task_id == task_id)
        .order_by(delegations.c.id.desc())
    )
    return [delegation_from(row) for row in (await conn.execute(query)).mappings().all()]


async def list_delegations(
    conn: Connection, tenant_id: str, *, status: DelegationStatus | None = None, limit: int = 100
) -> list[Delegation]:
    """The tenant's delegations, newest first, optionally in one status."""
    query = select(delegations).where(delegations.c.tenant_id == tenant_id)
    if status is not None:
        query = query.where(delegations.c.status == status.value)
    query = query.order_by(delegations.c.id.desc()).limit(limit)
    return [delegation_from(row) for row in (await conn.execute(query)).mappings().all()]


async def open_delegations(
    conn: Connection, tenant_id: str, statuses: Sequence[DelegationStatus], *, actor: str | None = None, limit: int
) -> list[Delegation]:
    """The tenant's delegations in `statuses` (asked for by `actor`, when given), newest first, `limit` at most."""
    query = select(delegations).where(
        delegations.c.tenant_id == tenant_id, delegations.c.status.in_(_statuses(statuses))
    )
    if actor is not None:
        query = query.where(delegations.c.actor == actor)
    query = query.order_by(delegations.c.id.desc()).limit(limit)
    return [delegation_from(row) for row in (await conn.execute(query)).mappings().all()]


async def adapter_outcomes(conn: Connection, tenant_id: str) -> dict[str, AdapterOutcomes]:
    """How each adapter's delegations last went (adapters with no finished delegation are left out)."""
    columns = delegations.c
    finished = columns.finished_at.is_not(None)
    mine = columns.tenant_id == tenant_id
    succeeded = (
        select(columns.adapter, func.max(columns.finished_at).label("at"))
        .where(mine, finished, columns.status == DelegationStatus.SUCCEEDED.value)
        .group_by(columns.adapter)
    )
    failing = _statuses((DelegationStatus.FAILED, DelegationStatus.UNKNOWN))
    last_failed = (
        select(columns.adapter, func.max(columns.id).label("id"))
        .where(mine, finished, columns.status.in_(failing))
        .group_by(columns.adapter)
        .subquery()
    )
    failed = select(columns.adapter, columns.finished_at, columns.error).join(
        last_failed, columns.id == last_failed.c.id
    )
    rows = await conn.execute(succeeded)
    found = {row.adapter: AdapterOutcomes(adapter=row.adapter, last_success=row.at) for row in rows}
    for row in await conn.execute(failed):
        was = found.get(row.adapter, AdapterOutcomes(adapter=row.adapter))
        found[row.adapter] = AdapterOutcomes(
            adapter=row.adapter, last_success=was.last_success, last_failure=row.finished_at, last_error=row.error
        )
    return found


async def delegations_in(conn: Connection, tenant_id: str, statuses: Sequence[DelegationStatus]) -> list[Delegation]:
    """The tenant's delegations in `statuses`, oldest first."""
    query = (
        select(delegations)
        .where(delegations.c.tenant_id == tenant_id, delegations.c.status.in_(_statuses(statuses)))
        .order_by(delegations.c.queued_at, delegations.c.id)
    )
    return [delegation_from(row) for row in (await conn.execute(query)).mappings().all()]


async def adapters_with_delegations_in(conn: Connection, tenant_id: str, status: DelegationStatus) -> list[str]:
    """The adapters with a delegation of the tenant in `status`, by name."""
    query = (
        select(delegations.c.adapter)
        .where(delegations.c.tenant_id == tenant_id, delegations.c.status == status.value)
        .distinct()
    )
    return sorted((await conn.execute(query)).scalars())


async def cancellable_of_task(conn: Connection, tenant_id: str, task_id: int) -> list[int]:
    """The ids of the task's delegations no agent is working on."""
    query = select(delegations.c.id).where(
        delegations.c.tenant_id == tenant_id,
        delegations.c.task_id == task_id,
        delegations.c.status.in_(_statuses(CANCELLABLE)),
    )
    return list((await conn.execute(query)).scalars())


async def kept_evidence_ids(conn: Connection) -> list[int]:
    """Every tenant's evidence items whose content is kept (to re-encrypt them with a new key)."""
    query = select(delegation_evidence.c.id).where(delegation_evidence.c.content.is_not(None))
    return list((await conn.execute(query.order_by(delegation_evidence.c.id))).scalars())


async def evidence_content(conn: Connection, evidence_id: int) -> bytes:
    query = select(delegation_evidence.c.content).where(delegation_evidence.c.id == evidence_id)
    return bytes((await conn.execute(query)).scalar_one())


async def reseal_evidence(conn: Connection, evidence_id: int, content: bytes) -> None:
    """Replace an evidence item's (encrypted) content, re-encrypted."""
    await conn.execute(
        update(delegation_evidence).where(delegation_evidence.c.id == evidence_id).values(content=content)
    )


async def evidence_of(conn: Connection, tenant_id: str, delegation_id: int) -> list[StoredEvidence]:
    """What the agent showed for a delegation, in the order it gave it."""
    query = (
        select(delegation_evidence)
        .where(delegation_evidence.c.tenant_id == tenant_id, delegation_evidence.c.delegation_id == delegation_id)
        .order_by(delegation_evidence.c.id)
    )
    return [
        StoredEvidence(
            id=row.id,
            delegation_id=row.delegation_id,
            kind=row.kind,
            media_type=row.media_type,
            description=row.description,
            size=row.size,
            content=row.content,
        )
        for row in (await conn.execute(query)).all()
    ]


async def task_is_done(conn: Connection, task_id: int) -> bool:
    """Whether the delegation's task is done."""
    status = (await conn.execute(select(tasks.c.status).where(tasks.c.id == task_id))).scalar_one()
    return bool(status == TaskStatus.DONE.value)


async def overdue_delegations(conn: Connection, day: date, *, tenant_id: str | None = None) -> list[OverdueDelegation]:
    """Every tenant's (or one tenant's) tasks' latest delegations that did not succeed while their open task fell due
    before `day`."""
    latest = select(func.max(delegations.c.id)).group_by(delegations.c.task_id)
    if tenant_id is not None:
        latest = latest.where(delegations.c.tenant_id == tenant_id)
    query = (
        select(delegations, tasks.c.title.label("task_title"), tasks.c.owner.label("task_owner"), tasks.c.due_on)
        .join(tasks, tasks.c.id == delegations.c.task_id)
        .where(
            delegations.c.id.in_(latest.scalar_subquery()),
            delegations.c.status != DelegationStatus.SUCCEEDED.value,
            tasks.c.status != TaskStatus.DONE.value,
            tasks.c.due_on < day,
        )
        .order_by(tasks.c.due_on, delegations.c.id)
    )
    return [
        OverdueDelegation(
            delegation=delegation_from(row),
            task_title=row["task_title"],
            task_owner=row["task_owner"],
            due_on=row["due_on"],
        )
        for row in (await conn.execute(query)).mappings().all()
    ]


async def tenants_with_delegations_in(conn: Connection, statuses: Sequence[DelegationStatus]) -> list[str]:
    """The tenants with a delegation in `statuses`, sorted."""
    query = (
        select(delegations.c.tenant_id)
        .where(delegations.c.status.in_(_statuses(statuses)))
        .distinct()
        .order_by(delegations.c.tenant_id)
    )
    return list((await conn.execute(query)).scalars())


@dataclass(frozen=True, kw_only=True)
class RequestFacts:
    """What a delegation request reads: the task, the adapter (None: no such adapter) and the adapter's circuit."""

    task: Task
    adapter: RegisteredAdapter | None
    circuit: Circuit


async def request_facts(conn: Connection, tenant_id: str, task_id: int, adapter: str) -> RequestFacts | None:
    """The task, the adapter named `adapter` (a bare name) and its circuit, in one statement; None: no such task."""
    row = (await conn.execute(_ASK, {"tenant": tenant_id, "task": task_id, "adapter": adapter})).mappings().first()
    if row is None:
        return None
    return RequestFacts(
        task=labelled_task_from(row),
        adapter=adapter_from(row, _ADAPTER),
        circuit=circuit_from(row, adapter, _CIRCUIT),
    )


async def prospect(conn: Connection, tenant_id: str, delegation_id: int) -> Prospect | None:
    """What a runner reads before it claims the delegation, in one statement; None: no such delegation."""
    row = (await conn.execute(_PROSPECT, {"tenant": tenant_id, "delegation": delegation_id})).mappings().first()
    if row is None:
        return None
    delegation = delegation_from(row)
    return Prospect(
        delegation=delegation,
        adapter=adapter_from(row, _ADAPTER),
        circuit=circuit_from(row, delegation.adapter, _CIRCUIT),
        owner=row["task_owner"],
        task_done=row["task_status"] == TaskStatus.DONE.value,
    )


# ---- writing -----------------------------------------------------------------------------------------------------


async def insert_delegation(
    conn: Connection, delegation: Delegation, *, leased_by: str | None = None, lease_until: datetime | None = None
) -> int:
    """Store a new delegation (its `id` is not used), held by `leased_by` when given; returns its id."""
    values = {
        "tenant_id": delegation.tenant_id,
        "task_id": delegation.task_id,
        "adapter": delegation.adapter,
        "adapter_kind": delegation.adapter_kind,
        "capability": delegation.capability,
        "input": delegation.input,
        "timeout_seconds": delegation.timeout_seconds,
        "actor": delegation.actor,
        "status": delegation.status.value,
        "queued_at": delegation.queued_at,
        "started_at": delegation.started_at,
        "attempts": delegation.attempts,
    }
    if leased_by is not None:
        values.update(leased_by=leased_by, lease_until=lease_until)
    return int((await conn.execute(_QUEUE, values)).scalar_one())


async def claim(
    conn: Connection,
    tenant_id: str,
    delegation_id: int,
    *,
    runner: str,
    now: datetime,
    lease_end: datetime,
    start: bool,
) -> Delegation | None:
    """Take a runnable delegation nobody holds for `runner` until `lease_end` (and with `start`, start it: one more
    attempt); None when it is held or finished."""
    params = {"tenant": tenant_id, "delegation": delegation_id, "runner": runner, "now": now, "lease_end": lease_end}
    row = (await conn.execute(_CLAIM_AND_START if start else _CLAIM, params)).mappings().first()
    return delegation_from(row) if row is not None else None


def _holding(tenant_id: str, delegation_id: int, runner: str) -> dict[str, Any]:
    return {"tenant": tenant_id, "delegation": delegation_id, "runner": runner}


async def extend_lease(conn: Connection, tenant_id: str, delegation_id: int, *, runner: str, until: datetime) -> bool:
    """Hold the running delegation `runner` holds until `until`; False when it no longer holds it."""
    statement = update(delegations).where(_HELD).values(lease_until=bindparam("until"))
    result = await conn.execute(statement, {**_holding(tenant_id, delegation_id, runner), "until": until})
    return bool(result.rowcount)


async def start(
    conn: Connection, tenant_id: str, delegation_id: int, *, runner: str, now: datetime
) -> Delegation | None:
    """Start the delegation `runner` holds (one more attempt); None when it no longer holds it."""
    statement = (
        update(delegations)
        .where(_HELD)
        .values(started_at=now, attempts=delegations.c.attempts + 1)
        .returning(delegations)
    )
    row = (await conn.execute(statement, _holding(tenant_id, delegation_id, runner))).mappings().first()
    return delegation_from(row) if row is not None else None


async def set_live_card(conn: Connection, tenant_id: str, delegation_id: int, card: dict[str, Any] | None) -> None:
    """Keep where the delegation's live card lies (None: it has none any more)."""
    statement = update(delegations).where(_THIS).values(live_card=bindparam("card"))
    await conn.execute(statement, {"tenant": tenant_id, "delegation": delegation_id, "card": card})


async def let_go(
    conn: Connection, tenant_id: str, delegation_id: int, *, runner: str, **values: Any
) -> Delegation | None:
    """Give up the lease `runner` holds on the delegation, writing `values` (status, error, retry_at, deferred_at,
    owner_told_at) with it; None when it no longer holds it."""
    statement = (
        update(delegations).where(_HELD).values(leased_by=None, lease_until=None, **values).returning(delegations)
    )
    row = (await conn.execute(statement, _holding(tenant_id, delegation_id, runner))).mappings().first()
    return delegation_from(row) if row is not None else None


async def finish(
    conn: Connection,
    tenant_id: str,
    delegation_id: int,
    *,
    runner: str,
    status: DelegationStatus,
    output: str | None,
    output_cut: bool = False,
    data: dict[str, Any] | None,
    error: str | None,
    now: datetime,
    seconds: float | None,
    progress: Sequence[str] = (),
) -> bool:
    """Store how the delegation `runner` holds ended, letting it go; False when it no longer holds it."""
    ended = {
        "outcome": status.value,
        "answer": output,
        "answer_cut": output_cut,
        "answer_data": data,
        "steps": list(progress) or None,
        "failure": error,
        "now": now,
        "took": seconds,
    }
    result = await conn.execute(_FINISH, {**_holding(tenant_id, delegation_id, runner), **ended})
    return result.rowcount == 1


async def insert_evidence(conn: Connection, evidence: Sequence[StoredEvidence], *, tenant_id: str) -> None:
    """Keep evidence with its delegation (the items' `id` is not used)."""
    rows = [
        dict(
            delegation_id=item.delegation_id,
            tenant_id=tenant_id,
            kind=item.kind,
            media_type=item.media_type,
            description=item.description,
            size=item.size,
            content=item.content,
        )
        for item in evidence
    ]
    if rows:
        await conn.execute(_KEEP_EVIDENCE, rows)


async def lapse(conn: Connection, tenant_id: str, *, before: datetime, reason: str, now: datetime) -> list[Delegation]:
    """Mark `unknown` (its owner told at `now`) every running delegation whose lease ran out before `before`."""
    statement = (
        update(delegations)
        .where(
            delegations.c.tenant_id == tenant_id,
            delegations.c.status == DelegationStatus.RUNNING.value,
            delegations.c.lease_until < before,
        )
        .values(
            status=DelegationStatus.UNKNOWN.value,
            leased_by=None,
            lease_until=None,
            error=reason,
            owner_told_at=now,
        )
        .returning(delegations)
    )
    return [delegation_from(row) for row in (await conn.execute(statement)).mappings().all()]


async def requeue(conn: Connection, tenant_id: str, delegation_id: int, *, was: DelegationStatus) -> Delegation | None:
    """Queue the delegation again as if new, if it is still in status `was`; None otherwise."""
    statement = (
        update(delegations)
        .where(
            delegations.c.tenant_id == tenant_id,
            delegations.c.id == delegation_id,
            delegations.c.status == was.value,
        )
        .values(
            status=DelegationStatus.QUEUED.value,
            error=None,
            finished_at=None,
            retry_at=None,
            deferred_at=None,
            owner_told_at=None,
        )
        .returning(delegations)
    )
    row = (await conn.execute(statement)).mappings().first()
    return delegation_from(row) if row is not None else None


async def cancel(
    conn: Connection, tenant_id: str, delegation_ids: Sequence[int], *, reason: str, now: datetime
) -> list[Delegation]:
    """Cancel those of the delegations no agent is working on; returns them as cancelled."""
    statement = (
        update(delegations)
        .where(
            delegations.c.tenant_id == tenant_id,
            delegations.c.id.in_(delegation_ids),
            delegations.c.status.in_(_statuses(CANCELLABLE)),
        )
        .values(
            status=DelegationStatus.CANCELLED.value,
            error=reason,
            finished_at=now,
            leased_by=None,
            lease_until=None,
            retry_at=None,
        )
        .returning(delegations)
    )
    return [delegation_from(row) for row in (await conn.execute(statement)).mappings().all()]


async def release_hold(
    conn: Connection, tenant_id: str, delegation_id: int, *, status: DelegationStatus, error: str | None, now: datetime
) -> Delegation | None:
    """Move a held delegation to `status` (queued again, or failed with `error` and finished at `now`); None when it
    is not held."""
    values: dict[str, Any] = dict(status=status.value, error=error)
    if status is not DelegationStatus.QUEUED:
        values.update(finished_at=now)
    statement = (
        update(delegations)
        .where(
            delegations.c.tenant_id == tenant_id,
            delegations.c.id == delegation_id,
            delegations.c.status == DelegationStatus.HELD.value,
        )
        .values(**values)
        .returning(delegations)
    )
    row = (await conn.execute(statement)).mappings().first()
    return delegation_from(row) if row is not None else None
