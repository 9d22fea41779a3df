"""A vendor site's 2FA question relayed to a person in Teams, and their answer passed back once."""

from __future__ import annotations

import asyncio

import pytest

from bot.relay import TeamsHumanChannel
from bot.sender import Sender
from bot.settings import Settings
from bot.teams.botbuilder import create_channel
from planner.ports import AgentTimeout, QuestionCancelled
from planner.services.tenants import Tenants
from tests.bot.cards.test_cards import all_text, schema_errors, texts
from tests.bot.conftest import TENANT, Running, TeamsUser
from tests.conftest import FakeClock


def channel_to(running: Running, user_id: str) -> TeamsHumanChannel:
    sender = Sender(running.store, create_channel(Settings.from_env({})), worker="relay")
    return TeamsHumanChannel(
        Tenants(running.store)(TENANT), user_id, agent="Vendor portal", deliver_now=sender.deliver, poll_seconds=0.01
    )


async def test_the_code_typed_in_teams_reaches_the_waiting_agent(running: Running) -> None:
    owner = TeamsUser(running, user_id="aad-owner", name="Campaign Owner", conversation_id="a:owner")
    await owner.ask("help")
    before = len(running.connector.sent)
    asking = asyncio.create_task(channel_to(running, "aad-owner").ask("Enter the 6-digit code", timeout_seconds=300))
    [question] = (await running.connector.wait_for(before + 1))[before:]
    assert question.conversation_id == "a:owner"
    assert "Vendor portal needs an answer from you" in question.body["text"]
    assert "within 5 minutes" in question.body["text"]
    asked = question.body["attachments"][0]["content"]
    assert schema_errors(asked) == []
    assert texts(asked)[:2] == ["A question from Vendor portal", "Enter the 6-digit code"]
    assert 'Reply here within 5 minutes, or say "cancel"' in all_text(asked)
    # An ordinary command still works while the question waits.
    assert "There is no plan yet" in (await owner.ask("plans"))[0]
    assert await owner.ask("482913") == ["Thanks, I've passed it on."]
    assert await asyncio.wait_for(asking, 5) == "482913"
    # The same code again: nothing waits for it, and it is not repeated back.
    [late] = await owner.ask("482913")
    assert late.startswith("Nothing is waiting for a code from you")
    assert "482" not in late


@pytest.mark.parametrize("typed", ["448 912", "448-912", " 448  912 "])
async def test_a_code_typed_in_groups_is_passed_on_as_one_code_and_never_echoed(running: Running, typed: str) -> None:
    owner = TeamsUser(running, user_id="aad-owner", name="Campaign Owner", conversation_id="a:owner")
    await owner.ask("help")
    before = len(running.connector.sent)
    asking = asyncio.create_task(channel_to(running, "aad-owner").ask("Enter the code", timeout_seconds=300))
    await running.connector.wait_for(before + 1)

    replies = await owner.ask(typed)

    assert replies == ["Thanks, I've passed it on."]
    assert await asyncio.wait_for(asking, 5) == "448912"


async def test_no_answer_in_time_is_a_timeout_and_a_cancel_is_a_cancel_for_the_agent(
    running: Running, clock: FakeClock
) -> None:
    owner = TeamsUser(running, user_id="aad-owner", name="Campaign Owner", conversation_id="a:owner")
    await owner.ask("help")
    before = len(running.connector.sent)
    asking = asyncio.create_task(channel_to(running, "aad-owner").ask("code?", timeout_seconds=120))
    await running.connector.wait_for(before + 1)
    clock.advance(minutes=3)
    with pytest.raises(AgentTimeout, match="no answer within 120 s"):
        await asyncio.wait_for(asking, 5)
    assert "expired" not in (await owner.ask("cancel"))[0]  # nothing waits: `cancel` is just not a command

    before = len(running.connector.sent)
    asking = asyncio.create_task(channel_to(running, "aad-owner").ask("code?", timeout_seconds=120))
    await running.connector.wait_for(before + 1)
    assert (await owner.ask("cancel"))[0].startswith("Cancelled")
    with pytest.raises(QuestionCancelled):
        await asyncio.wait_for(asking, 5)
