"""The sender against a loopback Bot Connector: nudges arrive once, throttling is retried, refusals dead-letter."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from bot.sender import Sender
from bot.settings import Settings
from bot.teams.botbuilder import BotbuilderChannel, create_adapter, create_channel
from planner.domain.model import TaskChanges, TaskStatus, Window
from planner.services.directory import Directory
from planner.services.outbox import Outbox, dead_letters
from planner.services.plans import Plans
from planner.services.trigger_rules import TenantTriggerRules
from planner.services.triggers import TriggerEngine
from planner.store import Store
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector

FEB = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))


async def personal_chat(store: Store, connector: FakeConnector, who: str) -> None:
    """Store the personal chat of `aad-<who>` with the bot, reachable through the fake connector."""
    await Directory(store, "contoso").remember_conversation(
        f"a:{who}",
        kind="personal",
        user_id=f"aad-{who}",
        address={
            "serviceUrl": connector.url,
            "channelId": "msteams",
            "conversation": {"id": f"a:{who}"},
            "bot": {"id": "28:bot"},
            "user": {"id": f"29:{who}"},
        },
    )


async def setup(store: Store, connector: FakeConnector, clock: FakeClock) -> tuple[Sender, int]:
    clock.now = datetime(2026, 2, 10, 9, tzinfo=UTC)
    tenant = Plans(store, "contoso")
    master = await tenant.create_master_plan(title="Q1", owner="aad-lead", window=FEB, actor="aad-lead")
    tactical = await tenant.create_tactical_plan(master.id, title="Launch", owner="aad-lead", window=FEB, actor="x")
    task = await tenant.add_task(
        tactical.id, title="Draft email", due_on=date(2026, 2, 9), owner="aad-writer", actor="x"
    )
    await personal_chat(store, connector, "writer")
    await TenantTriggerRules(store).switch("contoso", "weekly", on=False, actor="test")  # deadlines only here
    sender = Sender(store, create_channel(Settings.from_env({})), worker="w1", jitter=random.Random(1))
    return sender, task.id


async def test_a_slipped_deadline_reaches_its_owner_once_as_a_task_card(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    sender, task_id = await setup(store, connector, clock)
    assert await TriggerEngine(store).evaluate(clock.now) == 1
    report = await sender.deliver()
    assert (report.sent, report.dead) == (1, 0)
    [sent] = connector.sent
    assert sent.conversation_id == "a:writer"
    assert f"T{task_id} Draft email was due Mon 9 Feb" in sent.body["text"]
    assert sent.body["attachments"][0]["content"]["type"] == "AdaptiveCard"
    assert (await sender.deliver()).sent == 0
    assert await TriggerEngine(store).evaluate(clock.now + timedelta(hours=1)) == 0


async def test_throttling_is_retried_after_retry_after_and_then_delivered(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    sender, _ = await setup(store, connector, clock)
    await TriggerEngine(store).evaluate(clock.now)
    connector.failures.append((429, {"Retry-After": "30"}))
    report = await sender.deliver()
    assert report.retried == 1
    assert await sender.deliver() == type(report)()  # not due before 30 s
    clock.advance(seconds=31)
    assert (await sender.deliver()).sent == 1
    assert await Outbox(store).counts() == {"sent": 1}


async def test_a_refusal_or_too_many_failures_goes_to_the_dead_letters(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    sender, _ = await setup(store, connector, clock)
    sender.max_attempts = 2
    await TriggerEngine(store).evaluate(clock.now)
    connector.failures.extend([(502, {}), (502, {})])
    assert (await sender.deliver()).retried == 1
    clock.advance(minutes=5)
    assert (await sender.deliver()).dead == 1
    assert await Outbox(store).counts() == {"dead": 1}
    assert connector.sent == []


async def test_teams_failing_for_now_is_retried_and_a_refusal_goes_straight_to_the_dead_letters(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    sender, _ = await setup(store, connector, clock)
    await TriggerEngine(store).evaluate(clock.now)
    connector.failures.extend([(503, {}), (403, {})])
    assert (await sender.deliver()).retried == 1
    clock.advance(minutes=5)
    assert (await sender.deliver()).dead == 1
    [dead] = await dead_letters(store)
    assert dead.last_error.startswith("403: Teams refused the request (403)")
    assert connector.sent == []


async def test_nobody_to_write_to_and_work_already_done(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    sender, task_id = await setup(store, connector, clock)
    tenant = Plans(store, "contoso")
    other = await tenant.add_task(
        (await tenant.get_task(task_id)).plan_id,
        title="Brief",
        due_on=date(2026, 2, 9),
        owner="aad-stranger",
        actor="x",
    )
    await TriggerEngine(store).evaluate(clock.now)
    await tenant.update_task(task_id, TaskChanges(status=TaskStatus.DONE), actor="aad-writer")
    report = await sender.deliver()
    assert (report.sent, report.skipped, report.dead) == (0, 1, 1)
    assert connector.sent == []
    assert other.owner == "aad-stranger"


async def test_a_tick_fires_and_delivers_then_a_second_tick_does_nothing(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    from bot.scheduler import tick

    await setup(store, connector, clock)
    adapter = create_adapter(Settings.from_env({}))
    first = await tick(store, BotbuilderChannel(adapter), at=clock.now)
    assert (first.fired, first.delivery.sent) == (1, 1)
    second = await tick(store, BotbuilderChannel(adapter), at=clock.now + timedelta(minutes=1))
    assert (second.fired, second.delivery.sent) == (0, 0)
    assert len(connector.sent) == 1


async def test_an_escalation_reaches_the_plan_owner_naming_the_silent_owner(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    sender, task_id = await setup(store, connector, clock)
    directory = Directory(store, "contoso")
    await directory.remember_person("aad-writer", "Content Writer")
    await personal_chat(store, connector, "lead")
    engine = TriggerEngine(store)
    await engine.evaluate(clock.now)
    await sender.deliver()
    clock.advance(hours=25)
    assert await engine.evaluate(clock.now) == 1
    assert (await sender.deliver()).sent == 1
    escalation = connector.sent[-1]
    assert escalation.conversation_id == "a:lead"
    assert "Content Writer has not answered the reminder" in escalation.body["text"]
    assert f"T{task_id}" in escalation.body["text"]
