from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from planner.directory import Directory, ProcessedKeys
from planner.store import Store


async def test_people_are_remembered_and_refreshed(store: Store) -> None:
    directory = Directory(store, "contoso")
    await directory.remember_person("aad-1", "Writer One", "Europe/Paris")
    await directory.remember_person("aad-1", "Writer  One-Renamed")  # renamed in Teams; time zone kept
    person = await directory.person("aad-1")
    assert person is not None
    assert (person.name, person.time_zone) == ("Writer One-Renamed", "Europe/Paris")
    assert await Directory(store, "fabrikam").person("aad-1") is None


async def test_people_are_found_by_full_or_first_name(store: Store) -> None:
    directory = Directory(store, "contoso")
    await directory.remember_person("aad-1", "Writer One")
    await directory.remember_person("aad-2", "Writer Two")
    await directory.remember_person("aad-3", "Writers Guild")
    assert [p.user_id for p in await directory.people_named("writer one")] == ["aad-1"]
    assert sorted(p.user_id for p in await directory.people_named("Writer")) == ["aad-1", "aad-2"]
    assert await directory.people_named("100%_") == []
    assert await directory.names({"aad-1", "aad-9"}) == {"aad-1": "Writer One"}


async def test_conversations_are_stored_per_tenant_and_forgotten(store: Store) -> None:
    directory = Directory(store, "contoso")
    await directory.remember_conversation("a:1", kind="personal", user_id="aad-1", address={"serviceUrl": "x"})
    await directory.remember_conversation("19:chan", kind="channel", user_id="aad-1", address={"serviceUrl": "y"})
    await directory.remember_conversation("a:1", kind="personal", user_id="aad-1", address={"serviceUrl": "z"})
    [personal] = await directory.conversations(kind="personal", user_id="aad-1")
    assert personal.address == {"serviceUrl": "z"}
    [channel] = await directory.conversations(kind="channel")
    assert channel.user_id is None
    assert await Directory(store, "fabrikam").conversations() == []
    await directory.forget_conversation("19:chan")
    assert [c.kind for c in await directory.conversations()] == ["personal"]


async def test_a_key_is_processed_only_the_first_time(store: Store) -> None:
    directory = Directory(store, "contoso")
    assert await directory.first_time("activity:abc")
    assert not await directory.first_time("activity:abc")
    assert await Directory(store, "fabrikam").first_time("activity:abc")


async def test_messages_arriving_together_are_each_processed_once(store: Store) -> None:
    processed = ProcessedKeys(store)
    assert await processed.first_time("contoso", "activity:earlier")
    firsts = await asyncio.gather(
        processed.first_time("contoso", "activity:a"),
        processed.first_time("contoso", "activity:b"),
        processed.first_time("contoso", "activity:a"),  # Teams' retry, arriving with the original
        processed.first_time("contoso", "activity:earlier"),
        processed.first_time("fabrikam", "activity:a"),
    )
    assert firsts == [True, True, False, False, True]
    assert not await Directory(store, "contoso").first_time("activity:b")  # another replica sees it too


async def test_messages_arriving_together_share_one_commit(store: Store) -> None:
    commits: list[object] = []
    event.listen(store.engine.sync_engine, "commit", commits.append)
    processed = ProcessedKeys(store)
    firsts = await asyncio.gather(*(processed.first_time("contoso", f"activity:{n}") for n in range(5)))
    assert firsts == [True] * 5
    assert len(commits) == 1


async def test_when_the_database_fails_every_waiting_message_hears_it(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE processed_keys"))
    processed = ProcessedKeys(store)
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(processed.first_time("contoso", f"activity:{n}") for n in range(3)), return_exceptions=True),
        timeout=10,
    )
    assert all(isinstance(outcome, DBAPIError) for outcome in outcomes)
    with pytest.raises(DBAPIError):
        await processed.first_time("contoso", "activity:later")
