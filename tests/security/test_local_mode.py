"""Local mode on a developer's laptop: no Azure credentials, so nothing is authenticated, and the bot must take
requests only from the machine's own programs, never from a web page the developer happens to open.

What a page could do before: a `text/plain;application/json` POST (sent cross-site without a CORS preflight), or a
page on a name its DNS points at 127.0.0.1 (DNS rebinding), reached /api/messages, where everyone was an admin: two
requests registered a stdio adapter, which runs a command as the bot's user.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.cli import main
from bot.settings import Settings
from planner.store import Store
from planner.store.schema import adapters
from tests.bot.conftest import Running, TeamsUser
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector
from tests.security.conftest import start_bot_with, stop_bot

STDIO_ADAPTER = 'adapter add mcp pwn {"transport": "stdio", "command": "touch", "args": ["/tmp/pwned"]}'
ROUTES = ["/api/messages", "/api/context/events", "/api/metrics/events"]


@pytest.fixture
async def local(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Running]:
    running = await start_bot_with(store, connector, clock, {})
    yield running
    await stop_bot(running)


async def post(running: Running, body: Any, headers: dict[str, str], path: str = "/api/messages") -> int:
    data = json.dumps(body).encode()
    async with running.session.post(running.server.make_url(path), data=data, headers=headers) as response:
        await response.read()
        return response.status


async def adapters_registered(store: Store) -> int:
    async with store.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(adapters))).scalar_one()


@pytest.mark.parametrize(
    "content_type",
    ["text/plain;application/json", "text/plain; charset=application/json", "application/jsonp", "text/json", ""],
)
async def test_an_activity_not_sent_as_exactly_json_is_refused_415(local: Running, content_type: str) -> None:
    activity = TeamsUser(local).activity(text=STDIO_ADAPTER)
    assert await post(local, activity, {"Content-Type": content_type}) == 415
    assert local.connector.sent == []


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
async def test_an_activity_sent_as_json_with_or_without_a_charset_is_served(local: Running, content_type: str) -> None:
    activity = TeamsUser(local).activity(text="help")
    assert await post(local, activity, {"Content-Type": content_type}) in (200, 201)
    await local.connector.wait_for(1)


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(
    "host", ["rebind.attacker.example", "evil.example:3978", "localhost.evil.example", "127.0.0.1.nip.io", "10.0.0.5"]
)
async def test_a_post_addressed_to_a_name_other_than_loopback_is_refused_421(
    local: Running, host: str, path: str
) -> None:
    activity = TeamsUser(local).activity(text="help")
    assert await post(local, activity, {"Content-Type": "application/json", "Host": host}, path) == 421
    assert local.connector.sent == []


@pytest.mark.parametrize("host", ["localhost", "localhost:3978", "LOCALHOST.", "127.0.0.2", "[::1]:3978", "[::1]"])
async def test_a_post_addressed_to_loopback_by_any_name_or_port_is_served(local: Running, host: str) -> None:
    activity = TeamsUser(local).activity(text="help")
    assert await post(local, activity, {"Content-Type": "application/json", "Host": host}) in (200, 201)


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "https://localhost.evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
    ids=["another site", "a look-alike site", "a sandboxed page", "a cross-site fetch"],
)
async def test_a_post_from_a_web_page_of_another_site_is_refused_403(
    local: Running, headers: dict[str, str], path: str
) -> None:
    activity = TeamsUser(local).activity(text="help")
    assert await post(local, activity, {"Content-Type": "application/json", **headers}, path) == 403
    assert local.connector.sent == []


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://localhost:5173"}, {"Origin": "http://127.0.0.1:8080"}, {"Sec-Fetch-Site": "same-origin"}],
)
async def test_a_post_from_a_local_page_or_tool_is_served(local: Running, headers: dict[str, str]) -> None:
    activity = TeamsUser(local).activity(text="help")
    assert await post(local, activity, {"Content-Type": "application/json", **headers}) in (200, 201)


async def test_the_browser_attack_registers_no_adapter(local: Running) -> None:
    user = TeamsUser(local)
    as_a_page = {"Content-Type": "text/plain;application/json", "Origin": "http://evil.example"}
    assert await post(local, user.activity(text=STDIO_ADAPTER), as_a_page) in (403, 415)
    rebound = {"Content-Type": "application/json", "Host": "rebind.attacker.example:3978"}
    assert await post(local, user.activity(text=STDIO_ADAPTER), rebound) == 421
    # Even a program on the machine is no admin unless named one.
    [refused] = await user.ask(STDIO_ADAPTER)
    assert "Only an admin" in refused
    assert await adapters_registered(local.store) == 0


async def test_without_cos_admins_nobody_is_an_admin_and_the_refusal_says_how_to_become_one(local: Running) -> None:
    assert not Settings.from_env({}).is_admin("aad-lead")
    [refused] = await TeamsUser(local).ask("adapters")
    assert "Only an admin" in refused
    assert "Your id is `aad-lead`" in refused
    assert "cos serve --local-admin aad-lead" in refused


async def test_local_admin_makes_exactly_that_user_an_admin(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    running = await start_bot_with(store, connector, clock, {"COS_LOCAL_ADMIN": "aad-lead"})
    try:
        [listed] = await TeamsUser(running).ask("adapters")
        assert "Only an admin" not in listed
        other = TeamsUser(running, user_id="aad-member", name="Member", conversation_id="a:personal-member")
        [refused] = await other.ask("adapters")
        assert "Only an admin" in refused
    finally:
        await stop_bot(running)
    settings = Settings.from_env({"COS_LOCAL_ADMIN": "aad-lead"})
    assert settings.is_admin("aad-lead")
    assert not settings.is_admin("aad-member")
    assert not settings.is_admin("")


async def test_with_insecure_no_auth_on_the_network_an_ip_address_is_served_but_a_name_is_not(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    running = await start_bot_with(store, connector, clock, {"COS_HOST": "0.0.0.0"})
    try:
        activity = TeamsUser(running).activity(text="help")
        assert await post(running, activity, {"Content-Type": "application/json", "Host": "192.0.2.7:3978"}) in (
            200,
            201,
        )
        assert await post(running, activity, {"Content-Type": "application/json", "Host": "bot.example"}) == 421
        cross_site = {"Content-Type": "application/json", "Host": "192.0.2.7", "Origin": "http://evil.example"}
        assert await post(running, activity, cross_site) == 403
    finally:
        await stop_bot(running)


async def test_production_checks_the_media_type_too_but_not_the_host(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    env = {"MICROSOFT_APP_ID": "app", "MICROSOFT_APP_PASSWORD": "pw", "COS_ALLOWED_SERVICE_HOSTS": "127.0.0.1"}
    running = await start_bot_with(store, connector, clock, env)
    try:
        activity = TeamsUser(running).activity(text="help")
        behind_a_proxy = {"Content-Type": "application/json", "Host": "bot.example.com"}
        assert await post(running, activity, behind_a_proxy) in (401, 403)  # the token is checked, not the name
        assert await post(running, activity, {"Content-Type": "text/plain;application/json"}) == 415
    finally:
        await stop_bot(running)


class ServeCalls:
    def __init__(self) -> None:
        self.settings: list[Settings] = []

    async def __call__(self, settings: Settings, *, host: str, port: int) -> int:
        self.settings.append(settings)
        return 0


@pytest.fixture
def serve_calls(monkeypatch: pytest.MonkeyPatch) -> ServeCalls:
    """`cos serve` up to the point it would start serving."""
    calls = ServeCalls()
    monkeypatch.setattr("bot.server.run", calls)
    for name in ("MICROSOFT_APP_ID", "MICROSOFT_APP_PASSWORD", "COS_ADMINS", "COS_LOCAL_ADMIN", "COS_HOST"):
        monkeypatch.delenv(name, raising=False)
    return calls


def test_cos_serve_local_admin_names_the_one_admin(serve_calls: ServeCalls) -> None:
    assert main(["serve", "--local-admin", "aad-me"]) == 0
    [settings] = serve_calls.settings
    assert settings.is_admin("aad-me")
    assert not settings.is_admin("aad-someone-else")


def test_cos_serve_refuses_a_local_admin_with_azure_credentials(
    serve_calls: ServeCalls, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MICROSOFT_APP_ID", "app")
    monkeypatch.setenv("MICROSOFT_APP_PASSWORD", "pw")
    assert main(["serve", "--local-admin", "aad-me"]) == 2
    assert "COS_ADMINS" in capsys.readouterr().err
    assert serve_calls.settings == []


def test_insecure_no_auth_says_what_it_gives_away(serve_calls: ServeCalls, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--insecure-no-auth", "--local-admin", "aad-me"]) == 0
    warning = " ".join(capsys.readouterr().err.split())
    assert "NO authentication" in warning
    assert "act as any user of any tenant" in warning
    assert "Admins are still only those configured (aad-me)" in warning
    assert "anyone can claim to be one of them" in warning
    assert "stdio adapter" in warning
    [settings] = serve_calls.settings
    assert settings.host == "0.0.0.0"


def test_insecure_no_auth_help_states_its_consequences(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "anyone who can reach the port can act as any user of any tenant" in help_text
    assert "--local-admin USER_ID" in help_text
