"""Tasks: the one writer of `tasks`."""

from __future__ import annotations

from sqlalchemy import bindparam, update

from planner.domain.model import TaskStatus
from planner.store import Connection
from planner.store.schema import tasks

# Built once: every delegation request runs it.
_MARK_DELEGATED = (
    update(tasks)
    .where(
        tasks.c.tenant_id == bindparam("tenant"), tasks.c.id == bindparam("task"), tasks.c.version == bindparam("seen")
    )
    .values(status=TaskStatus.DELEGATED.value, version=tasks.c.version + 1)
)


async def mark_task_delegated(conn: Connection, tenant_id: str, task_id: int, *, seen_version: int) -> bool:
    """Move the task to `delegated`, one version on, if it is still at `seen_version`; False when it changed."""
    seen = {"tenant": tenant_id, "task": task_id, "seen": seen_version}
    return (await conn.execute(_MARK_DELEGATED, seen)).rowcount == 1
