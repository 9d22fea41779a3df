"""The assistant's memory of each conversation: what it recalls before answering, and what it keeps afterwards.

Exchanges are kept per tenant and Teams conversation and trimmed as each is added (`planner.domain.memory.recall`
decides what stays), so a conversation holds a few rows at most, and those of conversations that fell silent are
deleted once they can no longer be recalled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from planner.domain.memory import Exchange, MemoryRules, conversation_key, recall
from planner.store import Store
from planner.store import memory as memory_store


class AssistantMemory:
    """The assistant's memory of one tenant's conversations."""

    def __init__(self, store: Store, tenant_id: str, *, rules: MemoryRules | None = None) -> None:
        self._store = store
        self.tenant_id = tenant_id
        self.rules = rules or MemoryRules()

    async def recall(self, conversation_id: str) -> list[dict[str, Any]]:
        """The messages of the conversation's recent exchanges, oldest first (none after a silence).
        Raises InvalidValue for a blank conversation id."""
        key = conversation_key(conversation_id)
        async with self._store.read() as conn:
            found = await memory_store.newest(conn, self.tenant_id, key, limit=self.rules.max_turns)
        return [message for exchange in recall(found, self._store.clock(), self.rules) for message in exchange.messages]

    async def remember(self, conversation_id: str, messages: Sequence[dict[str, Any]]) -> None:
        """Keep an exchange (a user message first), and forget what can no longer be recalled.
        Raises InvalidValue for a blank conversation id or messages that do not start with the user's."""
        key = conversation_key(conversation_id)
        now = self._store.clock()
        exchange = Exchange(at=now, messages=tuple(messages))
        # Not under the turn's receipt: remembering a question that only read is no write of the turn's own.
        async with self._store.transaction(receipt=False) as conn:
            await memory_store.insert_exchange(conn, self.tenant_id, key, exchange)
            found = await memory_store.newest(conn, self.tenant_id, key, limit=self.rules.max_turns)
            kept = recall(found, now, self.rules)
            await memory_store.forget_before(conn, self.tenant_id, key, kept[0].id if kept else None)
            await memory_store.forget_older(conn, self.tenant_id, now - self.rules.kept_for)
