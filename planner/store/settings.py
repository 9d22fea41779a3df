"""Each tenant's trigger settings: the overrides it chose over the engine's defaults, as stored JSON.

The one writer of `trigger_settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from planner.store import Connection, upsert
from planner.store.schema import trigger_settings


async def all_overrides(conn: Connection) -> dict[str, Mapping[str, Any]]:
    """Every tenant that changed a setting, with its overrides."""
    rows = await conn.execute(select(trigger_settings.c.tenant_id, trigger_settings.c.settings))
    return {row.tenant_id: row.settings for row in rows}


async def overrides_of(conn: Connection, tenant_id: str) -> Mapping[str, Any]:
    """The tenant's overrides; empty when it changed nothing."""
    query = select(trigger_settings.c.settings).where(trigger_settings.c.tenant_id == tenant_id)
    return (await conn.execute(query)).scalar() or {}


async def save_overrides(
    conn: Connection, tenant_id: str, overrides: Mapping[str, Any], *, actor: str, at: datetime
) -> None:
    """Replace the tenant's overrides."""
    stored = dict(overrides)
    await upsert(
        conn,
        trigger_settings,
        trigger_settings.c.tenant_id == tenant_id,
        dict(settings=stored, updated_by=actor, updated_at=at),
        dict(tenant_id=tenant_id, settings=stored, updated_by=actor, updated_at=at),
    )
