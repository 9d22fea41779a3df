"""Drafts: proposed plans waiting for a person to save or discard them, decided once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from planner.domain.errors import PlannerError

PENDING, SAVED, DISCARDED = "pending", "saved", "discarded"


class DraftNotFound(PlannerError, LookupError):
    def __init__(self, draft_id: int) -> None:
        self.draft_id = draft_id
        super().__init__(f"draft {draft_id} not found")


class DraftAlreadyDecided(PlannerError, RuntimeError):
    def __init__(self, draft_id: int, status: str) -> None:
        self.draft_id = draft_id
        self.status = status
        super().__init__(f"draft {draft_id} was already {status}")


@dataclass(frozen=True, kw_only=True)
class Draft:
    id: int
    tenant_id: str
    author: str
    kind: str
    payload: dict[str, Any]
    status: str
    created_at: datetime


def check_decision(status: str) -> None:
    """A draft is decided as saved or discarded. Raises ValueError for any other status."""
    if status not in (SAVED, DISCARDED):
        raise ValueError(f"a draft is decided as {SAVED} or {DISCARDED}, not {status}")
