"""A person's sign-in to an MCP server behind OAuth 2.1, end to end on loopback.

The vendor: an MCP server and its authorization server from the `mcp` SDK's server-side auth
(tests/fakes/oauth_server.py). The bot: the MCP adapter built by its factory with grants sealed in the store, the
sign-in card sent through the outbox by the delegation's Teams channel, and the bot's callback route served over
HTTP. The person: an HTTP client that opens the card's Sign in link and follows the redirects back to the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx2
import pytest
import time_machine
from aiohttp import web
from sqlalchemy import select

from adapters.egress import Egress
from adapters.mcp import MCPAdapterFactory, MCPAgent
from bot.artifacts import ArtifactLinks
from bot.cli import NO_GRANT
from bot.cli import main as cos
from bot.http.oauth_callback import CALLBACK_PATH, add_oauth_callback_route
from bot.nudges import compose
from bot.relay import TeamsHumanChannel
from planner.domain.messages import MessageKind
from planner.ports import AgentConfigInvalid, AgentNotReached, DelegationRequest, acting_for
from planner.services.oauth import KEPT_AFTER_EXPIRY, OAuthGrants, SignIns, answer_sign_in, purge_sign_ins
from planner.services.outbox import Outbox
from planner.services.registry import rotate_secrets
from planner.services.sealed import count_sealed_secrets
from planner.services.tenants import Tenants
from planner.store import Store
from planner.store.schema import oauth_grants, oauth_sign_ins, outbox
from planner.store.vault import Vault
from tests.adapters.test_mcp import free_port
from tests.conftest import Database, FakeClock
from tests.fakes.oauth_server import (
    PERSON,
    TOKEN_SECONDS,
    LoopbackAuthorization,
    follow_sign_in,
    serve_oauth_protected,
)

TENANT = "contoso"
MEMBER = "aad-member"
LOOPBACK = Egress.allowing("127.0.0.0/8")
LINK_KEYS = (b"a key the bot signs its links with",)


def links_to(callback: str) -> ArtifactLinks:
    """The bot's signed links, rooted where its callback is served."""
    return ArtifactLinks(LINK_KEYS, base_url=callback.removesuffix(CALLBACK_PATH))


@contextlib.asynccontextmanager
async def bot_callback(store: Store, vault: Vault) -> AsyncIterator[str]:
    """The bot's callback route, served on loopback; yields its URL."""
    port = free_port()
    callback = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
    app = web.Application()
    add_oauth_callback_route(app, store, vault, links_to(callback))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield callback
    finally:
        await runner.cleanup()


class Person:
    """Reads the cards the bot sends them, and opens a Sign in button's link in their browser."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.cards: list[dict[str, Any]] = []
        self.pages: list[httpx2.Response] = []

    async def read_and_sign_in(self, links: ArtifactLinks) -> None:
        for envelope in await Outbox(self._store).claim("sender", limit=10):
            written = await compose(Tenants(self._store), envelope, artifact_links=links)
            assert written is not None
            assert envelope.kind == MessageKind.SIGN_IN
            self.cards.extend(written.cards)
            self.pages.append(await follow_sign_in(written.cards[0]))


def channel(store: Store, vault: Vault, person: Person, callback: str) -> TeamsHumanChannel:
    links = links_to(callback)
    return TeamsHumanChannel(
        Tenants(store)(TENANT),
        MEMBER,
        agent="crm",
        deliver_now=lambda: person.read_and_sign_in(links),
        sign_ins=SignIns(store, TENANT, vault),
        poll_seconds=0.01,
    )


def crm(store: Store, vault: Vault, url: str, callback: str) -> MCPAgent:
    factory = MCPAdapterFactory(
        egress=LOOPBACK, grants=lambda name: OAuthGrants(store, TENANT, name, vault), redirect_uri=callback
    )
    return factory.build("crm", {"transport": "http", "url": url, "oauth_grant": "authorization_code"})


async def whoami(agent: MCPAgent, human: TeamsHumanChannel) -> str:
    with acting_for(human):
        result = await agent.delegate(DelegationRequest(capability="whoami", requested_by=MEMBER, timeout_seconds=30))
    assert result.error is None
    return result.output


@dataclass
class Vendor:
    """The vendor's MCP server behind OAuth at `url`, the bot's callback served at `callback`, and the member who signs
    in from the cards the bot sends them."""

    store: Store
    key: str
    vault: Vault
    authorization: LoopbackAuthorization
    person: Person
    url: str
    callback: str

    def crm(self) -> MCPAgent:
        """The bot's adapter to the vendor, acting as each person who delegates."""
        return crm(self.store, self.vault, self.url, self.callback)

    def channel(self) -> TeamsHumanChannel:
        """The member's 1:1 chat, where the Sign in card goes."""
        return channel(self.store, self.vault, self.person, self.callback)

    def revoke(self) -> None:
        """The vendor revokes every grant: only a new sign-in would do."""
        self.authorization.access.clear()
        self.authorization.refresh.clear()

    async def delegate(self) -> None:
        """The member delegates `whoami`: the first time, the Sign in card, its link followed to the vendor and back
        to the bot's callback, and their grant kept; the call then acts as them."""
        async with self.crm() as agent:
            assert await whoami(agent, self.channel()) == f"signed in as {PERSON}"


@contextlib.asynccontextmanager
async def vendor(store: Store) -> AsyncIterator[Vendor]:
    """The vendor and the bot's callback, served on loopback for the block."""
    key = Vault.generate_key()
    vault = Vault([key])
    authorization = LoopbackAuthorization()
    async with serve_oauth_protected(authorization) as url, bot_callback(store, vault) as callback:
        yield Vendor(store, key, vault, authorization, Person(store), url, callback)


async def sealed_grant(store: Store) -> bytes:
    async with store.read() as conn:
        rows = (await conn.execute(select(oauth_grants.c.sealed).where(oauth_grants.c.user_id == MEMBER))).all()
    (row,) = rows
    return bytes(row.sealed)


async def test_a_person_signs_in_from_the_card_and_the_delegation_carries_on_with_their_grant(store: Store) -> None:
    async with vendor(store) as at:
        vault, authorization, person, callback = at.vault, at.authorization, at.person, at.callback
        await at.delegate()

        (card,) = person.cards
        assert card["body"][0]["text"] == "Sign in to crm"
        (page,) = person.pages
        assert page.status_code == 200
        assert str(page.url).startswith(callback)
        assert [str(hop.url).split("?")[0] for hop in page.history][-1].endswith("/authorize")

        # Neither the outbox nor the sign-in holds the authorization URL (it carries the state) in the clear: the
        # card's button is the bot's signed link, which sent the browser on to it once.
        async with store.read() as conn:
            queued = json.dumps((await conn.execute(select(outbox.c.payload))).scalars().all())
            kept = (await conn.execute(select(oauth_sign_ins.c.authorization))).scalars().all()
        assert "state" not in queued
        assert "authorize" not in queued
        assert kept == [None]  # wiped once the browser took it
        link = str(page.history[0].url)
        assert link.startswith(callback.removesuffix(CALLBACK_PATH) + "/api/oauth/start/")
        assert page.history[0].status_code == 302

        # Kept sealed: the database never holds a token in the clear.
        sealed = await sealed_grant(store)
        (access,) = authorization.access
        assert access.encode() not in sealed
        assert json.loads(vault.decrypt(sealed))["tokens"]["access_token"] == access

        # The link is spent: the same callback again is refused, and so is a state nobody was sent.
        async with httpx2.AsyncClient() as browser:
            again = await browser.get(str(page.url))
            forged = await browser.get(callback, params={"code": "stolen", "state": "made-up"})
            bare = await browser.get(callback)
            reopened = await browser.get(link)
        assert (again.status_code, forged.status_code, bare.status_code) == (400, 400, 400)
        assert reopened.status_code == 403
        assert "location" not in reopened.headers
        assert "not valid any more" in again.text

        # After a restart the kept grant is used: no second card.
        await at.delegate()
        assert len(person.cards) == 1
        assert authorization.grants == ["authorization_code"]


async def test_an_expired_token_is_refreshed_and_the_new_one_kept_sealed(store: Store) -> None:
    async with vendor(store) as at:
        async with at.crm() as agent:
            await whoami(agent, at.channel())
            first = json.loads(at.vault.decrypt(await sealed_grant(store)))["tokens"]["access_token"]
            with time_machine.travel(timedelta(seconds=TOKEN_SECONDS + 60), tick=True):
                assert await whoami(agent, at.channel()) == f"signed in as {PERSON}"
        kept = json.loads(at.vault.decrypt(await sealed_grant(store)))["tokens"]["access_token"]
    assert at.authorization.grants == ["authorization_code", "refresh_token"]
    assert kept != first
    assert kept in at.authorization.access
    assert len(at.person.cards) == 1  # refreshed without asking the person again


async def test_an_expired_token_kept_before_a_restart_is_refreshed_not_sent(store: Store) -> None:
    async with vendor(store) as at:
        await at.delegate()
        with time_machine.travel(timedelta(seconds=TOKEN_SECONDS + 60), tick=True):
            await at.delegate()
    assert at.authorization.grants == ["authorization_code", "refresh_token"]
    assert len(at.person.cards) == 1  # the restarted bot refreshed the kept token without asking the person again


async def test_a_sign_in_link_opens_the_vendors_page_once_and_only_as_signed_and_in_time(
    store: Store, clock: FakeClock
) -> None:
    vault = Vault([Vault.generate_key()])
    authorization_url = "https://login.vendor.example/authorize?client_id=cos&state=state-1"
    waiting = await SignIns(store, TENANT, vault).open(
        MEMBER, "crm", authorization_url, "state-1", within=timedelta(minutes=5)
    )
    async with store.read() as conn:
        (sealed,) = (await conn.execute(select(oauth_sign_ins.c.authorization))).scalars().all()
    assert b"state-1" not in sealed
    assert vault.decrypt(sealed).decode() == authorization_url
    async with bot_callback(store, vault) as callback, httpx2.AsyncClient() as browser:
        links = links_to(callback)
        link = links.signed(f"/api/oauth/start/{waiting.id}", until=clock.now + timedelta(minutes=5))
        other = links.signed(f"/api/oauth/start/{waiting.id + 1}", until=clock.now + timedelta(minutes=5))
        assert link is not None
        assert other is not None
        signature = link.rsplit("=", 1)[1]
        refused = [
            link.replace("signature=", "signature=0"),  # tampered
            other.rsplit("=", 1)[0] + "=" + signature,  # another sign-in's id under this signature
            link.replace("expires=", "expires=1"),  # a later expiry than was signed
            ArtifactLinks((b"another key",), base_url=links.base_url).signed(
                f"/api/oauth/start/{waiting.id}", until=clock.now + timedelta(minutes=5)
            ),
        ]
        for wrong in refused:
            answer = await browser.get(str(wrong))
            assert answer.status_code == 403
            assert "location" not in answer.headers
            assert "state-1" not in answer.text
        clock.now += timedelta(minutes=6)
        late = await browser.get(link)
        clock.now -= timedelta(minutes=6)
        opened = await browser.get(link)
        again = await browser.get(link)
    assert late.status_code == 403
    assert opened.status_code == 302
    assert opened.headers["location"] == authorization_url
    assert opened.headers["cache-control"] == "no-store"
    assert again.status_code == 403
    assert "location" not in again.headers


async def test_a_sign_in_state_is_answered_once_and_not_after_it_expires(store: Store, clock: FakeClock) -> None:
    vault = Vault([Vault.generate_key()])
    sign_ins = SignIns(store, TENANT, vault)
    waiting = await sign_ins.open(
        MEMBER, "crm", "https://login.example/?state=state-1", "state-1", within=timedelta(minutes=5)
    )
    assert await answer_sign_in(store, vault, {"code": "c", "state": "state-1"})
    assert not await answer_sign_in(store, vault, {"code": "c2", "state": "state-1"})
    assert (await sign_ins.wait(waiting, poll_seconds=0.01)).answer == {"code": "c", "state": "state-1"}

    late = await sign_ins.open(
        MEMBER, "crm", "https://login.example/?state=state-2", "state-2", within=timedelta(minutes=5)
    )
    clock.now += timedelta(minutes=6)
    assert not await answer_sign_in(store, vault, {"code": "c", "state": "state-2"})
    assert (await sign_ins.wait(late, poll_seconds=0.01)).answer is None


async def kept_sign_ins(store: Store) -> list[str]:
    async with store.read() as conn:
        return sorted(row.status for row in await conn.execute(select(oauth_sign_ins.c.status)))


async def test_ended_and_expired_sign_ins_are_purged_and_an_open_one_is_kept(store: Store, clock: FakeClock) -> None:
    vault = Vault([Vault.generate_key()])
    sign_ins = SignIns(store, TENANT, vault)
    five_minutes = timedelta(minutes=5)

    async def opened(state: str) -> Any:
        return await sign_ins.open(MEMBER, "crm", f"https://login.example/?state={state}", state, within=five_minutes)

    read = await opened("read")
    assert await answer_sign_in(store, vault, {"code": "c", "state": "read"})
    assert (await sign_ins.wait(read, poll_seconds=0.01)).answer is not None
    timed_out = await opened("timed-out")
    abandoned = await opened("abandoned")  # its delegation stopped waiting (a restart): it stays open
    clock.now += five_minutes
    assert (await sign_ins.wait(timed_out, poll_seconds=0.01)).answer is None
    fresh = await opened("fresh")
    assert await kept_sign_ins(store) == ["consumed", "expired", "open", "open"]

    assert await purge_sign_ins(store, clock.now) == 2  # the ended ones; the abandoned one expired only just
    clock.now += KEPT_AFTER_EXPIRY + timedelta(seconds=1)
    assert await purge_sign_ins(store, clock.now) == 1
    assert await kept_sign_ins(store) == ["open"]
    assert (await sign_ins.wait(abandoned, poll_seconds=0.01)).answer is None  # gone reads as expired
    assert await answer_sign_in(store, vault, {"code": "c", "state": "fresh"})
    assert (await sign_ins.wait(fresh, poll_seconds=0.01)).answer == {"code": "c", "state": "fresh"}


async def test_a_call_that_acts_for_nobody_is_not_made_as_anyone(store: Store) -> None:
    agent = MCPAdapterFactory(egress=LOOPBACK, redirect_uri="http://127.0.0.1:1/api/oauth/callback").build(
        "crm", {"transport": "http", "url": "http://127.0.0.1:1/mcp", "oauth_grant": "authorization_code"}
    )
    with pytest.raises(AgentNotReached, match="acts as the person who delegates"):
        await agent.capabilities()


def test_an_adapter_people_sign_in_to_needs_the_bots_public_address_and_fits_its_grant() -> None:
    config = {"transport": "http", "url": "https://crm.vendor.example/mcp", "oauth_grant": "authorization_code"}
    with pytest.raises(AgentConfigInvalid, match="COS_PUBLIC_URL"):
        MCPAdapterFactory().build("crm", config)
    with pytest.raises(AgentConfigInvalid, match="bearer token"):
        MCPAdapterFactory().validate({**config, "bearer_token": "t"})
    with pytest.raises(AgentConfigInvalid, match="needs its oauth_client_id"):
        MCPAdapterFactory().validate({**config, "oauth_client_secret": "s"})
    with pytest.raises(AgentConfigInvalid, match="needs oauth_client_id"):
        MCPAdapterFactory().validate({**config, "oauth_grant": "client_credentials"})
    assert MCPAdapterFactory().validate({**config, "oauth_client_id": "pre-registered"})["oauth_grant"] == (
        "authorization_code"
    )


def test_a_service_agent_may_sign_its_token_requests_with_a_private_key_never_shown() -> None:
    key = "-----BEGIN PRIVATE KEY-----\nMIGH…\n-----END PRIVATE KEY-----"
    config = {
        "transport": "http",
        "url": "https://crm.vendor.example/mcp",
        "oauth_client_id": "cos",
        "oauth_private_key": key,
        "oauth_signing_algorithm": "ES256",
    }
    factory = MCPAdapterFactory()
    stored = factory.validate(config)
    assert stored["oauth_private_key"] == key
    agent = factory.build("crm", stored)
    assert key not in repr(agent.config)
    assert "oauth_private_key" not in agent.config.to_dict()
    assert "oauth_private_key" in factory.secret_fields
    with pytest.raises(AgentConfigInvalid, match="instead of oauth_client_secret"):
        factory.validate({**config, "oauth_client_secret": "s"})
    with pytest.raises(AgentConfigInvalid, match="PEM"):
        factory.validate({**config, "oauth_private_key": "not a key"})


async def test_rotating_the_secret_key_reseals_the_grants_people_gave(store: Store) -> None:
    old, new = Vault.generate_key(), Vault.generate_key()
    await OAuthGrants(store, TENANT, "crm", Vault([old])).save(MEMBER, b'{"tokens": {}}')
    assert await count_sealed_secrets(store) == 1  # losing the key would lose it: the bot refuses a new key
    await rotate_secrets(store, Vault([new, old]), actor="an admin")
    assert await OAuthGrants(store, TENANT, "crm", Vault([new])).load(MEMBER) == b'{"tokens": {}}'


async def test_a_person_who_does_not_sign_in_in_time_gets_the_delegation_refused_not_hung(
    store: Store, clock: FakeClock
) -> None:

    async def ignore_the_card() -> None:
        clock.now += timedelta(minutes=10)  # the card sits unread past its link's time

    async with vendor(store) as at, at.crm() as agent:
        ignoring = TeamsHumanChannel(
            Tenants(store)(TENANT),
            MEMBER,
            agent="crm",
            deliver_now=ignore_the_card,
            sign_ins=SignIns(store, TENANT, at.vault),
            poll_seconds=0.01,
        )
        with pytest.raises(AgentNotReached, match="needs the person to sign in, and they did not finish in time"):
            await whoami(agent, ignoring)
    assert at.authorization.grants == []


class Shell:
    """`cos adapters …` as from a shell: on the test's database, with the bot's key and its public address where
    `callback` is served; a call gives the exit code, what was printed and what was printed to stderr."""

    def __init__(
        self,
        database: Database,
        key: str,
        callback: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", database.url)
        monkeypatch.setenv("COS_SECRET_KEYS", key)
        monkeypatch.setenv("COS_ADAPTER_ALLOWED_NETWORKS", "127.0.0.0/8")
        monkeypatch.setenv("COS_PUBLIC_URL", callback.removesuffix(CALLBACK_PATH))
        self._capsys = capsys

    @classmethod
    async def with_crm(
        cls,
        at: Vendor,
        database: Database,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> Shell:
        """The shell, once it registered the vendor's server as `crm`, an adapter people sign in to."""
        shell = cls(database, at.key, at.callback, monkeypatch, capsys)
        config = json.dumps({"transport": "http", "url": at.url, "oauth_grant": "authorization_code"})
        assert (await shell("register", "mcp", "crm", config))[0] == 0
        return shell

    async def __call__(self, *words: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cos, ["adapters", words[0], "--tenant", TENANT, *words[1:]])
        printed = self._capsys.readouterr()
        return code, printed.out, printed.err


async def test_the_command_line_tests_an_adapter_people_sign_in_to_as_a_person_with_their_grant(
    store: Store, database: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with vendor(store) as at:
        shell = await Shell.with_crm(at, database, monkeypatch, capsys)
        nobody = await shell("test", "crm")
        stranger = await shell("test", "crm", "--as", "aad-stranger")
        await at.delegate()  # the member signs in from Teams
        member = await shell("test", "crm", "--as", MEMBER)
        at.revoke()
        revoked = await shell("test", "crm", "--as", MEMBER)

    assert nobody[0] == 1
    assert "crm: NOT ok" in nobody[1]
    assert "give --as USER_ID" in nobody[1]
    assert stranger == (1, "", f"cos adapters test: {NO_GRANT}\n")
    assert member[0] == 0
    assert "crm: ok" in member[1]
    assert "whoami (off): Who the bot acts as here." in member[1]
    assert revoked == (1, "", f"cos adapters test: {NO_GRANT}\n")
    assert len(at.person.cards) == 1  # the command line never sends anyone a card


async def test_the_command_line_lists_and_enables_the_tools_of_an_adapter_people_sign_in_to_as_a_person(
    store: Store, database: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with vendor(store) as at:
        shell = await Shell.with_crm(at, database, monkeypatch, capsys)
        nobody_lists = await shell("tools", "crm")
        nobody_enables = await shell("enable", "crm", "whoami")
        stranger_lists = await shell("tools", "crm", "--as", "aad-stranger")
        stranger_enables = await shell("enable", "crm", "whoami", "--as", "aad-stranger")
        await at.delegate()  # the member signs in from Teams
        listed = await shell("tools", "crm", "--as", MEMBER)
        enabled = await shell("enable", "crm", "whoami", "--as", MEMBER)
        listed_again = await shell("tools", "crm", "--as", MEMBER)
        whole = await shell("enable", "crm", "--as", MEMBER)
        at.revoke()
        revoked = await shell("tools", "crm", "--as", MEMBER)

    for command, said in (("tools", nobody_lists), ("enable", nobody_enables)):
        assert said[:2] == (1, "")
        assert f"cos adapters {command}: " in said[2]
        assert "crm acts as the person who delegates: give --as USER_ID to act as one" in said[2]
    assert stranger_lists == (1, "", f"cos adapters tools: {NO_GRANT}\n")
    assert stranger_enables == (1, "", f"cos adapters enable: {NO_GRANT}\n")
    assert listed == (0, "whoami (off): Who the bot acts as here.\n", "")
    assert enabled == (0, "crm whoami enabled, its definition pinned\n", "")
    assert listed_again[:2] == (0, "whoami (on): Who the bot acts as here.\n")
    assert whole[0] == 2
    assert "--as goes with a TOOL" in whole[2]
    assert revoked == (1, "", f"cos adapters tools: {NO_GRANT}\n")
    assert len(at.person.cards) == 1  # the command line never sends anyone a card
