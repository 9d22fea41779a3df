"""What one person receives in a day: one card for what one pass has for them, never more than their budget."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from planner.domain.messages import Message, MessageKind
from planner.domain.model import TaskChanges, TaskStatus
from planner.services.outbox import Outbox
from planner.services.plans import Plans
from planner.services.trigger_rules import TenantTriggerRules
from tests.bot.cards.test_cards import all_text, of_type
from tests.bot.conftest import TENANT, Running, TeamsUser
from tests.bot.test_nudges import FEB, assert_valid_cards, said, sender_for
from tests.conftest import FakeClock

WRITER = "aad-writer"


async def tasks_due(running: Running, clock: FakeClock, count: int) -> list[int]:
    """`count` tasks of the writer's that slipped on 9 February; the writer has written to the bot once."""
    clock.now = datetime(2026, 2, 10, 10, tzinfo=UTC)
    tenant = Plans(running.store, TENANT)
    master = await tenant.create_master_plan(title="Q1 pipeline", owner="aad-lead", window=FEB, actor="aad-lead")
    tactical = await tenant.create_tactical_plan(master.id, title="Launch", owner="aad-lead", window=FEB, actor="x")
    ids = [
        (await tenant.add_task(tactical.id, title=f"Asset {n}", due_on=date(2026, 2, 9), owner=WRITER, actor="x")).id
        for n in range(1, count + 1)
    ]
    await TeamsUser(running, user_id=WRITER, name="Content Writer", conversation_id="a:writer").ask("help")
    return ids


async def remind(running: Running, task_ids: list[int], key: str) -> None:
    messages = [
        Message(recipient=WRITER, kind=MessageKind.DEADLINE_SLIPPED, payload={"task": t, "due_on": "2026-02-09"})
        for t in task_ids
    ]
    assert await Outbox(running.store).fire(TENANT, key, messages)


def to_writer(running: Running, since: int) -> list[dict[str, Any]]:
    return [s.body for s in running.connector.sent[since:] if s.conversation_id == "a:writer" and s.method != "update"]


async def test_what_one_pass_has_for_a_person_arrives_as_one_card_folding_past_the_first_four(
    running: Running, clock: FakeClock
) -> None:
    ids = await tasks_due(running, clock, 6)
    before = len(running.connector.sent)
    await remind(running, ids, "six")
    report = await sender_for(running.store).deliver()
    assert (report.sent, report.folded) == (1, 5)
    [message] = to_writer(running, before)
    assert "text" not in message or not message["text"]  # one card, not a text bubble beside it
    card = message["attachments"][0]["content"]
    assert "6 updates for you" in all_text(card)
    for task_id in ids:
        assert f"T{task_id} Asset" in said(message)
    [more] = [a for a in card.get("actions", []) if a["type"] == "Action.ToggleVisibility"]
    assert more["title"] == "Show 2 more"
    opens = [a for a in of_type(card, "Action.ShowCard") if a["title"] == "Open"]
    assert len(opens) == 6  # each reminder's own card, with its Done and Snooze
    assert "Done" in json.dumps(opens[0]["card"])
    assert_valid_cards(running.connector)


async def test_a_person_gets_at_most_their_daily_budget_and_the_rest_the_next_morning(
    running: Running, clock: FakeClock
) -> None:
    ids = await tasks_due(running, clock, 4)
    await TenantTriggerRules(running.store).change(TENANT, "budget", "2", actor="aad-lead")
    sender = sender_for(running.store)
    before = len(running.connector.sent)
    for n, task_id in enumerate(ids[:3]):
        await remind(running, [task_id], f"one-{n}")
        await sender.deliver()
        clock.advance(seconds=60)
    assert len(to_writer(running, before)) == 2
    # Someone waits for a notice (how their request went): it goes even on a full day.
    notice = Message(recipient=WRITER, kind=MessageKind.NOTICE, payload={"text": "Your export is ready."})
    assert await Outbox(running.store).fire(TENANT, "notice", [notice])
    await remind(running, [ids[3]], "late")
    report = await sender.deliver()
    assert (report.sent, report.put_off) == (1, 1)
    assert "Your export is ready." in said(to_writer(running, before)[-1])
    assert (await sender.deliver()).sent == 0  # nothing more today
    # The next morning, after the quiet hours: what waited arrives, as one card.
    clock.now = datetime(2026, 2, 11, 7, 59, tzinfo=UTC)
    assert (await sender.deliver()).sent == 0
    clock.now = datetime(2026, 2, 11, 8, 0, tzinfo=UTC) + timedelta(minutes=1)
    report = await sender.deliver()
    assert (report.sent, report.folded) == (1, 1)
    morning = said(to_writer(running, before)[-1])
    assert "2 updates for you" in morning
    assert f"T{ids[2]} Asset 3" in morning
    assert f"T{ids[3]} Asset 4" in morning


async def test_messages_dropped_as_no_longer_needed_spend_nothing_of_a_persons_day(
    running: Running, clock: FakeClock
) -> None:
    ids = await tasks_due(running, clock, 3)
    await TenantTriggerRules(running.store).change(TENANT, "budget", "1", actor="aad-lead")
    tenant = Plans(running.store, TENANT)
    sender = sender_for(running.store)
    before = len(running.connector.sent)
    for n, task_id in enumerate(ids[:2]):
        await remind(running, [task_id], f"done-{n}")
        await tenant.update_task(task_id, TaskChanges(status=TaskStatus.DONE), actor=WRITER)
        assert (await sender.deliver()).skipped == 1  # done before its reminder went: dropped
        clock.advance(seconds=60)
    await remind(running, [ids[2]], "still-due")
    assert (await sender.deliver()).sent == 1
    [message] = to_writer(running, before)
    assert f"T{ids[2]} Asset 3" in said(message)
    counts = await Outbox(running.store).counts(TENANT)
    assert (counts["dropped"], counts["sent"]) == (2, 1)
