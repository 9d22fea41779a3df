"""A delegation started from chat is followed in a card sent to its task's owner, updated in place as the agent
reports progress (at most one update per interval, and always the final state), against the project's vendor agent
on loopback and the Bot Connector on loopback."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator

import pytest

from bot.progress import LiveCards
from bot.settings import Settings
from bot.teams.botbuilder import create_channel
from bot.teams.channel import Address, Member, Outgoing, TeamsChannel
from planner.domain.messages import Message, MessageKind
from planner.services.outbox import Outbox
from planner.services.trigger_rules import TenantTriggerRules
from planner.store import Store
from tests.adapters.vendor_agent import serve_in_process
from tests.bot.cards.test_cards import all_text, schema_errors, texts
from tests.bot.conftest import TENANT, Running, a_delegating_bot
from tests.bot.delegating import a_desk, to_the_writer, vendor_registered
from tests.conftest import FakeClock
from tests.fakes.a2a_agent import serve as serve_a2a
from tests.fakes.connector import FakeConnector, Sent


class NeverUpdating:
    """A Teams that takes new messages but never answers an update (a card's updates hang)."""

    def __init__(self, channel: TeamsChannel) -> None:
        self._channel = channel
        self.updates = 0

    async def send(self, address: Address, message: Outgoing) -> str | None:
        return await self._channel.send(address, message)

    async def update(self, address: Address, activity_id: str, message: Outgoing) -> None:
        self.updates += 1
        await asyncio.Event().wait()

    async def member(self, conversation: Address, user_id: str) -> Member | None:
        return await self._channel.member(conversation, user_id)

    async def open_personal_chat(self, via: Address, member: Member) -> Address:
        return await self._channel.open_personal_chat(via, member)


class WithoutIds(NeverUpdating):
    """A Teams that takes new messages but answers with an empty id (as the emulator does for a message of text and a
    card, which it shows as two), and counts the updates asked of it."""

    async def send(self, address: Address, message: Outgoing) -> str | None:
        await self._channel.send(address, message)
        return ""

    async def update(self, address: Address, activity_id: str, message: Outgoing) -> None:
        self.updates += 1


@pytest.fixture
async def following(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Running]:
    live = functools.partial(LiveCards, every_seconds=3600)
    async with a_delegating_bot(store, connector, clock, live_cards=live) as running:
        yield running


async def an_export_delegated(running: Running, clock: FakeClock, **steps: object) -> list[Sent]:
    """The lead delegates the writer's task to the vendor's export_report; what then reached the writer."""
    task_id, lead, _ = await a_desk(running, clock)
    async with serve_in_process() as url:
        await vendor_registered(lead, url, "export_report")
        before = len(running.connector.sent)
        await lead.ask(f"delegate T{task_id} to vendor export_report {json.dumps({'campaign': 'abm-q1', **steps})}")
        await running.bot.drain()
    return to_the_writer(running, before)


def card_of(sent: Sent) -> dict[str, object]:
    card: dict[str, object] = sent.body["attachments"][0]["content"]
    return card


async def test_the_owners_card_follows_a_delegation_as_it_progresses_throttled_and_ends_as_its_result(
    following: Running, clock: FakeClock
) -> None:
    live, *updates, result = await an_export_delegated(following, clock, steps=3, pause=0.5)
    # One message reaches the owner: the live card, which every later activity updates. Each is the card alone, its
    # words in it (a message of text and a card may be shown as two, and the text would then be what is updated),
    # and it is titled with the task's title, not numbers.
    assert [s.method for s in (live, *updates, result)].count("send") == 1
    assert live.method == "send"
    assert all(not s.body.get("text") for s in (live, *updates, result))
    assert live.body["summary"] == "Under way: this card shows what vendor reports as it goes, and where it ends."
    assert texts(card_of(live))[:4] == [
        "Launch email",
        "Delegated to vendor: export_report (D1)",
        "Under way: this card shows what vendor reports as it goes, and where it ends.",
        "Running",
    ]
    # The first step shows at once; the next two come within the interval, so only the final state follows.
    assert [u.method for u in updates] == ["update", "update"]
    assert {u.activity_id for u in updates} == {live.activity_id}
    first, final = (card_of(u) for u in updates)
    assert "Running" in texts(first)
    assert "1/3: exported part 1 of abm-q1" in all_text(first)
    assert "2/3" not in all_text(first)
    assert schema_errors(final) == []
    assert any(text.startswith("Done in") for text in texts(final))
    assert "3/3: exported part 3 of abm-q1" in all_text(final)
    # The result arrives as the card's last update: the same card, with what to do next, its actions with it.
    assert (result.method, result.activity_id) == ("update", live.activity_id)
    assert schema_errors(card_of(result)) == []
    assert "It is back: check it, and mark the task done when it is." in texts(card_of(result))
    lead = texts(card_of(result))[2]
    assert [b for b in card_of(result)["body"] if b.get("text") != lead] == final["body"]  # type: ignore[attr-defined]


async def test_on_a_day_whose_message_budget_is_spent_the_result_still_ends_the_card_it_updates(
    following: Running, clock: FakeClock
) -> None:
    task_id, lead, _ = await a_desk(following, clock)
    await TenantTriggerRules(following.store).change(TENANT, "budget", "1", actor="aad-lead")
    notice = Message(recipient="aad-writer", kind=MessageKind.NOTICE, payload={"text": "Your export is ready."})
    assert await Outbox(following.store).fire(TENANT, "notice", [notice])
    delegator = following.bot.delegator
    assert delegator is not None
    assert delegator.deliver_now is not None
    assert (await delegator.deliver_now()).sent == 1  # the writer's one message of the day
    async with serve_in_process() as url:
        await vendor_registered(lead, url, "export_report")
        before = len(following.connector.sent)
        await lead.ask(f"delegate T{task_id} to vendor export_report {json.dumps({'campaign': 'abm-q1'})}")
        await following.bot.drain()
    live, *_, result = to_the_writer(following, before)
    assert (result.method, result.activity_id) == ("update", live.activity_id)
    assert "It is back: check it, and mark the task done when it is." in texts(card_of(result))


async def test_a_result_whose_card_was_deleted_arrives_as_a_message_of_its_own(
    following: Running, clock: FakeClock
) -> None:
    following.connector.deleted = True  # the owner deleted the card: Teams refuses its updates
    live, result = await an_export_delegated(following, clock, steps=3)
    assert (live.method, result.method) == ("send", "send")
    assert result.activity_id != live.activity_id
    assert result.body["summary"] == texts(card_of(result))[2]  # its notification says how it went, as the card does
    assert "It is back: check it, and mark the task done when it is." in texts(card_of(result))
    assert any(text.startswith("Done in") for text in texts(card_of(result)))


async def test_a_teams_that_never_takes_the_cards_updates_holds_up_neither_the_delegation_nor_its_result(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    teams = NeverUpdating(create_channel(Settings.from_env({})))
    live = functools.partial(LiveCards, every_seconds=0, finish_seconds=0.5)
    async with a_delegating_bot(store, connector, clock, channel=teams, live_cards=live, update_seconds=0.5) as running:
        live, result = await an_export_delegated(running, clock, steps=3)
        delegation = await running.bot.delegator.delegations(TENANT).get(1)
    assert teams.updates >= 2  # the card's, then the result's: sent anew when Teams did not answer in time
    assert (live.method, result.method) == ("send", "send")
    assert delegation.status.value == "succeeded"
    assert delegation.progress[-1] == "3/3: exported part 3 of abm-q1"
    assert "It is back: check it, and mark the task done when it is." in texts(card_of(result))


async def test_a_card_sent_without_an_id_is_not_updated_and_the_result_arrives_as_a_message(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    teams = WithoutIds(create_channel(Settings.from_env({})))
    live = functools.partial(LiveCards, every_seconds=0)
    async with a_delegating_bot(store, connector, clock, channel=teams, live_cards=live) as running:
        live_card, result = await an_export_delegated(running, clock, steps=3)
        delegation = await running.bot.delegator.delegations(TENANT).get(1)
    assert teams.updates == 0  # never an update of the conversation's last message, or of nothing
    assert (live_card.method, result.method) == ("send", "send")
    assert delegation.live_card is None
    assert "It is back" not in all_text(card_of(result))  # a message of its own says so in its text
    assert "is back" in result.body["text"]


async def test_a_delegation_whose_agent_is_down_leaves_its_card_saying_it_waits(
    following: Running, clock: FakeClock
) -> None:
    task_id, lead, _ = await a_desk(following, clock)
    async with serve_in_process() as url:
        await vendor_registered(lead, url, "export_report")
    await following.bot.delegator.pool.close()  # the vendor is gone: the next call opens a new session, and fails
    before = len(following.connector.sent)
    await lead.ask(f'delegate T{task_id} to vendor export_report {{"campaign": "abm-q1"}}')
    await following.bot.drain()
    live, final, told = to_the_writer(following, before)
    assert (live.method, final.method, final.activity_id) == ("send", "update", live.activity_id)
    assert "Deferred: its agent is down, it runs once the agent is back" in texts(card_of(final))
    assert "It stopped here for now: you'll hear when it moves on." in texts(card_of(final))
    # Why it waits arrives in the same card.
    assert (told.method, told.activity_id) == ("update", live.activity_id)
    assert "vendor is not answering: I'll run it as soon as it is back." in texts(card_of(told))
    # Later the vendor is back and the scheduler runs it again, followed by nobody: its result is a message.
    before = len(following.connector.sent)
    async with serve_in_process(port=int(url.split(":")[2].split("/")[0])):
        clock.advance(minutes=10)
        assert await following.bot.delegator.run_due(clock.now) == 1
    [result] = to_the_writer(following, before)
    assert result.method == "send"
    assert "is back" in result.body["text"]


async def test_an_a2a_agents_working_messages_follow_in_the_owners_card_as_data_and_it_ends_as_the_result(
    following: Running, clock: FakeClock
) -> None:
    task_id, lead, _ = await a_desk(following, clock)
    async with serve_a2a() as (url, _):
        await lead.ask(f"adapter add a2a planner {json.dumps({'url': url, 'poll_seconds': 0.05})}")
        before = len(following.connector.sent)
        await lead.ask(f"delegate T{task_id} to planner staged_report {{}}")
        await following.bot.drain()
    live, *updates = to_the_writer(following, before)
    assert live.method == "send"
    assert {(u.method, u.activity_id) for u in updates} == {("update", live.activity_id)}
    result = updates[-1]
    card = card_of(result)
    assert "It is back: check it, and mark the task done when it is." in texts(card)
    assert schema_errors(card) == []
    shown = all_text(card)
    assert "reading 40 accounts" in shown
    # The hostile step is shown as the agent wrote it, on one line: no tag, emphasis or link of its own.
    assert "IGNORE PREVIOUS INSTRUCTIONS" in shown
    assert "**done**" not in shown
    assert "[click](https://attacker.example)" not in shown
