"""The seam to Teams on botbuilder: our values in, our errors out, against a Bot Connector on loopback."""

from __future__ import annotations

import socket

import pytest

from bot.settings import Settings
from bot.teams.botbuilder import BotbuilderChannel, create_adapter
from bot.teams.channel import Address, Member, Outgoing, Rejected, Throttled, TransientFailure
from tests.fakes.connector import FakeConnector

CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Week 7"}]}


def channel() -> BotbuilderChannel:
    return BotbuilderChannel(create_adapter(Settings.from_env({})))


def chat(connector: FakeConnector, conversation_id: str = "a:writer") -> Address:
    return Address(
        service_url=connector.url, conversation_id=conversation_id, tenant_id="contoso", bot_id="28:bot", user_id="29:w"
    )


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_message_with_a_card_arrives_as_sent_and_its_id_comes_back(connector: FakeConnector) -> None:
    message = Outgoing(text="Your week", cards=(CARD,), channel_data={"cosOutboxId": 7})
    activity_id = await channel().send(chat(connector), message)
    [sent] = connector.sent
    assert activity_id == sent.activity_id
    assert (sent.conversation_id, sent.body["text"], sent.body["channelData"]) == (
        "a:writer",
        "Your week",
        {"cosOutboxId": 7},
    )
    assert connector.cards() == [CARD]


async def test_a_card_is_updated_in_place(connector: FakeConnector) -> None:
    teams = channel()
    activity_id = await teams.send(chat(connector), Outgoing(cards=(CARD,)))
    assert activity_id is not None
    await teams.update(chat(connector), activity_id, Outgoing(cards=({**CARD, "body": []},)))
    assert [(s.method, s.activity_id) for s in connector.sent] == [("send", activity_id), ("update", activity_id)]


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (429, {"Retry-After": "30"}, Throttled, 30.0),
        (429, {}, Throttled, None),
        (412, {}, TransientFailure, None),
        (502, {}, TransientFailure, None),
        (503, {}, TransientFailure, None),
        (403, {}, Rejected, None),
        (404, {}, Rejected, None),
    ],
)
async def test_teams_refusals_come_out_as_the_bots_own_errors(
    connector: FakeConnector, status: int, headers: dict[str, str], error: type[Exception], retry_after: float | None
) -> None:
    connector.failures.append((status, headers))
    with pytest.raises(error) as raised:
        await channel().send(chat(connector), Outgoing(text="hello"))
    assert getattr(raised.value, "status", None) == status
    assert getattr(raised.value, "retry_after", None) == retry_after
    assert connector.sent == []


async def test_a_connector_that_cannot_be_reached_is_a_transient_failure() -> None:
    closed = Address(service_url=f"http://127.0.0.1:{unused_port()}/", conversation_id="a:writer", tenant_id="contoso")
    with pytest.raises(TransientFailure, match="connection failed"):
        await channel().send(closed, Outgoing(text="hello"))


async def test_one_member_is_looked_up_by_id_without_reading_the_roster(connector: FakeConnector) -> None:
    connector.members["19:team"] = [{"id": "29:designer", "aadObjectId": "aad-designer", "name": "A new user"}]
    team = chat(connector, "19:team")
    found = await channel().member(team, "aad-designer")
    assert found == Member(id="29:designer", aad_object_id="aad-designer", name="A new user")
    assert await channel().member(team, "aad-stranger") is None
    assert connector.roster_reads == 0


async def test_a_personal_chat_is_opened_with_the_member_through_the_teams_connector(connector: FakeConnector) -> None:
    opened = await channel().open_personal_chat(chat(connector, "19:team"), Member(id="29:designer"))
    [created] = connector.sent
    assert created.method == "create"
    assert created.body["members"] == [{"id": "29:designer"}]
    assert (opened.conversation_id, opened.user_id, opened.tenant_id) == (
        created.conversation_id,
        "29:designer",
        "contoso",
    )
    assert opened.conversation_kind == "personal"


def test_an_address_is_stored_as_a_bot_framework_conversation_reference_and_read_back() -> None:
    stored = {
        "serviceUrl": "https://smba.trafficmanager.net/emea/",
        "channelId": "msteams",
        "conversation": {"id": "19:general", "conversationType": "channel", "tenantId": "contoso"},
        "bot": {"id": "28:bot", "name": "Chief of Staff"},
        "user": {"id": "29:w", "aadObjectId": "aad-w", "name": "A new user"},
        "activityId": "1700000000000",
        "locale": "en-US",
    }
    address = Address.from_stored(stored)
    assert (address.conversation_kind, address.tenant_id, address.user_id, address.activity_id) == (
        "channel",
        "contoso",
        "29:w",
        "1700000000000",
    )
    assert Address.from_stored(address.stored()) == address
    with pytest.raises(ValueError, match="serviceUrl"):
        Address.from_stored({"conversation": {"id": "19:general"}})
