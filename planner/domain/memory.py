"""What the assistant remembers of a conversation: its recent exchanges, trimmed, forgotten after a silence.

An exchange is one message of a person and everything the assistant did to answer it (its tool calls, their compact
results, its answer), kept as the Messages API's JSON. A conversation is a tenant's Teams conversation: a person's
1:1 chat and each channel thread are different ones. What is recalled is the last exchanges since the conversation
last fell silent for `silence`, at most `max_turns` of them and `max_chars` of JSON, so yesterday's context does not
leak into today's question and a request stays small.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from planner.domain.errors import Expected, Field, InvalidValue

CONVERSATION_ID_CHARS = 400
"""The longest conversation id kept as it is; a longer one is kept as its hash."""


@dataclass(frozen=True, kw_only=True)
class MemoryRules:
    max_turns: int = 8
    """Exchanges recalled at most (the newest)."""
    max_chars: int = 12_000
    """Characters of JSON recalled at most: older exchanges that would pass it are left out."""
    silence: timedelta = timedelta(days=1)
    """A conversation silent this long starts afresh: nothing before the silence is recalled."""

    def __post_init__(self) -> None:
        if self.max_turns < 1:
            raise InvalidValue(Field.MAX_TURNS, self.max_turns, Expected.WHOLE_NUMBER_AT_LEAST, low=1)
        if self.max_chars < 1:
            raise InvalidValue(Field.MAX_CHARS, self.max_chars, Expected.WHOLE_NUMBER_AT_LEAST, low=1)
        if self.silence <= timedelta(0):
            raise InvalidValue(Field.SILENCE, self.silence, Expected.POSITIVE_DURATION)

    @property
    def kept_for(self) -> timedelta:
        """How old an exchange can be and still be recalled (each of `max_turns` exchanges less than `silence` after
        the one before): an older one can be deleted."""
        return self.silence * self.max_turns


@dataclass(frozen=True, kw_only=True)
class Exchange:
    """One message and the assistant's answer to it, as Messages API messages (a user message first)."""

    at: datetime
    messages: tuple[dict[str, Any], ...]
    id: int | None = None
    size: int = -1
    """Characters of the messages' JSON (computed when not given)."""

    def __post_init__(self) -> None:
        if not self.messages or self.messages[0].get("role") != "user":
            raise InvalidValue(Field.MESSAGES, len(self.messages), Expected.USER_MESSAGE_FIRST)
        if self.size < 0:
            object.__setattr__(self, "size", exchange_size(self.messages))


def exchange_size(messages: Sequence[dict[str, Any]]) -> int:
    """Characters of the messages as JSON, as the budget counts them."""
    return len(json.dumps(list(messages), ensure_ascii=False, separators=(",", ":")))


def recall(exchanges: Sequence[Exchange], now: datetime, rules: MemoryRules) -> list[Exchange]:
    """Of `exchanges` (oldest first), those to show the model now, oldest first: the ones since the last silence of
    `rules.silence` (counting the one up to `now`), the newest `rules.max_turns` of them that fit in `rules.max_chars`
    together."""
    kept: list[Exchange] = []
    chars = 0
    later = now
    for exchange in reversed(exchanges):
        if later - exchange.at >= rules.silence or len(kept) >= rules.max_turns:
            break
        if chars + exchange.size > rules.max_chars:
            break
        kept.append(exchange)
        chars += exchange.size
        later = exchange.at
    return kept[::-1]


def conversation_key(conversation_id: str) -> str:
    """The key a conversation's exchanges are kept under: its id, or a hash of an id too long to keep.
    Raises InvalidValue for a blank id."""
    if not conversation_id or not conversation_id.strip():
        raise InvalidValue(Field.CONVERSATION_ID, conversation_id, Expected.TEAMS_CONVERSATION_ID)
    if len(conversation_id) <= CONVERSATION_ID_CHARS:
        return conversation_id
    return "sha256:" + hashlib.sha256(conversation_id.encode()).hexdigest()
