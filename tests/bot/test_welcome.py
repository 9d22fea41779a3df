"""The welcome: once per install, however Teams announces it, with examples dated in the current quarter."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.cards import welcome_card
from bot.cards.welcome import quarter_of
from bot.grammar import parse
from tests.bot.conftest import TeamsUser
from tests.conftest import FakeClock


def examples(card: dict[str, object]) -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                found.append(str(node["text"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


@pytest.mark.parametrize(
    ("today", "quarter"),
    [
        (date(2026, 2, 2), (date(2026, 1, 1), date(2026, 3, 31))),
        (date(2026, 6, 30), (date(2026, 4, 1), date(2026, 6, 30))),
        (date(2026, 12, 6), (date(2026, 10, 1), date(2026, 12, 31))),
    ],
)
def test_quarters(today: date, quarter: tuple[date, date]) -> None:
    assert quarter_of(today) == quarter


def test_the_examples_are_dated_in_the_quarter_of_today_and_read_as_commands() -> None:
    shown = examples(welcome_card(name=None, is_channel=False, today=date(2026, 12, 6)))
    assert "new plan 500 SQLs by 31 December from 2026-10-01 to 2026-12-31 kpi SQLs 500" in shown
    assert "add task Draft launch email to P2 due 2026-12-20 for @name" in shown
    late = examples(welcome_card(name=None, is_channel=False, today=date(2026, 12, 28)))
    assert "add task Draft launch email to P2 due 2026-12-31 for @name" in late  # never past the quarter
    plan = parse(next(line for line in shown if line.startswith("new plan")))
    assert (plan.operation, plan.args["start"], plan.args["end"]) == ("create_master_plan", "2026-10-01", "2026-12-31")
    assert parse("add task Draft launch email to P2 due 2026-12-20").operation == "add_task"


async def test_one_welcome_per_install_however_teams_announces_it(lead: TeamsUser, clock: FakeClock) -> None:
    clock.now = datetime(2026, 11, 20, 9, tzinfo=UTC)
    running = lead.running
    # Teams sends both for one install, and a conversationUpdate for the person too; a replica may get each.
    await lead.post(lead.activity(type="conversationUpdate", membersAdded=[{"id": "28:bot"}], text=None))
    await lead.post(lead.activity(type="installationUpdate", action="add", text=None))
    await lead.post(lead.activity(type="conversationUpdate", membersAdded=[{"id": "29:aad-lead", "name": "Lead"}]))
    await running.bot.drain()
    [welcome] = await running.connector.wait_for(1)
    assert len(running.connector.sent) == 1
    assert "2026-10-01 to 2026-12-31" in str(welcome.body)

    await lead.post(lead.activity(type="installationUpdate", action="remove", text=None))
    await lead.post(lead.activity(type="installationUpdate", action="add", text=None))
    await running.bot.drain()
    await running.connector.wait_for(2)
    assert len(running.connector.sent) == 2  # removed and added back: a new install, welcomed again


async def test_a_channel_and_a_personal_chat_are_each_welcomed_once(lead: TeamsUser) -> None:
    channel = TeamsUser(lead.running, conversation_id="19:general@thread.tacv2", kind="channel")
    for user in (lead, channel, lead, channel):
        await user.post(user.activity(type="conversationUpdate", membersAdded=[{"id": "28:bot"}], text=None))
    await lead.running.bot.drain()
    sent = await lead.running.connector.wait_for(2)
    assert len(lead.running.connector.sent) == 2
    assert {s.conversation_id for s in sent} == {lead.conversation_id, channel.conversation_id}
