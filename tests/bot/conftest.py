"""A running bot on loopback, wired to a fake Bot Connector, and a Teams user to talk to it."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.artifacts import ArtifactLinks
from bot.delegating import Delegator
from bot.http.app import create_app
from bot.sender import UPDATE_SECONDS, Sender
from bot.settings import Settings
from bot.teams.botbuilder import create_adapter, create_channel
from bot.teams.channel import TeamsChannel
from bot.teams.handler import ChiefOfStaffBot
from planner.domain.circuits import BreakerSettings
from planner.store import Store
from planner.store.vault import Vault
from tests.adapters.operator import LIMITS
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector

TENANT = "tenant-contoso"
LOCAL_ADMIN = "aad-lead"
"""The user `cos serve --local-admin` names in these tests: the lead (a local bot has no admin otherwise)."""


@dataclass
class Running:
    store: Store
    bot: ChiefOfStaffBot
    server: TestServer
    connector: FakeConnector
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return str(self.server.make_url("/api/messages"))


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = FakeConnector()
    await fake.start()
    yield fake
    await fake.close()


async def start_bot(store: Store, connector: FakeConnector, clock: FakeClock, **bot_kwargs: Any) -> Running:
    settings = Settings.from_env({"COS_LOCAL_ADMIN": LOCAL_ADMIN})
    adapter = create_adapter(settings)
    bot = ChiefOfStaffBot(store, settings, clock=clock, **bot_kwargs)
    bot.adapter = adapter
    server = TestServer(create_app(store, adapter, bot, settings), host="127.0.0.1")
    await server.start_server()
    return Running(store, bot, server, connector, aiohttp.ClientSession())


@contextlib.asynccontextmanager
async def a_delegating_bot(
    store: Store,
    connector: FakeConnector,
    clock: FakeClock,
    *,
    channel: TeamsChannel | None = None,
    artifact_links: ArtifactLinks | None = None,
    vault: Vault | None = None,
    update_seconds: float = UPDATE_SECONDS,
    **delegator: Any,
) -> AsyncIterator[Running]:
    """A bot that delegates, within the tests' operator limits, its results sent through `channel` (by default the
    real one, to the fake connector); `delegator`: more of the Delegator's arguments (`live_cards` takes the sender)."""
    sender = Sender(
        store,
        channel or create_channel(Settings.from_env({})),
        worker="delegator",
        artifact_links=artifact_links,
        update_seconds=update_seconds,
    )
    live = delegator.pop("live_cards", None)
    delegating = Delegator(
        store,
        vault or Vault([Vault.generate_key()]),
        deliver_now=sender.deliver,
        breaker_settings=BreakerSettings(failure_threshold=2, cool_down=timedelta(minutes=5)),
        limits=LIMITS,
        live_cards=live(sender) if live is not None else None,
        **delegator,
    )
    running = await start_bot(store, connector, clock, delegator=delegating)
    try:
        yield running
    finally:
        await running.bot.drain()
        await delegating.close()
        await running.session.close()
        await running.server.close()


@pytest.fixture
async def delegating(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Running]:
    """A bot that delegates (`a_delegating_bot` as it comes)."""
    async with a_delegating_bot(store, connector, clock) as running:
        yield running


@pytest.fixture
async def running(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Running]:
    bot = await start_bot(store, connector, clock)
    yield bot
    await bot.bot.drain()
    await bot.session.close()
    await bot.server.close()


_ids = itertools.count(1)


@dataclass
class TeamsUser:
    """Sends Teams-shaped activities as one user, the way Teams' service posts them to the bot."""

    running: Running
    user_id: str = "aad-lead"
    name: str = "Lead"
    conversation_id: str = "a:personal-lead"
    kind: str = "personal"
    tenant: str = TENANT
    time_zone: str | None = "Europe/London"
    extra: dict[str, Any] = field(default_factory=dict)

    def activity(self, **fields: Any) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "type": "message",
            "id": f"act-{next(_ids)}-{uuid.uuid4().hex[:6]}",
            "channelId": "msteams",
            "serviceUrl": self.running.connector.url,
            "from": {"id": f"29:{self.user_id}", "aadObjectId": self.user_id, "name": self.name},
            "recipient": {"id": "28:bot", "name": "Chief of Staff"},
            "conversation": {"id": self.conversation_id, "conversationType": self.kind, "tenantId": self.tenant},
            "channelData": {"tenant": {"id": self.tenant}},
            "localTimezone": self.time_zone,
        }
        activity.update(fields)
        return activity

    async def post(self, activity: dict[str, Any]) -> aiohttp.ClientResponse:
        async with self.running.session.post(self.running.url, json=activity) as response:
            await response.read()
            return response

    async def say(self, text: str, **fields: Any) -> aiohttp.ClientResponse:
        return await self.post(self.activity(text=text, **fields))

    async def ask(self, text: str, replies: int = 1) -> list[str]:
        """Say something and wait for `replies` more messages to arrive at the connector; their texts."""
        before = len(self.running.connector.sent)
        response = await self.say(text)
        assert response.status in (200, 201), response.status
        sent = await self.running.connector.wait_for(before + replies)
        return [s.body.get("text") or "" for s in sent[before:]]

    async def ask_value(self, value: dict[str, Any], replies: int = 1) -> list[str]:
        """Send a card's Action.Submit data and wait for the replies."""
        before = len(self.running.connector.sent)
        response = await self.post(self.activity(text=None, value=value))
        assert response.status in (200, 201), response.status
        sent = await self.running.connector.wait_for(before + replies)
        return [s.body.get("text") or "" for s in sent[before:]]


@pytest.fixture
def lead(running: Running) -> TeamsUser:
    return TeamsUser(running)
