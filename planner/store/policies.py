"""The policy's table: `policy_sets`, every version of each tenant's rules (the newest is in force); and the reads
the policy engine makes in one round trip with the shared context's facts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from planner.domain.context import Fact
from planner.store import Connection, Store
from planner.store.context import LIVE_FACTS, LIVE_ONLY, fact_from_row
from planner.store.schema import context_facts, policy_sets


class VersionTaken(RuntimeError):
    """Another load stored this version number first: stack on top of it."""

    def __init__(self, tenant_id: str, version: int) -> None:
        self.tenant_id, self.version = tenant_id, version
        super().__init__(f"version {version} of tenant {tenant_id}'s rules was stored by another load")


@dataclass(frozen=True, kw_only=True)
class StoredPolicy:
    """A version of a tenant's rules as stored: the checked document and the text it was loaded from."""

    version: int
    document: Any
    source: str
    loaded_by: str
    loaded_at: datetime


_CURRENT_VERSION = select(func.max(policy_sets.c.version)).where(policy_sets.c.tenant_id == bindparam("tenant_id"))
_CURRENT = (
    select(func.max(policy_sets.c.version).label("policy_version"))
    .where(policy_sets.c.tenant_id == bindparam("tenant_id"))
    .subquery("current")
)
_VERSION_AND_FACTS = select(_CURRENT.c.policy_version, context_facts).select_from(
    _CURRENT.outerjoin(context_facts, LIVE_FACTS)
)
"""The version in force and the facts asked for, in one round trip: one row with no fact when there is none."""
_DOCUMENT = select(policy_sets.c.document).where(
    policy_sets.c.tenant_id == bindparam("tenant_id"), policy_sets.c.version == bindparam("version")
)


@asynccontextmanager
async def single_read(store: Store) -> AsyncIterator[Connection]:
    """A connection for one SELECT: on PostgreSQL outside a transaction, since one statement reads one snapshot by
    itself (no BEGIN and ROLLBACK round trips around it)."""
    async with store.read() as conn:
        if conn.dialect.name == "postgresql":
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


async def current_version(conn: Connection, tenant_id: str) -> int:
    """The version in force; 0 when no rules were ever loaded."""
    version: int | None = (await conn.execute(_CURRENT_VERSION, {"tenant_id": tenant_id})).scalar()
    return version or 0


async def version_and_facts(conn: Connection, parameters: dict[str, Any]) -> tuple[int, list[Fact]]:
    """The version in force for `parameters["tenant_id"]`, and the facts `LIVE_FACTS` finds with `parameters`."""
    rows = (await conn.execute(_VERSION_AND_FACTS, parameters)).all()
    return rows[0].policy_version or 0, [fact_from_row(row) for row in rows if row.id is not None]


async def live_facts(conn: Connection, parameters: dict[str, Any]) -> list[Fact]:
    """The facts `LIVE_FACTS` finds with `parameters`, in no particular order."""
    return [fact_from_row(row) for row in (await conn.execute(LIVE_ONLY, parameters)).all()]


async def document(conn: Connection, tenant_id: str, version: int) -> Any:
    """The stored document of one version of the tenant's rules."""
    return (await conn.execute(_DOCUMENT, {"tenant_id": tenant_id, "version": version})).scalar()


async def latest(conn: Connection, tenant_id: str) -> StoredPolicy | None:
    """The version in force, or None when no rules were ever loaded."""
    row = (
        await conn.execute(
            select(policy_sets)
            .where(policy_sets.c.tenant_id == tenant_id)
            .order_by(policy_sets.c.version.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return StoredPolicy(
        version=row.version, document=row.document, source=row.source, loaded_by=row.loaded_by, loaded_at=row.loaded_at
    )


async def insert_version(
    conn: Connection,
    tenant_id: str,
    version: int,
    *,
    document: Any,
    source: str,
    rule_count: int,
    loaded_by: str,
    loaded_at: datetime,
) -> None:
    """Store a new version of the tenant's rules. Raises VersionTaken when another load stored it first."""
    try:
        await conn.execute(
            insert(policy_sets).values(
                tenant_id=tenant_id,
                version=version,
                document=document,
                source=source,
                rule_count=rule_count,
                loaded_by=loaded_by,
                loaded_at=loaded_at,
            )
        )
    except IntegrityError:
        raise VersionTaken(tenant_id, version) from None
