"""Questions to a person that a running job waits on, and the states one moves through.

A question is `open` until answered, cancelled or expired; an `answered` one is `consumed` when the waiting job
reads its answer (wiped as it is read).
"""

from __future__ import annotations

import re
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


_GROUPED_DIGITS = re.compile(r"\d+(?:[ -]\d+)+")
_CODE = re.compile(r"(?=.*\d)[A-Za-z0-9-]{4,12}")


def code_answer(text: str) -> str | None:
    """The code a reply gives, or None when it is not one: 4 to 12 letters, digits and hyphens with a digit among
    them (`482913`, `ab12-cd34`); digits typed in groups are one code (`482 913` and `482-913` are `482913`)."""
    text = text.strip()
    if _GROUPED_DIGITS.fullmatch(text):
        digits = re.sub(r"[ -]", "", text)
        return digits if 4 <= len(digits) <= 12 else None
    return text if _CODE.fullmatch(text) else None
