"""The adapter registry on every backend: secrets sealed at rest, helpful errors, one name per tenant."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from planner.domain.approvals import UnknownGateCategory
from planner.domain.circuits import CircuitState
from planner.domain.errors import Expected, Field, InvalidValue
from planner.ports import AgentConfigInvalid, UnknownCapability
from planner.services.breaker import Breakers
from planner.services.plans import Plans
from planner.services.registry import (
    AdapterDisabled,
    AdapterExists,
    AdapterNotFound,
    Registry,
    UnknownAdapterKind,
    rotate_secrets,
)
from planner.store import Store
from planner.store.schema import adapters, events
from planner.store.vault import UndecryptableSecret, Vault
from tests.conftest import FakeClock
from tests.fakes.agents import FakeAgentFactory
from tests.saying import raises_saying

TOKEN = "tok-3f9a7c1e-never-shown"
KEY = Vault.generate_key()


def registry(store: Store, factory: FakeAgentFactory, *, tenant: str = "contoso", key: str = KEY) -> Registry:
    return Registry(store, tenant, vault=Vault([key]), kinds={"mcp": factory, "browser": factory})


@pytest.fixture
def factory(clock: FakeClock) -> FakeAgentFactory:
    return FakeAgentFactory(clock)


async def raw_rows(store: Store) -> str:
    """Everything stored about adapters and their events, as text, the way someone reading the database sees it."""
    async with store.engine.connect() as conn:
        stored = (await conn.execute(select(adapters))).all()
        logged = (await conn.execute(select(events).where(events.c.subject_type == "adapter"))).all()
    return repr(stored) + repr(logged)


async def test_secrets_are_encrypted_at_rest_and_never_logged(store: Store, factory: FakeAgentFactory) -> None:
    reg = registry(store, factory)
    await reg.register("mcp", "hubspot", {"url": "https://crm.example/mcp", "token": TOKEN}, actor="aad-admin")
    await reg.reconfigure("hubspot", {"url": "https://crm.example/mcp/v2"}, actor="aad-admin")
    await reg.disable("hubspot", actor="aad-admin")
    await reg.remove("hubspot", actor="aad-admin")
    dump = await raw_rows(store)
    assert "crm.example" in dump  # the public settings are there to read
    assert TOKEN not in dump
    assert TOKEN.encode().hex() not in dump


async def test_the_stored_secret_is_a_vault_token_only_the_agent_gets_to_read(
    store: Store, factory: FakeAgentFactory
) -> None:
    reg = registry(store, factory)
    await reg.register("mcp", "hubspot", {"url": "https://crm.example/mcp", "token": TOKEN}, actor="aad-admin")
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(adapters))).one()
    assert row.config == {"url": "https://crm.example/mcp"}
    assert TOKEN.encode() not in row.secrets
    assert Vault([KEY]).decrypt(row.secrets) == b'{"token": "' + TOKEN.encode() + b'"}'
    await reg.open("hubspot")
    assert factory.built == [{"url": "https://crm.example/mcp", "token": TOKEN}]


async def test_listing_shows_which_secrets_are_set_never_their_values(store: Store, factory: FakeAgentFactory) -> None:
    reg = registry(store, factory)
    await reg.register("mcp", "hubspot", {"url": "https://crm.example/mcp", "token": TOKEN}, actor="aad-admin")
    await reg.register("browser", "adobe", {"url": "https://express.example"}, actor="aad-admin")
    listed = await reg.list_adapters()
    assert [(a.key, a.describe()) for a in listed] == [
        ("browser:adobe", {"url": "https://express.example"}),
        ("mcp:hubspot", {"token": "set", "url": "https://crm.example/mcp"}),
    ]
    assert TOKEN not in repr(listed)
    assert [a.name for a in await reg.list_adapters(kind="browser")] == ["adobe"]


async def test_a_field_named_like_a_secret_is_sealed_even_when_its_kind_forgot_to_say(
    store: Store, factory: FakeAgentFactory
) -> None:
    reg = registry(store, factory)
    entry = await reg.register(
        "mcp", "hubspot", {"url": "https://crm.example/mcp", "client_secret": TOKEN}, actor="aad-admin"
    )
    assert entry.secret_fields == ("client_secret",)
    assert TOKEN not in await raw_rows(store)


async def test_an_invalid_config_says_what_is_wrong_and_stores_nothing(store: Store, factory: FakeAgentFactory) -> None:
    reg = registry(store, factory)
    with pytest.raises(AgentConfigInvalid) as caught:
        await reg.register("mcp", "hubspot", {"endpoint": "crm.example"}, actor="aad-admin")
    message = str(caught.value)
    assert "endpoint: unknown setting; known: client_secret, timeout, token, url" in message
    assert "url: required, an http(s) address" in message
    assert await reg.list_adapters() == []
    assert "adapter" not in await raw_rows(store)


async def test_a_config_that_is_not_plain_json_names_the_setting_and_stores_nothing(
    store: Store, factory: FakeAgentFactory
) -> None:
    reg = registry(store, factory)
    with pytest.raises(InvalidValue) as listed:
        await reg.register("mcp", "hubspot", ["https://crm.example"], actor="aad-admin")  # type: ignore[arg-type]
    assert (listed.value.field, listed.value.value, listed.value.expected) == (
        Field.ADAPTER_CONFIG,
        "list",
        Expected.JSON_OBJECT,
    )
    assert await reg.list_adapters() == []


async def test_a_complaint_about_a_secret_never_repeats_it(store: Store, factory: FakeAgentFactory) -> None:
    reg = registry(store, factory)
    with pytest.raises(AgentConfigInvalid) as caught:
        await reg.register("mcp", "hubspot", {"url": "https://crm.example", "token": "hunter2"}, actor="aad-admin")
    assert "hunter2" not in str(caught.value)
    assert "token: '***' is too short" in str(caught.value)


async def test_an_unknown_kind_suggests_the_close_one(store: Store, factory: FakeAgentFactory) -> None:
    with raises_saying(UnknownAdapterKind, r"no adapter kind 'mpc'\. Did you mean 'mcp'\? Known kinds: browser, mcp"):
        await registry(store, factory).register("mpc", "hubspot", {"url": "https://crm.example"}, actor="aad-admin")


async def test_an_unknown_name_suggests_the_close_one(store: Store, factory: FakeAgentFactory) -> None:
    reg = registry(store, factory)
    with raises_saying(AdapterNotFound, "No adapters are registered yet"):
        await reg.get("hubspot")
    await reg.register("mcp", "hubspot", {"url": "https://crm.example"}, actor="aad-admin")
    await reg.register("browser", "adobe", {"url": "https://express.example"}, actor="aad-admin")
    with raises_saying(AdapterNotFound, r"named 'hubspt'\. Did you mean 'hubspot'\? Known adapters: adobe, hubspot"):
        await reg.get("hubspt")
    assert (await reg.get("MCP:HubSpot")).name == "hubspot"
    with pytest.raises(AdapterNotFound):
        await reg.get("browser:hubspot")


async def test_names_are_unique_within_a_tenant_only(store: Store, factory: FakeAgentFactory) -> None:
    await registry(store, factory).register("mcp", "hubspot", {"url": "https://crm.example"}, actor="aad-admin")
    with raises_saying(AdapterExists, r"'hubspot' \(mcp\) is already registered"):
        await registry(store, factory).register("browser", "HubSpot", {"url": "https://x.example"}, actor="aad-admin")
    other = registry(store, factory, tenant="fabrikam")
    await other.register("browser", "hubspot", {"url": "https://x.example"}, actor="aad-admin")
    assert [a.key for a in await other.list_adapters()] == ["browser:hubspot"]
    assert [a.key for a in await registry(store, factory).list_adapters()] == ["mcp:hubspot"]


async def test_a_name_must_be_usable_in_a_chat_command(store: Store, factory: FakeAgentFactory) -> None:
    with pytest.raises(InvalidValue, match="adapter_name"):
        await registry(store, factory).register("mcp", "hub spot:crm", {"url": "https://crm.example"}, actor="x")


async def test_a_disabled_adapter_will_not_open_until_enabled_and_each_switch_is_recorded(
    store: Store, factory: FakeAgentFactory
) -> None:
    reg = registry(store, factory)
    await reg.register("mcp", "hubspot", {"url": "https://crm.example"}, actor="aad-admin")
    assert not (await reg.disable("hubspot", actor="aad-admin")).enabled
    with raises_saying(AdapterDisabled, r"'hubspot' is disabled.*An admin can enable it again"):
        await reg.open("hubspot")
    await reg.enable("hubspot", actor="aad-admin")
    assert (await reg.open("hubspot")).name == "hubspot"
    kinds = [e.kind for e in reversed(await Plans(store, "contoso").events(subject_type="adapter"))]
    assert kinds == ["adapter.registered", "adapter.disabled", "adapter.enabled"]


async def test_reconfiguring_keeps_the_secrets_it_does_not_change(store: Store, factory: FakeAgentFactory) -> None:
    reg = registry(store, factory)
    await reg.register("mcp", "hubspot", {"url": "https://crm.example", "token": TOKEN}, actor="aad-admin")
    entry = await reg.reconfigure("hubspot", {"url": "https://crm.example/v2"}, actor="aad-admin")
    assert entry.describe() == {"token": "set", "url": "https://crm.example/v2"}
    await reg.open("hubspot")
    assert factory.built[-1] == {"url": "https://crm.example/v2", "token": TOKEN}
    await reg.reconfigure("hubspot", {"token": None}, actor="aad-admin")
    await reg.open("hubspot")
    assert factory.built[-1] == {"url": "https://crm.example/v2"}
    with pytest.raises(AgentConfigInvalid, match="url: required"):
        await reg.reconfigure("hubspot", {"url": None}, actor="aad-admin")
    assert (await reg.get("hubspot")).config == {"url": "https://crm.example/v2"}


async def test_rotation_reseals_every_tenants_secrets_so_the_old_key_can_be_dropped(
    store: Store, factory: FakeAgentFactory
) -> None:
    old, new = KEY, Vault.generate_key()
    await registry(store, factory).register("mcp", "hubspot", {"url": "https://a.example", "token": TOKEN}, actor="x")
    await registry(store, factory, tenant="fabrikam").register(
        "mcp", "breeze", {"url": "https://b.example", "token": TOKEN + "-b"}, actor="x"
    )
    await registry(store, factory).register("browser", "adobe", {"url": "https://c.example"}, actor="x")
    assert await rotate_secrets(store, Vault([new, old]), actor="aad-admin") == 2
    with pytest.raises(UndecryptableSecret):
        await registry(store, factory, key=old).open("hubspot")
    await registry(store, factory, key=new).open("hubspot")
    await registry(store, factory, tenant="fabrikam", key=new).open("breeze")
    assert [c.get("token") for c in factory.built] == [TOKEN, TOKEN + "-b"]
    assert TOKEN not in await raw_rows(store)


async def test_removing_an_adapter_forgets_it_and_its_circuit(store: Store, factory: FakeAgentFactory) -> None:
    reg = registry(store, factory)
    await reg.register("mcp", "hubspot", {"url": "https://crm.example", "token": TOKEN}, actor="aad-admin")
    breakers = Breakers(store, "contoso")
    for _ in range(breakers.settings.failure_threshold):
        await breakers.failed("hubspot", "connection refused")
    assert (await breakers.state("hubspot")).state is CircuitState.OPEN
    removed = await reg.remove("hubspot", actor="aad-admin")
    with pytest.raises(AdapterNotFound):
        await reg.get("hubspot")
    assert (await breakers.state("hubspot")).state is CircuitState.CLOSED
    [event] = await Plans(store, "contoso").events(subject_type="adapter", subject_id=removed.id, limit=1)
    assert (event.kind, event.after) == ("adapter.removed", None)
    assert event.before is not None
    assert event.before["secret_fields"] == ["token"]


async def test_a_browser_session_is_kept_with_its_adapter_and_resealed_on_rotation(
    store: Store, factory: FakeAgentFactory
) -> None:
    reg = registry(store, factory)
    await reg.register("browser", "adobe", {"url": "https://express.example"}, actor="aad-admin")
    sessions = reg.session_store("browser:adobe")
    assert await sessions.load_state() is None
    cookies = b'{"cookies": [{"name": "sid", "value": "' + TOKEN.encode() + b'"}]}'
    await sessions.save_state(Vault([KEY]).encrypt(cookies))
    assert TOKEN not in await raw_rows(store)
    new = Vault.generate_key()
    assert await rotate_secrets(store, Vault([new, KEY]), actor="aad-admin") == 1
    assert Vault([new]).decrypt(await sessions.load_state() or b"") == cookies
    await reg.remove("adobe", actor="aad-admin")
    await sessions.save_state(b"late")  # a delegation finishing after the removal keeps nothing
    assert await sessions.load_state() is None


async def test_an_admin_classifies_a_browser_capability_under_gates_and_each_change_is_recorded(
    store: Store, factory: FakeAgentFactory
) -> None:
    reg = registry(store, factory)
    entry = await reg.register("browser", "adsportal", {"url": "https://ads.example"}, actor="aad-admin")
    before, after = await reg.classify("adsportal", "create_segment", ["Audience", "personal-data"], actor="aad-admin")
    assert before is None
    assert [c.value for c in after.categories] == ["audience", "personal_data"]
    assert [(c.capability, c.categories) for c in await reg.classifications("adsportal")] == [
        ("create_segment", after.categories)
    ]
    # What the agent does not offer, or a gate that is none of the six, is refused whole.
    with raises_saying(UnknownCapability, "create_segmnt.*create_segment"):
        await reg.classify("adsportal", "create_segmnt", ["audience"], actor="aad-admin")
    with raises_saying(UnknownGateCategory, "audiance"):
        await reg.classify("adsportal", "draft_email", ["audiance"], actor="aad-admin")
    # `none` takes every gate off; removing the adapter forgets its classifications.
    was, now = await reg.classify("adsportal", "create_segment", ["none"], actor="aad-admin")
    assert (was is not None, now.categories) == (True, ())
    assert await reg.classifications() == []
    await reg.classify("adsportal", "draft_email", ["brand_creative"], actor="aad-admin")
    kinds = [e.kind for e in await Plans(store, "contoso").events(subject_type="adapter", subject_id=entry.id)]
    assert kinds.count("adapter.capability_classified") == 3
    await reg.remove("adsportal", actor="aad-admin")
    assert await reg.classifications() == []
