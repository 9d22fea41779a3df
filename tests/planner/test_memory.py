"""The assistant's memory: recent exchanges per conversation, trimmed, forgotten after a silence, kept across
restarts (a new service on the same database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from planner.domain.errors import InvalidValue
from planner.domain.memory import Exchange, MemoryRules, conversation_key, recall
from planner.services.memory import AssistantMemory
from planner.store import Store
from planner.store import memory as memory_store
from tests.conftest import FakeClock

TENANT = "contoso"
NOON = datetime(2026, 1, 5, 12, tzinfo=UTC)


def exchange(text: str, at: datetime, answer: str = "Done.") -> Exchange:
    reply = {"role": "assistant", "content": [{"type": "text", "text": answer}]}
    return Exchange(at=at, messages=({"role": "user", "content": text}, reply))


def said(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "user" and isinstance(m["content"], str)]


def test_recall_keeps_the_newest_exchanges_within_the_turn_and_character_budgets() -> None:
    exchanges = [exchange(f"message {n}", NOON + timedelta(minutes=n)) for n in range(10)]
    later = NOON + timedelta(hours=1)
    assert [e.messages[0]["content"] for e in recall(exchanges, later, MemoryRules(max_turns=3))] == [
        "message 7",
        "message 8",
        "message 9",
    ]
    two = exchanges[-1].size * 2 + 1
    assert len(recall(exchanges, later, MemoryRules(max_chars=two))) == 2


def test_recall_forgets_everything_before_a_day_of_silence() -> None:
    yesterday = [exchange("set the SQLs target to 500", NOON - timedelta(days=1, hours=2))]
    rules = MemoryRules()
    assert recall(yesterday, NOON, rules) == []
    today = [*yesterday, exchange("hello", NOON - timedelta(minutes=5))]
    assert [e.messages[0]["content"] for e in recall(today, NOON, rules)] == ["hello"]
    # A conversation that keeps going is remembered across midnight.
    steady = [exchange("a", NOON - timedelta(hours=20)), exchange("b", NOON - timedelta(hours=4))]
    assert len(recall(steady, NOON, rules)) == 2


def test_an_exchange_starts_with_the_users_message_and_a_conversation_has_an_id() -> None:
    with pytest.raises(InvalidValue):
        Exchange(at=NOON, messages=({"role": "assistant", "content": "hi"},))
    with pytest.raises(InvalidValue):
        conversation_key("  ")
    long_id = "19:abc@thread.tacv2;messageid=" + "9" * 500
    assert conversation_key(long_id).startswith("sha256:")
    assert conversation_key(long_id) != conversation_key(long_id + "1")
    assert conversation_key("a:1xyz") == "a:1xyz"


async def test_exchanges_are_kept_per_conversation_trimmed_and_outlive_the_service(
    store: Store, clock: FakeClock
) -> None:
    rules = MemoryRules(max_turns=3)
    memory = AssistantMemory(store, TENANT, rules=rules)
    for n in range(5):
        await memory.remember("a:chat-with-lead", exchange(f"message {n}", clock.now).messages)
        clock.advance(minutes=1)
    await memory.remember("19:general@thread.tacv2;messageid=1", exchange("in the thread", clock.now).messages)
    restarted = AssistantMemory(store, TENANT, rules=rules)
    assert said(await restarted.recall("a:chat-with-lead")) == ["message 2", "message 3", "message 4"]
    assert said(await restarted.recall("19:general@thread.tacv2;messageid=1")) == ["in the thread"]
    assert await AssistantMemory(store, "fabrikam", rules=rules).recall("a:chat-with-lead") == []
    async with store.read() as conn:
        kept = await memory_store.newest(conn, TENANT, "a:chat-with-lead", limit=100)
    assert len(kept) == 3  # the older ones are deleted, not just hidden


async def test_a_silent_conversation_is_forgotten_and_its_rows_deleted_once_they_cannot_be_recalled(
    store: Store, clock: FakeClock
) -> None:
    memory = AssistantMemory(store, TENANT, rules=MemoryRules(max_turns=2, silence=timedelta(hours=1)))
    await memory.remember("a:old", exchange("old news", clock.now).messages)
    clock.advance(hours=1, minutes=1)
    assert await memory.recall("a:old") == []
    clock.advance(hours=1)
    await memory.remember("a:new", exchange("new", clock.now).messages)
    async with store.read() as conn:
        assert await memory_store.newest(conn, TENANT, "a:old", limit=10) == []
    assert said(await memory.recall("a:new")) == ["new"]


async def test_remembering_is_no_write_of_the_turns_own_so_a_retry_of_a_question_is_answered_again(
    store: Store, clock: FakeClock
) -> None:
    memory = AssistantMemory(store, TENANT)
    with store.receipt(TENANT, "activity:a:1") as receipt:
        await memory.remember("a:chat", exchange("where are we?", clock.now).messages)
        assert not receipt.recorded
    assert not await store.processed(TENANT, "activity:a:1")
    # A turn that wrote under its receipt: what the assistant remembers of a retry is not refused either.
    with store.receipt(TENANT, "activity:a:2"):
        async with store.transaction():
            pass  # the turn's write
    assert await store.processed(TENANT, "activity:a:2")
    with store.receipt(TENANT, "activity:a:2"):
        await memory.remember("a:chat", exchange("where are we?", clock.now).messages)
    assert said(await memory.recall("a:chat")) == ["where are we?", "where are we?"]
