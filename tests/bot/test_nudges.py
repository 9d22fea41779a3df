"""Proactive messages as people receive them: each kind of nudge, its card, and acting on it in place."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from typing import Any

from bot.scheduler import tick
from bot.sender import Sender
from bot.settings import Settings
from bot.teams.botbuilder import create_channel
from planner.domain.model import MetricSpec, TaskChanges, TaskStatus, Window
from planner.domain.triggers import TriggerRules
from planner.services.directory import Directory
from planner.services.outbox import Outbox
from planner.services.plans import Plans
from planner.services.trigger_rules import TenantTriggerRules
from planner.services.triggers import TriggerEngine
from planner.store import Store
from tests.bot.cards.test_cards import all_text, schema_errors
from tests.bot.conftest import TENANT, Running, TeamsUser
from tests.bot.test_teams import find_action
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector

FEB = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))


async def team_plan(store: Store, clock: FakeClock) -> dict[str, int]:
    """A master plan led by `aad-lead`, one tactical plan, and tasks for `aad-writer` around 10 February."""
    clock.now = datetime(2026, 2, 10, 9, tzinfo=UTC)
    tenant = Plans(store, TENANT)
    master = await tenant.create_master_plan(title="Q1 pipeline", owner="aad-lead", window=FEB, actor="aad-lead")
    tactical = await tenant.create_tactical_plan(master.id, title="Launch", owner="aad-lead", window=FEB, actor="x")
    slipped = await tenant.add_task(
        tactical.id, title="Draft launch email", due_on=date(2026, 2, 9), owner="aad-writer", actor="x"
    )
    launch = await tenant.add_task(
        tactical.id, title="Launch day", due_on=date(2026, 2, 12), owner="aad-writer", milestone=True, actor="x"
    )
    return {"master": master.id, "tactical": tactical.id, "slipped": slipped.id, "launch": launch.id}


def sender_for(store: Store) -> Sender:
    return Sender(store, create_channel(Settings.from_env({})), worker="w", jitter=random.Random(1))


def assert_valid_cards(connector: FakeConnector) -> None:
    for card in connector.cards():
        assert schema_errors(card) == []


async def test_a_nudge_card_done_button_closes_the_task_and_updates_the_nudge_in_place(
    running: Running, clock: FakeClock
) -> None:
    store, connector = running.store, running.connector
    ids = await team_plan(store, clock)
    writer = TeamsUser(running, user_id="aad-writer", name="Content Writer", conversation_id="a:writer")
    await writer.ask("my tasks")  # the member has written once: their personal chat is known
    await TenantTriggerRules(store).switch(TENANT, "weekly", on=False, actor="test")
    await TriggerEngine(store).evaluate(clock.now)
    await sender_for(store).deliver()
    nudge = connector.sent[-1]
    assert nudge.conversation_id == "a:writer"
    assert "Draft launch email was due Mon 9 Feb" in nudge.body["text"]
    card = nudge.body["attachments"][0]["content"]
    assert_valid_cards(connector)
    done = find_action(card, "Done")
    before = len(connector.sent)
    await writer.post(writer.activity(text=None, value=done["data"], replyToId=nudge.activity_id))
    [update] = [s for s in (await connector.wait_for(before + 1))[before:] if s.method == "update"]
    assert update.activity_id == nudge.activity_id
    assert "Done" in all_text(update.body["attachments"][0]["content"])
    assert (await Plans(store, TENANT).get_task(ids["slipped"])).status is TaskStatus.DONE


async def test_monday_brings_the_member_their_week_and_the_channel_a_summary(
    running: Running, clock: FakeClock
) -> None:
    store, connector = running.store, running.connector
    await team_plan(store, clock)
    writer = TeamsUser(running, user_id="aad-writer", name="Content Writer", conversation_id="a:writer")
    await writer.ask("help")
    channel = TeamsUser(running, conversation_id="19:marketing@thread.tacv2", kind="channel")
    await channel.ask("<at>Chief of Staff</at> plans")
    before = len(connector.sent)
    monday = datetime(2026, 2, 16, 9, tzinfo=UTC)
    clock.now = monday
    report = await tick(store, create_channel(Settings.from_env({})), at=monday)
    assert report.delivery.sent >= 2
    arrived = {s.conversation_id: s.body for s in connector.sent[before:]}
    # The week and the reminders of the same pass arrive as one summary card.
    assert "Here is your week (2026-W08)" in said(arrived["a:writer"])
    assert "Your week, 2026-W08" in said(arrived["a:writer"])
    summary = arrived["19:marketing@thread.tacv2"]
    assert "Week 2026-W08" in summary["text"]
    assert "Q1 pipeline" in json.dumps(summary["attachments"][0]["content"])
    assert_valid_cards(connector)


async def test_friday_brings_the_member_a_review_and_the_leader_a_digest(running: Running, clock: FakeClock) -> None:
    store, connector = running.store, running.connector
    await team_plan(store, clock)
    lead = TeamsUser(running)
    writer = TeamsUser(running, user_id="aad-writer", name="Content Writer", conversation_id="a:writer")
    await lead.ask("help")
    await writer.ask("help")
    before = len(connector.sent)
    friday = datetime(2026, 2, 13, 15, tzinfo=UTC)
    clock.now = friday
    await TriggerEngine(store, rules=TriggerRules(enabled=frozenset({"weekly_cycle"}))).evaluate(friday)
    await sender_for(store).deliver()
    arrived = {s.conversation_id: s.body for s in connector.sent[before:]}
    assert "still open" in arrived["a:writer"]["text"]
    digest = arrived["a:personal-lead"]
    assert "Your digest for 2026-W07" in digest["text"]
    assert "Q1 pipeline" in digest["text"]
    assert "slipped" in digest["text"]
    assert_valid_cards(connector)


async def test_the_leader_hears_of_a_milestone_a_drifting_metric_and_a_change_of_health(
    running: Running, clock: FakeClock
) -> None:
    store, connector = running.store, running.connector
    ids = await team_plan(store, clock)
    lead = TeamsUser(running)
    await lead.ask("help")
    tenant = Plans(store, TENANT)
    await Directory(store, TENANT).remember_person("aad-writer", "Content Writer")
    sqls = await tenant.add_metric(ids["master"], MetricSpec(name="SQLs", target=280), actor="x")
    await tenant.record_reading(sqls.id, 20, actor="x")
    engine = TriggerEngine(store, rules=TriggerRules(enabled=frozenset({"milestone_completed", "metric_drift"})))
    await tenant.update_task(ids["launch"], TaskChanges(status=TaskStatus.DONE), actor="aad-writer")
    await engine.evaluate(clock.now)
    await sender_for(store).deliver()
    [summary] = [said(s.body) for s in connector.sent if s.conversation_id == "a:personal-lead"][-1:]
    assert "2 updates for you" in summary  # the milestone and the drift, in one card
    assert "Milestone reached: T" in summary
    assert "Launch day, done by Content Writer" in summary
    assert "SQLs is off track" in summary
    drift_card = connector.cards()[-1]
    assert "expected by now: 100" in all_text(drift_card)
    assert_valid_cards(connector)


async def test_a_member_who_never_wrote_gets_a_new_personal_chat_found_in_the_team_by_id_not_by_its_roster(
    running: Running, clock: FakeClock
) -> None:
    store, connector = running.store, running.connector
    await team_plan(store, clock)
    channel = TeamsUser(running, conversation_id="19:marketing@thread.tacv2", kind="channel")
    await channel.ask("<at>Chief of Staff</at> plans")
    connector.members["19:marketing@thread.tacv2"] = [
        {"id": "29:lead", "name": "Lead", "aadObjectId": "aad-lead"},
        {"id": "29:writer", "name": "Content Writer", "aadObjectId": "aad-writer"},
    ]
    await TenantTriggerRules(store).switch(TENANT, "weekly", on=False, actor="test")
    await TriggerEngine(store).evaluate(clock.now)
    report = await sender_for(store).deliver()
    assert report.sent == 1
    [created] = [s for s in connector.sent if s.method == "create"]
    assert created.body["members"] == [{"id": "29:writer"}]
    assert created.body["channelData"]["tenant"]["id"] == TENANT
    nudge = connector.sent[-1]
    assert nudge.conversation_id == created.conversation_id
    chats = await Directory(store, TENANT).conversations(kind="personal", user_id="aad-writer")
    assert [c.conversation_id for c in chats] == [created.conversation_id]
    assert (await Directory(store, TENANT).person("aad-writer")).name == "Content Writer"  # type: ignore[union-attr]
    assert connector.roster_reads == 0


async def test_someone_in_no_team_of_the_bot_is_a_dead_letter_not_a_crash(running: Running, clock: FakeClock) -> None:
    store = running.store
    await team_plan(store, clock)
    await TenantTriggerRules(store).switch(TENANT, "weekly", on=False, actor="test")
    await TriggerEngine(store).evaluate(clock.now)
    report = await sender_for(store).deliver()
    assert report.dead == 1
    assert await Outbox(store).counts(TENANT) == {"dead": 1}


async def test_a_policy_that_stops_nudges_keeps_them_unsent_and_says_why_in_the_log(
    running: Running, clock: FakeClock
) -> None:
    from planner.services.decisions import DecisionLog
    from planner.services.policy import PolicySets

    store, connector = running.store, running.connector
    await team_plan(store, clock)
    writer = TeamsUser(running, user_id="aad-writer", name="Content Writer", conversation_id="a:writer")
    await writer.ask("help")
    rule = {
        "id": "launch-freeze",
        "description": "No reminders during the launch freeze",
        "effect": "forbid",
        "kinds": ["nudge"],
        "actions": ["deadline_slipped"],
    }
    await PolicySets(store, TENANT).load({"rules": [rule]}, actor="aad-admin")
    await TenantTriggerRules(store).switch(TENANT, "weekly", on=False, actor="test")
    before = len(connector.sent)
    await TriggerEngine(store).evaluate(clock.now)
    report = await sender_for(store).deliver()
    assert (report.sent, report.skipped) == (0, 1)
    assert len(connector.sent) == before
    [entry] = await DecisionLog(store, TENANT).entries()
    assert (entry.action, entry.verdict, entry.rules) == ("nudge.stopped", "stop", ("launch-freeze",))
    assert "No reminders during the launch freeze" in entry.rationale


async def test_a_nudge_a_policy_flags_waits_for_an_approver_and_goes_out_once_approved(
    running: Running, clock: FakeClock
) -> None:
    from planner.services.approvals import Approvers
    from planner.services.decisions import DecisionLog
    from planner.services.policy import PolicySets

    store, connector = running.store, running.connector
    await team_plan(store, clock)
    writer = TeamsUser(running, user_id="aad-writer", name="Content Writer", conversation_id="a:writer")
    lead = TeamsUser(running)
    await writer.ask("help")
    await lead.ask("help")
    rule = {
        "id": "reminders-checked",
        "description": "A person looks at reminders during the launch first",
        "effect": "require",
        "kinds": ["nudge"],
        "actions": ["deadline_slipped"],
    }
    await PolicySets(store, TENANT).load({"rules": [rule]}, actor="aad-admin")
    await Approvers(store, TENANT).assign("leader", "aad-lead", actor="aad-admin")
    await TenantTriggerRules(store).switch(TENANT, "weekly", on=False, actor="test")
    before = len(connector.sent)
    await TriggerEngine(store).evaluate(clock.now)
    report = await sender_for(store).deliver()
    assert (report.sent, report.held) == (0, 1)
    assert all(s.conversation_id != "a:writer" for s in connector.sent[before:])
    await sender_for(store).deliver()  # the approval card goes to the leader
    asked = [s for s in connector.sent[before:] if s.conversation_id == "a:personal-lead"]
    assert any("deadline slipped message to Content Writer about T" in all_text(s.body) for s in asked)
    held = [e for e in await DecisionLog(store, TENANT).entries() if e.action == "nudge.held"]
    assert [(e.verdict, e.rules) for e in held] == [("flag", ("reminders-checked",))]
    assert "waits for a person to approve it" in held[0].rationale
    assert (await sender_for(store).deliver()).sent == 0  # still waiting: nothing goes out by itself

    [approved] = await lead.ask("approve A1")
    assert "The message goes out at the next delivery" in approved
    # Approving never overrides what protects the recipient: the reply says when it does not go at once.
    assert "in the recipient's quiet hours, or once their day's messages are used up, on their next morning" in approved
    await sender_for(store).deliver()
    to_writer = [s for s in connector.sent[before:] if s.conversation_id == "a:writer"]
    assert len(to_writer) == 1
    assert (await sender_for(store).deliver()).sent == 0


def said(body: dict[str, Any]) -> str:
    """What a message says: its text and its cards' (nested ones included)."""
    cards = [a["content"] for a in body.get("attachments", [])]
    return "\n".join([body.get("text") or "", *(all_text(card) for card in cards)])
