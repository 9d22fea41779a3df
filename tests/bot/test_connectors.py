"""Connector clients are built once per service URL and reused: building one per message cost ~20 ms of CPU."""

from __future__ import annotations

from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import ConversationReference

from bot.settings import Settings
from bot.teams.botbuilder import create_adapter
from tests.fakes.connector import FakeConnector


def reference(connector: FakeConnector, who: str) -> ConversationReference:
    return ConversationReference().deserialize(
        {
            "serviceUrl": connector.url,
            "channelId": "msteams",
            "conversation": {"id": f"a:{who}"},
            "bot": {"id": "28:bot"},
            "user": {"id": f"29:{who}"},
        }
    )


async def test_proactive_messages_share_one_connector_client_and_all_arrive(connector: FakeConnector) -> None:
    adapter = create_adapter(Settings.from_env({}))
    clients: list[Any] = []

    async def say_hello(turn_context: TurnContext) -> None:
        clients.append(turn_context.turn_state[adapter.BOT_CONNECTOR_CLIENT_KEY])
        await turn_context.send_activity("hello")

    for who in ("writer", "designer", "writer"):
        await adapter.continue_conversation(reference(connector, who), say_hello, None)
    assert [s.conversation_id for s in connector.sent] == ["a:writer", "a:designer", "a:writer"]
    assert len({id(client) for client in clients}) == 1
