"""Shared context's tables: `context_sources` (the connected systems of a tenant, each with its encrypted secret) and
`context_facts` (what they posted about accounts)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from planner.domain.context import FACT_TYPES, ContextSource, ContextSourceExists, Fact, FactType
from planner.store import Connection
from planner.store.schema import context_facts, context_sources


class EventIdTaken(RuntimeError):
    """A fact with this source's event id was stored first by another post."""

    def __init__(self, source: str, event_id: str) -> None:
        self.source, self.event_id = source, event_id
        super().__init__(f"source {source!r} already posted event id {event_id!r}")


def fact_from_row(row: Row[Any]) -> Fact:
    """A fact from a row of `context_facts` (or a row holding its columns)."""
    return Fact(
        id=row.id,
        tenant_id=row.tenant_id,
        source=row.source,
        event_id=row.event_id,
        account=row.account,
        type=FACT_TYPES[row.type],
        attributes=dict(row.attributes or {}),
        observed_at=row.observed_at,
        expires_at=row.expires_at,
        received_at=row.received_at,
        superseded_at=row.superseded_at,
    )


def _source(row: Row[Any]) -> ContextSource:
    return ContextSource(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        created_by=row.created_by,
        created_at=row.created_at,
        rotated_at=row.rotated_at,
    )


# ---- facts -------------------------------------------------------------------------------------------------------

LIVE_FACTS = and_(
    context_facts.c.tenant_id == bindparam("tenant_id"),
    context_facts.c.account.in_(bindparam("accounts", expanding=True)),
    context_facts.c.type.in_(bindparam("types", expanding=True)),
    context_facts.c.observed_at <= bindparam("at"),
    context_facts.c.observed_at >= bindparam("since"),
    context_facts.c.expires_at > bindparam("at"),
    or_(context_facts.c.superseded_at.is_(None), context_facts.c.superseded_at > bindparam("at")),
)
"""Facts in force at `:at` about some accounts, of some types, observed since `:since` (see `live_parameters`); the
(tenant, account, type, observed_at) index serves it. The policy engine joins it to its version check."""
_LIVE = select(context_facts).where(LIVE_FACTS).order_by(context_facts.c.observed_at.desc(), context_facts.c.id.desc())
LIVE_ONLY = select(context_facts).where(LIVE_FACTS)
_EPOCH = datetime.fromisoformat("0001-01-02T00:00:00+00:00")


def live_parameters(
    tenant_id: str,
    accounts: Iterable[str],
    *,
    types: Iterable[FactType | str] | None,
    at: datetime,
    since: datetime | None,
) -> dict[str, Any]:
    """The parameters of `LIVE_FACTS`."""
    return {
        "tenant_id": tenant_id,
        "accounts": sorted({a for a in accounts if a}),
        "types": sorted({str(t) for t in types} if types is not None else FACT_TYPES),
        "at": at,
        "since": since or _EPOCH,
    }


async def live_facts(conn: Connection, parameters: dict[str, Any]) -> list[Fact]:
    """The facts `LIVE_FACTS` finds with these parameters, newest first."""
    return [fact_from_row(row) for row in (await conn.execute(_LIVE, parameters)).all()]


async def posted_event_ids(conn: Connection, tenant_id: str, source: str, event_ids: Iterable[str]) -> list[str]:
    """Which of these event ids the source posted before."""
    rows = await conn.execute(
        select(context_facts.c.event_id).where(
            context_facts.c.tenant_id == tenant_id,
            context_facts.c.source == source,
            context_facts.c.event_id.in_(list(event_ids)),
        )
    )
    return [row.event_id for row in rows]


async def insert_fact(conn: Connection, **row: Any) -> Fact:
    """Store one fact (the columns of `context_facts` but its id). Raises EventIdTaken for a posted event id."""
    try:
        inserted = (await conn.execute(insert(context_facts).values(**row).returning(context_facts))).one()
    except IntegrityError:
        raise EventIdTaken(row["source"], row["event_id"]) from None
    return fact_from_row(inserted)


async def facts_observed_since(
    conn: Connection, tenant_id: str, account: str, fact_type: FactType, since: datetime
) -> list[Fact]:
    """The account's facts of a type observed at or after `since`, oldest first."""
    rows = await conn.execute(
        select(context_facts)
        .where(
            context_facts.c.tenant_id == tenant_id,
            context_facts.c.account == account,
            context_facts.c.type == fact_type.value,
            context_facts.c.observed_at >= since,
        )
        .order_by(context_facts.c.observed_at, context_facts.c.id)
    )
    return [fact_from_row(row) for row in rows.all()]


async def unsuperseded_facts(
    conn: Connection, tenant_id: str, account: str, fact_type: FactType, until: datetime
) -> list[tuple[int, dict[str, Any]]]:
    """The (id, attributes) of the account's facts of a type observed by `until` that nothing closed yet."""
    rows = await conn.execute(
        select(context_facts.c.id, context_facts.c.attributes).where(
            context_facts.c.tenant_id == tenant_id,
            context_facts.c.account == account,
            context_facts.c.type == fact_type.value,
            context_facts.c.observed_at <= until,
            context_facts.c.superseded_at.is_(None),
        )
    )
    return [(row.id, row.attributes or {}) for row in rows.all()]


async def supersede(conn: Connection, fact_ids: Iterable[int], *, at: datetime, by: int) -> None:
    """Mark these facts closed at `at` by fact `by`."""
    await conn.execute(
        update(context_facts).where(context_facts.c.id.in_(list(fact_ids))).values(superseded_at=at, superseded_by=by)
    )


async def purge_facts(
    conn: Connection, *, expired_by: datetime, received_before: datetime, tenant_id: str | None = None
) -> int:
    """Delete the facts (of one tenant, or all) expired by `expired_by` and received before `received_before`; how
    many."""
    conditions = [context_facts.c.expires_at <= expired_by, context_facts.c.received_at < received_before]
    if tenant_id is not None:
        conditions.insert(0, context_facts.c.tenant_id == tenant_id)
    result = await conn.execute(delete(context_facts).where(*conditions))
    return int(result.rowcount or 0)


# ---- sources -----------------------------------------------------------------------------------------------------


def _named(tenant_id: str, name: str) -> Any:
    return and_(context_sources.c.tenant_id == tenant_id, context_sources.c.name == name)


async def source(conn: Connection, tenant_id: str, name: str) -> ContextSource | None:
    """The tenant's source of that name, or None."""
    row = (await conn.execute(select(context_sources).where(_named(tenant_id, name)))).first()
    return _source(row) if row is not None else None


async def source_names(conn: Connection, tenant_id: str) -> list[str]:
    """The names of the tenant's sources."""
    rows = await conn.execute(select(context_sources.c.name).where(context_sources.c.tenant_id == tenant_id))
    return [row.name for row in rows.all()]


async def sources(conn: Connection, tenant_id: str) -> list[ContextSource]:
    """The tenant's sources by name."""
    rows = await conn.execute(
        select(context_sources).where(context_sources.c.tenant_id == tenant_id).order_by(context_sources.c.name)
    )
    return [_source(row) for row in rows.all()]


async def insert_source(
    conn: Connection, tenant_id: str, name: str, *, secret: bytes, created_by: str, created_at: datetime
) -> ContextSource:
    """Store a new source with its encrypted secret. Raises ContextSourceExists for a name the tenant has."""
    try:
        row = (
            await conn.execute(
                insert(context_sources)
                .values(tenant_id=tenant_id, name=name, secret=secret, created_by=created_by, created_at=created_at)
                .returning(context_sources)
            )
        ).one()
    except IntegrityError:
        raise ContextSourceExists(name) from None
    return _source(row)


async def delete_source(conn: Connection, source_id: int) -> None:
    await conn.execute(delete(context_sources).where(context_sources.c.id == source_id))


async def set_secret(conn: Connection, source_id: int, secret: bytes, *, rotated_at: datetime | None = None) -> None:
    """Keep a new encrypted secret for the source (a rotation when `rotated_at` is given, a re-encryption if not)."""
    values: dict[str, Any] = {"secret": secret}
    if rotated_at is not None:
        values["rotated_at"] = rotated_at
    await conn.execute(update(context_sources).where(context_sources.c.id == source_id).values(**values))


async def secret_of(conn: Connection, tenant_id: str, name: str) -> bytes | None:
    """The encrypted secret of the tenant's source of that name, or None."""
    token: bytes | None = (await conn.execute(select(context_sources.c.secret).where(_named(tenant_id, name)))).scalar()
    return token


async def all_secrets(conn: Connection) -> list[tuple[int, bytes]]:
    """The (id, encrypted secret) of every tenant's sources."""
    rows = await conn.execute(select(context_sources.c.id, context_sources.c.secret))
    return [(row.id, row.secret) for row in rows.all()]
