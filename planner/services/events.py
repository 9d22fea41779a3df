"""The event record: every state change written beside the change itself, with who, when, before and after.

It is the base of the decision log; entries are only ever inserted.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from planner.store.schema import events


def snapshot(value: object) -> dict[str, Any]:
    """A JSON-ready picture of a model value (dates as ISO text, enums as their values)."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise TypeError(f"cannot snapshot {type(value).__name__}")
    return {name: _plain(getattr(value, name)) for name in _field_names(type(value))}


@functools.cache
def _field_names(model: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(model))


_AS_THEY_ARE = frozenset({str, int, float, bool, type(None)})
"""Types a snapshot keeps as they are (exactly these: an enum that is also a `str` is kept by its value)."""


def _plain(value: object) -> Any:
    if type(value) in _AS_THEY_ARE:
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return snapshot(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The fields whose value differs, keyed by name (version excluded: it always moves)."""
    return {k: after[k] for k in after if k != "version" and before.get(k) != after[k]}


_INSERT = insert(events)


def entry(
    *,
    tenant_id: str,
    at: datetime,
    actor: str,
    kind: str,
    subject_type: str,
    subject_id: int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> dict[str, Any]:
    """One event, for `record_all`."""
    return dict(
        tenant_id=tenant_id,
        at=at,
        actor=actor,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        before=before,
        after=after,
    )


async def record(conn: AsyncConnection, **fields: Any) -> None:
    """Append one event (the fields of `entry`) in the caller's transaction, so the change and its record commit
    together."""
    await record_all(conn, [entry(**fields)])


async def record_all(conn: AsyncConnection, entries: list[dict[str, Any]]) -> None:
    """Append several events (made by `entry`) in the caller's transaction, in one statement."""
    if entries:
        await conn.execute(_INSERT, entries)
