"""`POST /api/context/events` through the real aiohttp app on loopback: signed facts in, everything else refused."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.http.app import create_app
from bot.http.context_events import PATH, UNAUTHENTICATED
from bot.settings import Settings
from bot.teams.botbuilder import create_adapter
from bot.teams.handler import ChiefOfStaffBot
from planner.services.context import ContextFacts, ContextSources, sign
from planner.store import Store
from planner.store.vault import Vault
from tests.conftest import FakeClock

TENANT = "tenant-contoso"
KEY = Vault.generate_key()


@dataclass
class Endpoint:
    server: TestServer
    session: aiohttp.ClientSession
    secret: str

    async def post(
        self, body: bytes | Any, *, source: str = "helpdesk", tenant: str = TENANT, signature: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "X-COS-Source": source, "X-COS-Tenant": tenant}
        headers["X-COS-Signature"] = sign(self.secret, raw) if signature is None else signature
        async with self.session.post(self.server.make_url(PATH), data=raw, headers=headers) as response:
            return response.status, await response.json()


async def serve(store: Store, clock: FakeClock, env: dict[str, str]) -> tuple[TestServer, aiohttp.ClientSession]:
    settings = Settings.from_env(env)
    adapter = create_adapter(settings)
    bot = ChiefOfStaffBot(store, settings, clock=clock)
    server = TestServer(create_app(store, adapter, bot, settings), host="127.0.0.1")
    await server.start_server()
    return server, aiohttp.ClientSession()


@pytest.fixture
async def endpoint(store: Store, clock: FakeClock) -> AsyncIterator[Endpoint]:
    secret = await ContextSources(store, TENANT, Vault([KEY])).add("helpdesk", actor="aad-admin")
    server, session = await serve(store, clock, {"COS_SECRET_KEYS": KEY, "COS_MAX_BODY_BYTES": "4096"})
    yield Endpoint(server, session, secret)
    await session.close()
    await server.close()


def ticket(clock: FakeClock, event_id: str = "evt-1", **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "ticket_opened",
        "account": "acct-renewal",
        "at": clock.now.isoformat(),
        "attributes": {"ticket_id": "T-9", "severity": "high"},
        **extra,
    }


async def test_a_signed_event_is_stored_as_a_fact(endpoint: Endpoint, store: Store, clock: FakeClock) -> None:
    assert await endpoint.post(ticket(clock)) == (202, {"stored": 1})
    [fact] = await ContextFacts(store, TENANT).live(["acct-renewal"])
    assert (fact.source, fact.event_id, fact.attributes["severity"]) == ("helpdesk", "evt-1", "high")


async def test_a_list_of_events_is_stored_at_once(endpoint: Endpoint, store: Store, clock: FakeClock) -> None:
    closed = ticket(clock, "evt-2", type="ticket_closed")
    assert await endpoint.post([ticket(clock), closed]) == (202, {"stored": 2})
    facts = await ContextFacts(store, TENANT).live(["acct-renewal"])
    assert [f.type.value for f in facts] == ["ticket_closed"]  # the closing event closed the ticket


async def test_anything_not_signed_by_a_registered_source_gets_the_same_401(
    endpoint: Endpoint, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps(ticket(clock)).encode()
    refused = {"error": UNAUTHENTICATED}
    with caplog.at_level(logging.DEBUG):
        assert await endpoint.post(body, signature="sha256=" + "0" * 64) == (401, refused)
        assert await endpoint.post(body + b" ", signature=sign(endpoint.secret, body)) == (401, refused)
        assert await endpoint.post(body, source="crm") == (401, refused)
        assert await endpoint.post(body, tenant="tenant-fabrikam") == (401, refused)
        assert await endpoint.post(body, signature="") == (401, refused)
        assert await endpoint.post(body, signature=sign("a guessed secret", body)) == (401, refused)
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert endpoint.secret not in logged
    assert sign(endpoint.secret, body) not in logged
    assert "sha256=" not in logged


async def test_a_malformed_body_is_refused_naming_what_is_wrong(endpoint: Endpoint, clock: FakeClock) -> None:
    status, answer = await endpoint.post(b"{not json")
    assert status == 400
    assert answer["error"].startswith("The body is not valid JSON")
    status, answer = await endpoint.post(ticket(clock, type="ticket_open"))
    assert status == 400
    assert "type: \"ticket_open\" is not a fact type (did you mean 'ticket_opened'?)" in answer["error"]
    bare = ticket(clock)
    del bare["account"]
    status, answer = await endpoint.post([ticket(clock, "evt-0"), bare])
    assert (status, answer["error"]) == (400, "invalid context event: events[1].account: missing")
    assert answer["problems"] == [{"code": "missing", "path": "events[1].account", "message": "missing"}]


async def test_a_replayed_event_is_refused_with_409(endpoint: Endpoint, store: Store, clock: FakeClock) -> None:
    assert (await endpoint.post(ticket(clock)))[0] == 202
    status, answer = await endpoint.post([ticket(clock, "evt-new"), ticket(clock)])
    assert status == 409
    assert "'evt-1'" in answer["error"]
    assert len(await ContextFacts(store, TENANT).live(["acct-renewal"])) == 1


async def test_an_old_event_is_refused(endpoint: Endpoint, clock: FakeClock) -> None:
    status, answer = await endpoint.post(ticket(clock, at=(clock.now - timedelta(minutes=10)).isoformat()))
    assert status == 400
    assert "more than 5 minutes from the bot's clock" in answer["error"]


async def test_a_body_over_the_limit_is_refused_with_413(endpoint: Endpoint, clock: FakeClock) -> None:
    many = [ticket(clock, f"evt-{n}") for n in range(40)]
    status, answer = await endpoint.post(many)
    assert status == 413
    assert "larger than 4096 bytes" in answer["error"]


async def test_without_a_key_to_keep_secrets_the_endpoint_says_how_to_configure_one(
    store: Store, clock: FakeClock
) -> None:
    production = {"MICROSOFT_APP_ID": "app", "MICROSOFT_APP_PASSWORD": "pw"}  # not local mode: no key file
    server, session = await serve(store, clock, production)
    try:
        async with session.post(server.make_url(PATH), data=b"{}", headers={"X-COS-Source": "crm"}) as response:
            assert response.status == 503
            assert "COS_SECRET_KEYS" in (await response.json())["error"]
    finally:
        await session.close()
        await server.close()


async def test_a_signed_body_nested_too_deep_is_a_400_saying_so_not_a_500(endpoint: Endpoint) -> None:
    for depth in (40, 1_500):  # 1,500 levels: past the parser's recursion limit, within the 4 KB body
        status, answer = await endpoint.post(b"[" * depth + b"]" * depth)
        assert (status, answer["error"]) == (400, "The body nests deeper than 32 levels.")
