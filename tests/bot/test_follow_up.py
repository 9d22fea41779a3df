"""Follow-up settings and the outbox from Teams: leaders tune the triggers, admins see and replay dead letters."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.grammar import parse
from bot.operations import Caller, Context, default_registry
from bot.settings import Settings
from planner.domain.messages import Message
from planner.domain.model import Window
from planner.services.outbox import Outbox
from planner.services.plans import Plans
from planner.services.tenants import Tenants
from planner.services.trigger_rules import TenantTriggerRules
from planner.store import Store
from tests.bot.cards.test_cards import all_text, schema_errors
from tests.conftest import FakeClock

TENANT = "contoso"


async def run(store: Store, clock: FakeClock, text: str, *, user: str = "aad-lead", admin: bool = False):  # type: ignore[no-untyped-def]
    command = parse(text)
    caller = Caller(tenant_id=TENANT, user_id=user, name=user, is_admin=admin)
    return await default_registry().run(command.operation, Context(Tenants(store), caller, clock=clock), command.args)


async def lead_a_plan(store: Store, clock: FakeClock) -> None:
    clock.now = datetime(2026, 2, 10, 9, tzinfo=UTC)
    window = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))
    await Plans(store, TENANT).create_master_plan(title="Q1", owner="aad-lead", window=window, actor="aad-lead")


async def test_a_leader_sees_and_tunes_when_the_bot_follows_up(store: Store, clock: FakeClock) -> None:
    await lead_a_plan(store, clock)
    shown = await run(store, clock, "triggers")
    assert "weekly cycle: on" in all_text(shown.cards[0])
    assert schema_errors(shown.cards[0]) == []
    changed = await run(store, clock, "triggers set lead 3")
    assert changed.ok
    assert "lead = 3" in all_text(changed.cards[0])
    off = await run(store, clock, "triggers off weekly")
    assert "weekly cycle: off" in all_text(off.cards[0])
    rules = await TenantTriggerRules(store).of(TENANT)
    assert rules.approaching_days == 3
    assert not rules.fires("weekly_cycle")
    await run(store, clock, "triggers reset")
    assert (await TenantTriggerRules(store).of(TENANT)).approaching_days == 1


async def test_a_bad_setting_gets_the_accepted_values_and_changes_nothing(store: Store, clock: FakeClock) -> None:
    await lead_a_plan(store, clock)
    reply = await run(store, clock, "triggers set budget lots")
    assert not reply.ok
    assert "whole number from 1 to 100" in reply.text
    assert "triggers set lead|" in reply.text
    unknown = await run(store, clock, "triggers off sometimes")
    assert "approaching, slipped" in unknown.text
    assert (await TenantTriggerRules(store).of(TENANT)).daily_budget == 5


async def test_only_leaders_and_admins_change_the_rules(store: Store, clock: FakeClock) -> None:
    await lead_a_plan(store, clock)
    member = await run(store, clock, "triggers set lead 5", user="aad-writer")
    assert not member.ok
    assert "owner of a master plan" in member.text
    admin = await run(store, clock, "triggers set lead 5", user="aad-admin", admin=True)
    assert admin.ok


async def test_admins_see_dead_letters_and_replay_them_and_others_cannot(store: Store, clock: FakeClock) -> None:
    await lead_a_plan(store, clock)
    outbox = Outbox(store)
    await outbox.fire(TENANT, "k1", [Message(recipient="aad-writer", kind="deadline_slipped", payload={"task": 1})])
    [envelope] = await outbox.claim("w")
    await outbox.dead(envelope, "w", error="403: Forbidden")
    refused = await run(store, clock, "outbox", user="aad-writer")
    assert not refused.ok
    assert "COS_ADMINS" in refused.text
    shown = await run(store, clock, "outbox", user="aad-admin", admin=True)
    text = all_text(shown.cards[0])
    assert "1 dead" in text
    assert f"#{envelope.id} deadline slipped to aad-writer" in text
    assert "403: Forbidden" in text
    assert "outbox replay" in shown.text
    bad = await run(store, clock, "outbox replay twelve", user="aad-admin", admin=True)
    assert "by number" in bad.text
    replayed = await run(store, clock, "outbox replay all", user="aad-admin", admin=True)
    assert replayed.text.startswith("1 message(s) put back")
    assert await outbox.counts(TENANT) == {"pending": 1}


def test_admins_are_the_configured_ids_and_in_local_mode_only_the_named_local_admin() -> None:
    assert not Settings.from_env({}).is_admin("anyone")
    assert Settings.from_env({"COS_LOCAL_ADMIN": "aad-me"}).is_admin("aad-me")
    configured = Settings.from_env({"COS_ADMINS": "aad-admin, aad-other"})
    assert configured.is_admin("aad-admin")
    assert not configured.is_admin("aad-writer")
    production = Settings.from_env(
        {"MICROSOFT_APP_ID": "app", "MICROSOFT_APP_PASSWORD": "secret", "MICROSOFT_APP_TENANT_ID": "t"}, strict=False
    )
    assert not production.is_admin("anyone")


def test_the_llm_is_never_offered_admin_or_settings_operations() -> None:
    from bot.llm import Assistant

    assistant = Assistant(None, default_registry(), model="m")  # type: ignore[arg-type]
    tools = {tool["name"] for tool in assistant.tools}
    assert not tools & {"show_outbox", "replay_outbox", "set_trigger_setting", "switch_trigger", "reset_triggers"}


def test_every_follow_up_setting_says_what_it_means() -> None:
    from bot.text.triggers import MEANINGS
    from planner.domain.triggers import SETTINGS

    assert set(MEANINGS) == {setting.name for setting in SETTINGS}
