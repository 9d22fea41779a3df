"""Signing in to an MCP server behind OAuth, from Teams: the admin who enables its tools, then a delegation.

The vendor is the `mcp` SDK's server-side auth on loopback (tests/fakes/oauth_server.py); the bot serves its own
callback route; the person's browser is an HTTP client that opens the card's Sign in link and follows the redirects.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import httpx2
import pytest
from aiohttp.test_utils import TestServer

from bot.artifacts import ArtifactLinks
from bot.delegating import Delegator
from bot.http.app import create_app
from bot.http.oauth_callback import CALLBACK_PATH, add_oauth_callback_route
from bot.sender import Sender
from bot.server import ChiefOfStaffBot, create_adapter
from bot.settings import Settings
from bot.teams.botbuilder import create_channel
from bot.text import messages
from planner.store import Store
from planner.store.vault import Vault
from tests.adapters.operator import LIMITS
from tests.adapters.test_mcp import free_port
from tests.bot.cards.test_cards import all_text, schema_errors
from tests.bot.conftest import LOCAL_ADMIN, TeamsUser
from tests.bot.conftest import Running as RunningBot
from tests.bot.delegating import a_desk
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector, Sent
from tests.fakes.oauth_server import PERSON, LoopbackAuthorization, follow_sign_in, serve_oauth_protected


@pytest.fixture
async def bot(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[RunningBot]:
    """The bot with delegation on, serving the OAuth callback at the address its sign-ins name."""
    vault = Vault([Vault.generate_key()])
    port = free_port()
    settings = Settings.from_env({"COS_LOCAL_ADMIN": LOCAL_ADMIN})
    links = ArtifactLinks((b"a key the bot signs its links with",), base_url=f"http://127.0.0.1:{port}")
    sender = Sender(store, create_channel(Settings.from_env({})), worker="delegator", artifact_links=links)
    delegator = Delegator(
        store,
        vault,
        deliver_now=sender.deliver,
        limits=LIMITS,
        oauth_callback=f"http://127.0.0.1:{port}{CALLBACK_PATH}",
    )
    chief = ChiefOfStaffBot(store, settings, clock=clock, delegator=delegator)
    adapter = create_adapter(settings)
    chief.adapter = adapter
    app = create_app(store, adapter, chief, settings)
    add_oauth_callback_route(app, store, vault, links)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    running = RunningBot(store, chief, server, connector, aiohttp.ClientSession())
    yield running
    await chief.drain()
    await delegator.close()
    await running.session.close()
    await server.close()


async def the_sign_in_card(connector: FakeConnector, seen: int) -> tuple[Sent, dict[str, Any]]:
    """Wait (bounded) for the Sign in card among the messages after the first `seen`: the message, and its card."""
    while True:
        sent = (await connector.wait_for(seen + 1))[seen]
        seen += 1
        cards = [a["content"] for a in sent.body.get("attachments") or [] if "Sign in" in all_text(a)]
        if cards:
            break
    (card,) = cards
    assert schema_errors(card) == []
    return sent, card


async def sign_in_from_the_card(connector: FakeConnector, seen: int) -> httpx2.Response:
    """Wait (bounded) for the Sign in card among the messages after the first `seen`, open its link and follow the
    vendor's redirects back to the bot."""
    _, card = await the_sign_in_card(connector, seen)
    return await follow_sign_in(card)


def updates_of(connector: FakeConnector, sent: Sent) -> list[dict[str, Any]]:
    """The cards the message `sent` was updated in place with, oldest first."""
    return [
        attachment["content"]
        for update in connector.sent
        if update.method == "update" and update.activity_id == sent.activity_id
        for attachment in update.body.get("attachments") or []
    ]


async def test_an_admin_signs_in_to_enable_tools_and_a_delegation_then_acts_as_the_person(
    bot: RunningBot, clock: FakeClock
) -> None:
    task_id, lead, _ = await a_desk(bot, clock)  # the writer owns the task, and is told how the delegation went
    await lead.ask("help")
    authorization = LoopbackAuthorization()
    async with serve_oauth_protected(authorization) as url:
        config = json.dumps({"transport": "http", "url": url, "oauth_grant": "authorization_code"})
        [registered] = await lead.ask(f"adapter add mcp crm {config}")
        assert "Adapter mcp:crm registered" in registered

        # Testing it acts for the admin, who has not signed in: the turn answers at once (Teams does not wait for a
        # sign-in), the card comes, and the answer is posted to them once they signed in.
        seen = len(bot.connector.sent)
        answered = await lead.ask("adapter test crm", replies=2)  # the card, and the turn's answer
        assert messages.FINISHING_AFTER_SIGN_IN in answered
        assert not any("whoami" in all_text(sent.body) for sent in bot.connector.sent[seen:])
        asked, card = await the_sign_in_card(bot.connector, seen)
        assert [action["title"] for action in card["actions"]] == ["Sign in"]
        page = await follow_sign_in(card)
        assert page.status_code == 200
        assert "You are signed in" in page.text
        await bot.connector.wait_for(seen + 4)
        assert "whoami (off)" in all_text(bot.connector.cards()[-1])
        # The card they signed in from says so now, in place, and has no Sign in button any more.
        (signed_in,) = updates_of(bot.connector, asked)
        assert (
            all_text(signed_in) == "Signed in to crm\nDone: crm works as you now. I'm carrying on with what you asked."
        )
        assert "actions" not in signed_in
        assert schema_errors(signed_in) == []

        # Signed in, the next command finishes in its turn.
        [listed] = await lead.ask("adapter tools crm")
        assert messages.FINISHING_AFTER_SIGN_IN not in listed
        assert "whoami (off)" in all_text(bot.connector.cards()[-1])

        [enabled] = await lead.ask("adapter enable crm whoami")
        assert "crm's tool whoami is on" in enabled
        [queued] = await lead.ask(f"delegate T{task_id} to crm whoami")
        assert f"T{task_id} delegated to crm (whoami)" in queued
        await bot.bot.drain()
    to_writer = [sent.body for sent in bot.connector.sent if sent.conversation_id == "a:writer"]
    assert f"signed in as {PERSON}" in all_text(to_writer)  # the lead delegated: it acted as them
    assert authorization.grants == ["authorization_code"]  # one sign-in: the delegation used the kept grant


async def test_an_admin_who_does_not_sign_in_in_time_is_told_after_the_turn_answered(
    bot: RunningBot, clock: FakeClock
) -> None:
    lead = TeamsUser(bot)
    await lead.ask("help")
    authorization = LoopbackAuthorization()
    async with serve_oauth_protected(authorization) as url:
        config = json.dumps({"transport": "http", "url": url, "oauth_grant": "authorization_code"})
        await lead.ask(f"adapter add mcp crm {config}")
        seen = len(bot.connector.sent)
        answered = await lead.ask("adapter tools crm", replies=2)  # the card, and the turn's answer
        assert messages.FINISHING_AFTER_SIGN_IN in answered
        asked, _ = await the_sign_in_card(bot.connector, seen)
        clock.now += timedelta(minutes=10)  # the card sits unread past its link's time
        (told,) = [sent.body for sent in await bot.connector.wait_for(seen + 4) if sent.method == "send"][seen + 2 :]
        await bot.bot.drain()
    assert "did not finish in time" in told["text"]
    # The card says its link expired, and has no Sign in button any more.
    (expired,) = updates_of(bot.connector, asked)
    assert all_text(expired).startswith("Sign-in to crm expired\nThe link was not used in time and works no more.")
    assert "actions" not in expired
    assert authorization.grants == []


async def test_a_sign_in_card_sent_without_an_id_is_followed_by_a_line_once_signed_in(bot: RunningBot) -> None:
    lead = TeamsUser(bot)
    await lead.ask("help")
    authorization = LoopbackAuthorization()
    async with serve_oauth_protected(authorization) as url:
        config = json.dumps({"transport": "http", "url": url, "oauth_grant": "authorization_code"})
        await lead.ask(f"adapter add mcp crm {config}")
        bot.connector.without_ids = True  # what is sent from now on cannot be updated
        seen = len(bot.connector.sent)
        await lead.ask("adapter tools crm", replies=2)  # the card, and the turn's answer
        page = await sign_in_from_the_card(bot.connector, seen)
        assert "You are signed in" in page.text
        await bot.connector.wait_for(seen + 4)
        await bot.bot.drain()
    assert not [sent for sent in bot.connector.sent if sent.method == "update"]
    assert "You're signed in to crm. I'm carrying on with what you asked." in bot.connector.texts()
    assert "whoami (off)" in all_text(bot.connector.cards()[-1])
