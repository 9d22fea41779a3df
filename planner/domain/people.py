"""Who is who, and where to reach them: a person of a tenant, a conversation the bot can write to, and the
cleaning every text from Teams gets on arrival.

A conversation's `address` is opaque to the planner (the bot stores whatever it needs to write there later);
the planner only knows its kind (personal, group chat, channel) and, for a personal chat, whose it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Person:
    tenant_id: str
    user_id: str
    name: str
    time_zone: str | None


@dataclass(frozen=True, kw_only=True)
class Conversation:
    tenant_id: str
    conversation_id: str
    kind: str
    user_id: str | None
    address: dict[str, Any]
    updated_at: datetime


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""C0 controls but tab and line breaks, DEL, and the C1 controls."""


def printable(text: str) -> str:
    """`text` without NUL and the other control characters (tabs and line breaks are kept).

    PostgreSQL refuses NUL in text outright (every write holding one fails), and the others only hide or garble what
    is shown. Every text of an activity from Teams goes through this on arrival (bot/teams/), and a person's name
    once more here, whoever stores it.
    """
    return _CONTROL.sub("", text) if _CONTROL.search(text) else text


CONVERSATION_KINDS = ("personal", "groupChat", "channel")
"""Built once, as it runs for every message."""


def has_name(person: Person, wanted: str) -> bool:
    """Whether `person` is called `wanted` (casefolded), or that followed by more words: "Writer" is "Writer One"."""
    name = person.name.casefold()
    return name == wanted or name.startswith(wanted + " ")
