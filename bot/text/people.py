"""How a person is named on a card or in a reply: by the directory's name, never by a raw user id."""

from __future__ import annotations

import re
from collections.abc import Mapping

SOMEONE_UNKNOWN = "someone not yet known"
"""Shown for a user id the directory has no name for yet (they have not talked to the bot)."""

_USER_ID = re.compile(
    r"""^(?:
        [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}  # an AAD object id
        | \d+:\S+                                                      # a Teams channel id (29:..., 8:orgid:...)
    )$""",
    re.IGNORECASE | re.VERBOSE,
)


def looks_like_user_id(key: str) -> bool:
    """Whether an owner key is a machine id (rather than a name typed for someone the bot does not know yet)."""
    return bool(_USER_ID.match(key.strip()))


def person_name(key: str | None, names: Mapping[str, str] | None = None) -> str:
    """The name to show for an owner key: the directory's name, the name as typed, or `someone not yet known`."""
    if not key:
        return "nobody"
    known = (names or {}).get(key)
    if known and not looks_like_user_id(known):
        return known
    return SOMEONE_UNKNOWN if looks_like_user_id(key) else key
