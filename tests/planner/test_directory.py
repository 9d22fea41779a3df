from __future__ import annotations

from planner.services.directory import Directory
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


async def test_a_conversation_is_welcomed_once_per_install(store: Store) -> None:
    directory = Directory(store, "contoso")
    assert await directory.first_welcome("a:lead")
    assert not await directory.first_welcome("a:lead")
    assert await Directory(store, "fabrikam").first_welcome("a:lead")  # another tenant's conversation
    await directory.forget_conversation("a:lead")  # the bot was removed
    assert await directory.first_welcome("a:lead")
