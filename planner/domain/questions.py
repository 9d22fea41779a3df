"""Questions to a person that a running job waits on, and the states one moves through.

A question is `open` until answered, cancelled or expired; an `answered` one is `consumed` when the waiting job
reads its answer (wiped as it is read).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

OPEN, ANSWERED, CONSUMED, CANCELLED, EXPIRED = "open", "answered", "consumed", "cancelled", "expired"


@dataclass(frozen=True, kw_only=True)
class Question:
    id: int
    tenant_id: str
    user_id: str
    text: str
    asked_at: datetime
    expires_at: datetime
