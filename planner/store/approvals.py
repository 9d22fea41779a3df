"""Approver roles, the tenant's gate-to-role mapping and approval requests: the one module that writes them.

A request moves between statuses with a compare-and-set on its current status, so of two replicas deciding,
expiring or resuming the same request only one changes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from planner.domain.approvals import ApprovalRequest, ApprovalStatus, action_from_json
from planner.domain.governance import policy_reason_of_json
from planner.store import Connection, upsert
from planner.store.schema import approval_gates, approval_requests, approval_roles


class RoleHeldAlready(Exception):
    """The user holds the role already (the caller's transaction must then be given up)."""

    def __init__(self, tenant_id: str, role: str, user_id: str) -> None:
        super().__init__(f"{user_id} holds the {role} role in tenant {tenant_id} already.")


# ---- roles ---------------------------------------------------------------------------------------------------


async def assign_role(
    conn: Connection, tenant_id: str, role: str, user_id: str, *, assigned_by: str, at: datetime
) -> None:
    """Give `user_id` the role. Raises RoleHeldAlready."""
    try:
        await conn.execute(
            insert(approval_roles).values(
                tenant_id=tenant_id, role=role, user_id=user_id, assigned_by=assigned_by, assigned_at=at
            )
        )
    except IntegrityError:
        raise RoleHeldAlready(tenant_id, role, user_id) from None


async def unassign_role(conn: Connection, tenant_id: str, role: str, user_id: str) -> bool:
    """Take the role from `user_id`; False if they did not hold it."""
    result = await conn.execute(
        delete(approval_roles).where(
            approval_roles.c.tenant_id == tenant_id,
            approval_roles.c.role == role,
            approval_roles.c.user_id == user_id,
        )
    )
    return bool(result.rowcount)


async def role_holders(conn: Connection, tenant_id: str) -> dict[str, tuple[str, ...]]:
    """Every role held in the tenant, to the user ids holding it (in the order they were given it)."""
    rows = await conn.execute(
        select(approval_roles.c.role, approval_roles.c.user_id)
        .where(approval_roles.c.tenant_id == tenant_id)
        .order_by(approval_roles.c.role, approval_roles.c.assigned_at, approval_roles.c.user_id)
    )
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row.role, []).append(row.user_id)
    return {role: tuple(users) for role, users in found.items()}


async def roles_of(conn: Connection, tenant_id: str, user_id: str) -> frozenset[str]:
    """The roles `user_id` holds."""
    rows = await conn.execute(
        select(approval_roles.c.role).where(
            approval_roles.c.tenant_id == tenant_id, approval_roles.c.user_id == user_id
        )
    )
    return frozenset(row.role for row in rows)


async def changed_gate_roles(conn: Connection, tenant_id: str) -> dict[str, str]:
    """The gates whose role the tenant changed, to that role."""
    rows = await conn.execute(
        select(approval_gates.c.category, approval_gates.c.role).where(approval_gates.c.tenant_id == tenant_id)
    )
    return {row.category: row.role for row in rows}


async def map_gate(conn: Connection, tenant_id: str, gate: str, role: str, *, updated_by: str, at: datetime) -> None:
    """Have `role` approve `gate` in the tenant."""
    await upsert(
        conn,
        approval_gates,
        (approval_gates.c.tenant_id == tenant_id) & (approval_gates.c.category == gate),
        {"role": role, "updated_by": updated_by, "updated_at": at},
        dict(tenant_id=tenant_id, category=gate, role=role, updated_by=updated_by, updated_at=at),
    )


# ---- requests ------------------------------------------------------------------------------------------------


def _request(row: Row[Any]) -> ApprovalRequest:
    policy = row.policy or {}
    return ApprovalRequest(
        id=row.id,
        tenant_id=row.tenant_id,
        action=action_from_json(row.tenant_id, row.action),
        requester=row.requester,
        reason=row.reason,
        policy_reasons=tuple(policy_reason_of_json(reason) for reason in policy.get("reasons", ())),
        rules=tuple(policy.get("rules", ())),
        resume=dict(row.resume),
        roles=tuple(row.roles),
        approvers=tuple(row.approvers),
        leaders=tuple(policy.get("leaders", ())),
        status=ApprovalStatus(row.status),
        created_at=row.created_at,
        expires_at=row.expires_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        note=row.note,
        resumed_at=row.resumed_at,
    )


def _in_status(tenant_id: str, request_id: int, status: ApprovalStatus) -> ColumnElement[bool]:
    return (
        (approval_requests.c.id == request_id)
        & (approval_requests.c.tenant_id == tenant_id)
        & (approval_requests.c.status == status.value)
    )


async def insert_request(
    conn: Connection,
    tenant_id: str,
    *,
    action: dict[str, Any],
    requester: str,
    reason: str,
    policy: dict[str, Any],
    resume: dict[str, Any],
    roles: Sequence[str],
    approvers: Sequence[str],
    created_at: datetime,
    expires_at: datetime,
) -> int:
    """Store a pending request (its action, policy and resumption as JSON); its id."""
    statement = (
        insert(approval_requests)
        .values(
            tenant_id=tenant_id,
            action=action,
            requester=requester,
            reason=reason,
            policy=policy,
            resume=resume,
            roles=list(roles),
            approvers=list(approvers),
            status=ApprovalStatus.PENDING.value,
            created_at=created_at,
            expires_at=expires_at,
        )
        .returning(approval_requests.c.id)
    )
    return int((await conn.execute(statement)).scalar_one())


async def get_request(conn: Connection, tenant_id: str, request_id: int) -> ApprovalRequest | None:
    """The request, or None (requests of other tenants are invisible)."""
    row = (
        await conn.execute(
            select(approval_requests).where(
                approval_requests.c.id == request_id, approval_requests.c.tenant_id == tenant_id
            )
        )
    ).first()
    return None if row is None else _request(row)


async def pending_requests(conn: Connection, tenant_id: str, *, now: datetime) -> list[ApprovalRequest]:
    """Requests still waiting and not expired at `now`, oldest first."""
    rows = await conn.execute(
        select(approval_requests)
        .where(
            approval_requests.c.tenant_id == tenant_id,
            approval_requests.c.status == ApprovalStatus.PENDING.value,
            approval_requests.c.expires_at > now,
        )
        .order_by(approval_requests.c.id)
    )
    return [_request(row) for row in rows]


async def latest_for_delegation(conn: Connection, tenant_id: str, delegation_id: int) -> ApprovalRequest | None:
    """The latest request holding delegation `delegation_id`, or None."""
    row = (
        await conn.execute(
            select(approval_requests)
            .where(
                approval_requests.c.tenant_id == tenant_id,
                approval_requests.c.resume["delegation"].as_integer() == delegation_id,
            )
            .order_by(approval_requests.c.id.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else _request(row)


async def decide_request(
    conn: Connection,
    tenant_id: str,
    request_id: int,
    status: ApprovalStatus,
    *,
    decided_by: str,
    at: datetime,
    note: str | None,
) -> bool:
    """Move a pending request that has not expired by `at` to `status`; False when it was not pending or expired."""
    result = await conn.execute(
        update(approval_requests)
        .where(_in_status(tenant_id, request_id, ApprovalStatus.PENDING), approval_requests.c.expires_at > at)
        .values(status=status.value, decided_by=decided_by, decided_at=at, note=note)
    )
    return result.rowcount == 1


async def due_to_expire(conn: Connection, tenant_id: str, *, at: datetime) -> list[int]:
    """Ids of the pending requests whose time ran out by `at`."""
    rows = await conn.execute(
        select(approval_requests.c.id).where(
            approval_requests.c.tenant_id == tenant_id,
            approval_requests.c.status == ApprovalStatus.PENDING.value,
            approval_requests.c.expires_at <= at,
        )
    )
    return [row.id for row in rows]


async def expire_request(conn: Connection, tenant_id: str, request_id: int, *, at: datetime) -> ApprovalRequest | None:
    """Expire a pending request whose time ran out by `at`; None when it was decided or expired meanwhile."""
    row = (
        await conn.execute(
            update(approval_requests)
            .where(_in_status(tenant_id, request_id, ApprovalStatus.PENDING), approval_requests.c.expires_at <= at)
            .values(status=ApprovalStatus.EXPIRED.value, decided_at=at)
            .returning(approval_requests)
        )
    ).first()
    return None if row is None else _request(row)


async def claim_resume(conn: Connection, tenant_id: str, request_id: int, *, at: datetime) -> ApprovalRequest | None:
    """Move an approved request to resumed; None when it is not approved (or another replica took it)."""
    row = (
        await conn.execute(
            update(approval_requests)
            .where(_in_status(tenant_id, request_id, ApprovalStatus.APPROVED))
            .values(status=ApprovalStatus.RESUMED.value, resumed_at=at)
            .returning(approval_requests)
        )
    ).first()
    return None if row is None else _request(row)


async def release_resume(conn: Connection, tenant_id: str, request_id: int) -> bool:
    """Move a resumed request back to approved; False when it was not resumed."""
    result = await conn.execute(
        update(approval_requests)
        .where(_in_status(tenant_id, request_id, ApprovalStatus.RESUMED))
        .values(status=ApprovalStatus.APPROVED.value, resumed_at=None)
    )
    return bool(result.rowcount)


async def awaiting_resume(conn: Connection, tenant_id: str) -> list[ApprovalRequest]:
    """Approved requests not resumed yet, in the order they were decided."""
    rows = await conn.execute(
        select(approval_requests)
        .where(
            approval_requests.c.tenant_id == tenant_id,
            approval_requests.c.status == ApprovalStatus.APPROVED.value,
        )
        .order_by(approval_requests.c.decided_at, approval_requests.c.id)
    )
    return [_request(row) for row in rows]


async def tenants_with_expired(conn: Connection, *, at: datetime) -> list[str]:
    """Tenants holding pending requests whose time ran out by `at`."""
    rows = await conn.execute(
        select(approval_requests.c.tenant_id)
        .where(
            approval_requests.c.status == ApprovalStatus.PENDING.value,
            approval_requests.c.expires_at <= at,
        )
        .distinct()
    )
    return sorted(row.tenant_id for row in rows)


async def tenants_awaiting_resume(conn: Connection) -> list[str]:
    """Tenants with approved requests not resumed yet."""
    rows = await conn.execute(
        select(approval_requests.c.tenant_id)
        .where(approval_requests.c.status == ApprovalStatus.APPROVED.value)
        .distinct()
    )
    return sorted(row.tenant_id for row in rows)
