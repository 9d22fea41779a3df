"""What an admin's chat message can make the bot do on its host and its network, through an adapter: nothing the
operator did not allow.

- A stdio adapter names an entry of the operator's allow-list (COS_STDIO_COMMANDS); anything else is refused at
  registration, saying which setting to change. The child gets a minimal environment: none of the bot's secrets.
- Adapters reach public addresses only, unless the operator allows a range (COS_ADAPTER_ALLOWED_NETWORKS): the
  metadata address in every spelling, loopback and private addresses are refused at registration, and at connect
  time on the addresses a name resolves to (the resolver is injected here). Whatever kept a connection from being
  made reads the same, so `adapter test` cannot tell an open port from a closed one.
- Secrets inside a config's values (a URL's query, arguments, headers) are sealed, shown masked, and restored for
  the agent.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters import adapter_kinds
from adapters.browser import BrowserAdapterFactory, BrowserAgent, BrowserConfig
from adapters.egress import UNREACHABLE, Egress
from adapters.mcp import MCPAdapterFactory, MCPAgent, MCPConfig
from bot.delegating import Delegator
from bot.sender import Sender
from bot.settings import Settings, SettingsError
from bot.teams.botbuilder import create_channel
from planner.domain.delegations import DelegationStatus
from planner.domain.redaction import MASK, redacted
from planner.ports import AgentConfigInvalid, AgentUnavailable, DelegationRequest
from planner.services.registry import Registry
from planner.store import Store
from planner.store.vault import Vault
from tests.adapters.operator import LOOPBACK
from tests.adapters.vendor_agent import serve_in_process
from tests.adapters.web_vendor import WebVendor
from tests.bot.conftest import TENANT, Running, TeamsUser
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector
from tests.security.conftest import every_stored_value, start_bot_with, stop_bot

ENV_SERVER = Path(__file__).with_name("env_server.py")
VAULT_KEY = Vault.generate_key()
BOT_SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-bot-secret-4f1e8d2c7b",
    "COS_SECRET_KEYS": VAULT_KEY,
    "MICROSOFT_APP_PASSWORD": "app-password-9c3e7a1f5d",
    "DATABASE_URL": "postgresql+asyncpg://cos:db-password-2b8d@db.example/cos",
}
URL_SECRET = "query-secret-7d2e9f4a1c6b"
HEADER_SECRET = "header-secret-3a8c1e5f9d2b"
ARG_SECRET = "arg-secret-6b4d2f8a1e3c"
REPORTER = {
    "command": sys.executable,
    "args": [str(ENV_SERVER)],
    "env": {"REPORTER_MODE": "operator-set"},
    "allow_env": ["REPORTER_REGION"],
    "allow_args": True,
}
METADATA_SPELLINGS = [
    "169.254.169.254",
    "2852039166",
    "0xa9fea9fe",
    "0251.0376.0251.0376",
    "0xa9.0xfe.0xa9.0xfe",
    "169.254.43518",
    "169.254.169.254.",
    "[::ffff:169.254.169.254]",
    "[::ffff:a9fe:a9fe]",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:a9fe:a9fe::1]",
    "metadata.google.internal",
]


def browser_config(origin: str) -> dict[str, Any]:
    return {"origins": [origin], "capabilities": {"open": {"steps": [{"kind": "goto", "url": f"{origin}/"}]}}}


def bot_env(**extra: str) -> dict[str, str]:
    return {
        "COS_SECRET_KEYS": VAULT_KEY,
        "COS_ADMINS": "aad-lead",
        "COS_STDIO_COMMANDS": json.dumps({"env-reporter": REPORTER}),
        **extra,
    }


async def running_bot(store: Store, connector: FakeConnector, clock: FakeClock, env: dict[str, str]) -> Running:
    """A bot whose adapters are limited by what `env` (the operator's settings) says."""
    settings = Settings.from_env(env)
    sender = Sender(store, create_channel(settings), worker="adapter-safety")
    vault = settings.vault()
    assert vault is not None
    delegator = Delegator(store, vault, deliver_now=sender.deliver, limits=settings.adapter_limits)
    return await start_bot_with(store, connector, clock, env, delegator=delegator)


async def stop(running: Running) -> None:
    await stop_bot(running)
    assert running.bot.delegator is not None
    await running.bot.delegator.close()


@pytest.fixture
async def strict(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Running]:
    """The bot with the operator's defaults: public addresses only, one stdio entry (the reporter)."""
    running = await running_bot(store, connector, clock, bot_env())
    yield running
    await stop(running)


@pytest.fixture
async def on_premises(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[Running]:
    """The bot of an operator whose vendor agents run on this host: loopback is allowed."""
    running = await running_bot(store, connector, clock, bot_env(COS_ADAPTER_ALLOWED_NETWORKS="127.0.0.0/8"))
    yield running
    await stop(running)


def registry_of(running: Running) -> Any:
    assert running.bot.delegator is not None
    return running.bot.delegator.registry(TENANT)


def plain_registry(running: Running) -> Registry:
    """The tenant's registry without the bot's pool of open agents: `open` builds a new (gated) agent each time."""
    limits = Settings.from_env(bot_env(COS_ADAPTER_ALLOWED_NETWORKS="127.0.0.0/8")).adapter_limits
    vault = Vault([VAULT_KEY])
    return Registry(
        running.store, TENANT, vault=vault, kinds=adapter_kinds(running.store, TENANT, vault, limits=limits)
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (a connection that times out)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


class FakeResolver:
    """DNS as the test says: each name answers the addresses given, and every question is kept."""

    def __init__(self, answers: dict[str, Sequence[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return list(self.answers[host])


# What runs on the host -----------------------------------------------------------------------------------------------


async def test_a_stdio_command_the_operator_did_not_list_is_refused_naming_the_setting(strict: Running) -> None:
    lead = TeamsUser(strict)
    attempts = [
        {"transport": "stdio", "command": "sh", "args": ["-c", "cat /proc/$PPID/environ"]},
        {"transport": "stdio", "command": "/bin/sh"},
        {"transport": "stdio", "command": sys.executable, "args": ["-c", "print(1)"]},
    ]
    for number, config in enumerate(attempts):
        [answer] = await lead.ask(f"adapter add mcp probe{number} {json.dumps(config)}")
        assert "is not one of the stdio commands the operator allows (env-reporter)" in answer
        assert "COS_STDIO_COMMANDS" in answer
    assert await registry_of(strict).list_adapters() == []


async def test_a_config_cannot_widen_an_allowed_entry(strict: Running) -> None:
    lead = TeamsUser(strict)
    tries = {
        "env": {"transport": "stdio", "command": "env-reporter", "env": {"LD_PRELOAD": "/tmp/evil.so"}},
        "cwd": {"transport": "stdio", "command": "env-reporter", "cwd": "/tmp"},
    }
    [env_answer] = await lead.ask(f"adapter add mcp widened {json.dumps(tries['env'])}")
    [cwd_answer] = await lead.ask(f"adapter add mcp widened {json.dumps(tries['cwd'])}")

    assert "LD_PRELOAD may not be set for 'env-reporter' (it allows REPORTER_REGION)" in env_answer
    assert "the working folder is the operator's to set" in cwd_answer
    assert await registry_of(strict).list_adapters() == []


async def test_a_registered_stdio_adapter_cannot_be_pointed_at_another_command_nor_start_once_delisted(
    store: Store, strict: Running
) -> None:
    lead = TeamsUser(strict)
    [added] = await lead.ask('adapter add mcp reporter {"transport": "stdio", "command": "env-reporter"}')
    assert "Adapter mcp:reporter registered" in added
    registry = registry_of(strict)
    with pytest.raises(AgentConfigInvalid, match="'/bin/sh' is not one of the stdio commands the operator allows"):
        await registry.reconfigure("reporter", {"command": "/bin/sh"}, actor="aad-lead")
    # The operator takes the entry off the list: the stored adapter no longer starts anything.
    delisted = Registry(store, TENANT, vault=Vault([VAULT_KEY]), kinds=adapter_kinds(store, TENANT, Vault([VAULT_KEY])))
    with pytest.raises(AgentConfigInvalid, match="COS_STDIO_COMMANDS"):
        await delisted.open("reporter")


async def test_an_http_adapter_from_chat_is_still_registered_where_the_url_checks_allow(strict: Running) -> None:
    lead = TeamsUser(strict)
    [added] = await lead.ask('adapter add mcp crm {"transport": "http", "url": "https://agent.vendor.example/mcp"}')
    assert "Adapter mcp:crm registered" in added
    [refused] = await lead.ask('adapter add mcp inside {"transport": "http", "url": "http://10.0.0.5/mcp"}')
    assert "adapters may not reach it" in refused


async def test_a_stdio_child_gets_a_minimal_environment_without_the_bots_secrets(
    strict: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in BOT_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LANG", "C.UTF-8")
    lead = TeamsUser(strict)
    config = {"transport": "stdio", "command": "env-reporter", "env": {"REPORTER_REGION": "eu"}}

    [answer] = await lead.ask(f"adapter add mcp reporter {json.dumps(config)}")
    await lead.ask("adapter enable reporter started_with")
    agent = await registry_of(strict).open("reporter")
    result = await agent.delegate(DelegationRequest(capability="started_with", input={}))

    assert "Adapter mcp:reporter registered" in answer
    assert result.status is DelegationStatus.SUCCEEDED, result.error
    assert result.data is not None
    env = result.data["env"]
    assert env["REPORTER_REGION"] == "eu"
    assert env["REPORTER_MODE"] == "operator-set"
    assert env["LANG"] == "C.UTF-8"
    # The SDK adds LOGNAME, SHELL, TERM and USER; Python itself may set LC_CTYPE.
    allowed = {"PATH", "HOME", "LANG", "TZ", "LOGNAME", "SHELL", "TERM", "USER", "LC_CTYPE"}
    assert set(env) <= allowed | {"REPORTER_REGION", "REPORTER_MODE"}
    for secret in BOT_SECRETS.values():
        assert secret not in json.dumps(env)
    assert result.data["cwd"] == "/"


async def test_an_unknown_setting_of_the_allow_list_stops_the_bot_from_starting() -> None:
    with pytest.raises(SettingsError, match="COS_STDIO_COMMANDS") as raised:
        Settings.from_env({"COS_STDIO_COMMANDS": json.dumps({"x": {"comand": "/bin/sh"}})})
    assert "unknown field 'comand'" in str(raised.value)
    with pytest.raises(SettingsError, match="COS_ADAPTER_ALLOWED_NETWORKS"):
        Settings.from_env({"COS_ADAPTER_ALLOWED_NETWORKS": "10.20.0.0/33"})
    with pytest.raises(SettingsError, match="a fixed path must be absolute"):
        Settings.from_env({"COS_STDIO_COMMANDS": "time=bin/mcp-server-time"})


def test_the_readme_one_line_setting_lets_the_readme_stdio_example_register() -> None:
    settings = Settings.from_env({"COS_STDIO_COMMANDS": "mcp-server-time"})
    factory = MCPAdapterFactory(commands=settings.adapter_limits.stdio_commands)

    valid = factory.validate({"transport": "stdio", "command": "mcp-server-time"})
    agent = factory.build("clock", valid)

    assert isinstance(agent, MCPAgent)
    # From the PATH, else the bot's own environment's scripts folder (tests/adapters/test_stdio_commands.py).
    assert Path(agent.config.command).name == "mcp-server-time"
    assert (agent.config.args, agent.config.cwd) == ((), "/")
    with pytest.raises(AgentConfigInvalid, match="COS_STDIO_COMMANDS"):
        MCPAdapterFactory().validate({"transport": "stdio", "command": "mcp-server-time"})


def test_a_browser_config_cannot_choose_the_executable() -> None:
    factory = BrowserAdapterFactory(vault=Vault([VAULT_KEY]))
    config = {**browser_config("https://app.vendor.example"), "chromium_path": "/bin/sh"}

    with pytest.raises(AgentConfigInvalid, match="COS_CHROMIUM_PATH") as raised:
        factory.validate(config)

    assert "/bin/sh" not in str(raised.value)
    # A path stored before it became the operator's setting is not used.
    stored = {**factory.validate({**config, "chromium_path": None}), "chromium_path": "/bin/sh"}
    agent = BrowserAdapterFactory(vault=Vault([VAULT_KEY]), chromium_path="/usr/bin/chromium").build("app", stored)
    assert agent.config.chromium_path == "/usr/bin/chromium"


# Where adapters connect ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", METADATA_SPELLINGS)
def test_every_spelling_of_the_metadata_address_is_refused_at_registration(host: str) -> None:
    mcp = MCPAdapterFactory(egress=Egress.allowing("10.0.0.0/8"))
    browser = BrowserAdapterFactory(vault=Vault([VAULT_KEY]), egress=Egress.allowing("10.0.0.0/8"))

    with pytest.raises(AgentConfigInvalid, match="the cloud metadata address: adapters may not reach it"):
        mcp.validate({"transport": "http", "url": f"http://{host}/latest/meta-data/"})
    with pytest.raises(AgentConfigInvalid, match="the cloud metadata address: adapters may not reach it"):
        browser.validate(browser_config(f"http://{host}"))


@pytest.mark.parametrize("host", METADATA_SPELLINGS)
async def test_every_spelling_of_the_metadata_address_is_refused_when_connecting(
    host: str, caplog: pytest.LogCaptureFixture
) -> None:
    resolver = FakeResolver({})
    agent = MCPAgent(
        MCPConfig(name="probe", transport="http", url=f"http://{host}/mcp", connect_timeout_seconds=5),
        egress=Egress(resolve=resolver),
    )
    try:
        health = await agent.health()
    finally:
        await agent.close()

    assert not health.ok
    assert resolver.asked == []  # every spelling is read as the address it is, never asked of DNS
    # httpx itself refuses a few spellings as URLs; every one it takes is refused as the metadata address.
    if "Invalid" not in health.detail:
        assert health.detail.endswith(UNREACHABLE)
        assert "the cloud metadata address" in caplog.text


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:8080/mcp", "a loopback address"),
        ("http://localhost:8080/mcp", "a loopback address"),
        ("http://[::1]:8080/mcp", "a loopback address"),
        ("http://10.1.2.3/mcp", "a private address"),
        ("http://192.168.1.10/mcp", "a private address"),
        ("http://[fd12::1]/mcp", "a private address"),
        ("http://100.64.0.1/mcp", "a carrier-grade NAT address"),
        ("http://0.0.0.0/mcp", "the unspecified address"),
        ("http://224.0.0.1/mcp", "a multicast address"),
        ("http://240.0.0.1/mcp", "a reserved address"),
        ("http://[fe80::1]/mcp", "a link-local address"),
    ],
)
def test_internal_addresses_are_refused_at_registration_unless_the_operator_allows_them(url: str, kind: str) -> None:
    with pytest.raises(AgentConfigInvalid, match=f"{kind}: adapters may not reach it.*COS_ADAPTER_ALLOWED_NETWORKS"):
        MCPAdapterFactory().validate({"transport": "http", "url": url})

    allowing = Egress.allowing(
        *("127.0.0.0/8", "::1/128", "10.0.0.0/8", "192.168.0.0/16", "fd00::/8", "100.64.0.0/10"),
        *("0.0.0.0/32", "224.0.0.0/4", "240.0.0.0/4", "fe80::/10"),
    )
    assert MCPAdapterFactory(egress=allowing).validate({"transport": "http", "url": url})["url"] == url


async def test_a_name_that_resolves_to_a_private_address_is_refused_when_connecting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    answers = {"agent.vendor.example": ["10.20.30.40"], "rebound.vendor.example": ["93.184.216.34", "127.0.0.1"]}
    egress = Egress(resolve=FakeResolver(answers))
    factory = MCPAdapterFactory(egress=egress)
    details = []
    for host in answers:
        config = factory.validate({"transport": "http", "url": f"https://{host}/mcp", "connect_timeout_seconds": 5})
        agent = factory.build(host, config)  # the name passed registration: no DNS is asked then
        try:
            details.append((await agent.health()).detail)
        finally:
            await agent.close()

    assert details == [f"https://{host}/mcp: {UNREACHABLE}" for host in answers]
    assert "agent.vendor.example (10.20.30.40) is a private address" in caplog.text
    assert "rebound.vendor.example (127.0.0.1) is a loopback address" in caplog.text


async def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    seen: list[tuple[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.host, request.transport.get_extra_info("sockname")[0] if request.transport else ""))
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{anything:.*}", record)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    port = server.port
    # The system cannot resolve this name: only the checked address can be where the request went.
    resolver = FakeResolver({"agent.vendor.example": ["127.0.0.1"]})
    config = MCPConfig(name="vendor", transport="http", url=f"http://agent.vendor.example:{port}/mcp")
    agent = MCPAgent(config, egress=Egress(LOOPBACK.allowed, resolver))
    try:
        health = await agent.health()
    finally:
        await agent.close()
        await server.close()

    assert "answered with an error: Not Found" in health.detail
    assert seen[0] == (f"agent.vendor.example:{port}", "127.0.0.1")
    assert set(resolver.asked) == {"agent.vendor.example"}


async def test_an_open_and_a_closed_port_read_the_same_when_not_allowed(strict: Running) -> None:
    lead = TeamsUser(strict)
    async with serve_in_process() as url:
        open_port = int(url.split(":")[2].split("/")[0])
        shut_port = closed_port()
        answers = []
        for name, port in (("open", open_port), ("shut", shut_port)):
            config = {"transport": "http", "url": f"http://127.0.0.1:{port}/mcp"}
            answers += await lead.ask(f"adapter add mcp {name} {json.dumps(config)}")
            # An adapter stored before this check (or by a bot that allowed loopback) gets no further when connecting.
            agent = MCPAgent(MCPConfig(name=name, transport="http", url=config["url"], connect_timeout_seconds=5))
            try:
                answers.append((await agent.health()).detail.replace(str(port), "PORT"))
            finally:
                await agent.close()

    assert answers[0] == answers[2]
    assert "127.0.0.1 is a loopback address: adapters may not reach it" in answers[0]
    assert answers[1] == answers[3] == f"http://127.0.0.1:PORT/mcp: {UNREACHABLE}"
    assert await registry_of(strict).list_adapters() == []


async def test_refused_and_timed_out_read_the_same_where_the_operator_allows_the_address(
    on_premises: Running, silent_port: int
) -> None:
    lead = TeamsUser(on_premises)
    for name, port in (("shut", closed_port()), ("silent", silent_port)):
        config = {"transport": "http", "url": f"http://127.0.0.1:{port}/mcp", "connect_timeout_seconds": 0.5}
        [registered] = await lead.ask(f"adapter add mcp {name} {json.dumps(config)}")
        assert f"Adapter mcp:{name} registered" in registered

    shut = (await (await registry_of(on_premises).open("shut")).health()).detail
    silent = (await (await registry_of(on_premises).open("silent")).health()).detail

    assert shut.split("/mcp")[1] == silent.split("/mcp")[1] == f": {UNREACHABLE}"


async def test_a_browser_origin_is_pinned_to_its_checked_address() -> None:
    vault = Vault([VAULT_KEY])
    async with WebVendor(username="bot", password="pw") as vendor:
        origin = f"http://vendor.test:{vendor.port}"
        config = {
            "name": "vendor",
            "origins": [origin],
            "timeouts": {"step_seconds": 5, "navigation_seconds": 10},
            "capabilities": {
                "read_title": {
                    "steps": [
                        {"kind": "goto", "url": f"{origin}/login"},
                        {"kind": "extract_text", "selector": "h1", "field": "title"},
                    ]
                }
            },
        }
        request = DelegationRequest(capability="read_title", input={}, timeout_seconds=60)
        pinned = FakeResolver({"vendor.test": ["127.0.0.1"]})
        private = FakeResolver({"vendor.test": ["10.9.8.7"]})
        reached = BrowserAgent(BrowserConfig.from_dict(config), vault=vault, egress=Egress(LOOPBACK.allowed, pinned))
        refused = BrowserAgent(BrowserConfig.from_dict(config), vault=vault, egress=Egress(LOOPBACK.allowed, private))
        try:
            result = await reached.delegate(request)
            with pytest.raises(AgentUnavailable) as raised:
                await refused.delegate(request)
        finally:
            await reached.close()
            await refused.close()

    assert result.status is DelegationStatus.SUCCEEDED, result.error
    assert result.data == {"title": "Sign in to Vendor Marketing"}
    assert raised.value.reason == UNREACHABLE


# Secrets inside values ------------------------------------------------------------------------------------------------


async def test_secrets_in_a_url_query_headers_and_arguments_are_sealed_masked_and_restored(
    on_premises: Running,
) -> None:
    lead = TeamsUser(on_premises)
    async with serve_in_process() as url:
        http = {
            "transport": "http",
            "url": f"{url}?api_key={URL_SECRET}&region=eu",
            "headers": {"X-Api-Key": HEADER_SECRET, "X-Region": "eu"},
        }
        stdio = {"transport": "stdio", "command": "env-reporter", "args": ["--token", ARG_SECRET, "--verbose"]}
        [added_http] = await lead.ask(f"adapter add mcp vendor {json.dumps(http)}")
        [added_stdio] = await lead.ask(f"adapter add mcp reporter {json.dumps(stdio)}")
        await lead.ask("adapter enable vendor draft_email")
        await lead.ask("adapter enable reporter started_with")
        [listing] = await lead.ask("adapters")
        registry = plain_registry(on_premises)
        vendor = await registry.open("vendor")
        drafted = await vendor.delegate(
            DelegationRequest(capability="draft_email", input={"audience": "CFOs", "topic": "launch"})
        )
        reporter = await registry.open("reporter")
        started = await reporter.delegate(DelegationRequest(capability="started_with", input={}))
        await vendor.close()
        await reporter.close()

    shown = listing + json.dumps(on_premises.connector.cards(), ensure_ascii=False)
    assert f"?api_key={MASK}&" in shown
    assert f"headers: X-Api-Key={MASK}, X-Region=eu" in shown
    assert f"--token, {MASK}, --verbose" in shown or f'[\\"--token\\", \\"{MASK}\\", \\"--verbose\\"]' in shown
    assert "Secrets kept encrypted: headers, url." in added_http
    assert "Secrets kept encrypted: args." in added_stdio
    everything = json.dumps([s.body for s in on_premises.connector.sent]) + added_http + added_stdio
    stored = repr(await every_stored_value(on_premises.store.engine))
    for secret in (URL_SECRET, HEADER_SECRET, ARG_SECRET):
        assert secret not in everything
        assert secret not in stored
    assert drafted.status is DelegationStatus.SUCCEEDED, drafted.error
    assert started.data is not None
    assert started.data["args"] == ["--token", ARG_SECRET, "--verbose"]


def test_a_template_placeholder_is_not_taken_for_a_secret() -> None:
    recipe = {"steps": [{"kind": "goto", "url": "https://app.vendor.example/find?token={token}&key=live-key-8d3f"}]}

    assert redacted({"search": recipe})["search"]["steps"][0]["url"] == (
        f"https://app.vendor.example/find?token={{token}}&key={MASK}"
    )


async def test_a_masked_value_given_back_keeps_the_secret_it_stands_for(on_premises: Running) -> None:
    registry = plain_registry(on_premises)
    config = {"transport": "http", "url": f"https://agent.vendor.example/mcp?token={URL_SECRET}"}
    entry = await registry.register("mcp", "vendor", config, actor="aad-lead")

    changed = await registry.reconfigure(
        "vendor", {"url": entry.config["url"], "connect_timeout_seconds": 5}, actor="aad-lead"
    )
    agent = await registry._build(await registry.get("vendor"))  # the bare agent behind what `open` hands out
    await agent.close()

    assert changed.config["url"] == f"https://agent.vendor.example/mcp?token={MASK}"
    assert isinstance(agent, MCPAgent)
    assert agent.config.url == f"https://agent.vendor.example/mcp?token={URL_SECRET}"


ROOT = Path(__file__).resolve().parents[2]
_READ_PARENTS_ENVIRONMENT = """
import ctypes, os, subprocess, sys
from bot.server import keep_memory_private
os.setgid(65534); os.setuid(65534)  # a user of its own, as a bot should run
if sys.argv[1] == "private":
    assert keep_memory_private()
else:  # a process the user started is dumpable; changing user above made this one not
    assert ctypes.CDLL(None).prctl(4, 1, 0, 0, 0) == 0
child = "import os\\ntry:\\n    print('the-bot-secret' in open(f'/proc/{os.getppid()}/environ').read())\\n"
child += "except PermissionError:\\n    print('refused')"
print(subprocess.run(["/usr/bin/python3", "-c", child], capture_output=True, text=True, env={}).stdout.strip())
"""


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or not Path("/usr/bin/python3").exists(),
    reason="needs root to run as another user, and a Python that user can run",
)
@pytest.mark.parametrize(("mode", "child_sees"), [("plain", "True"), ("private", "refused")])
def test_a_process_of_the_bots_user_cannot_read_the_bots_environment_once_it_keeps_memory_private(
    mode: str, child_sees: str
) -> None:
    """`cos serve` keeps its memory private: an adapter's stdio server runs as the bot's user unless the operator
    sets up another, and could otherwise read the bot's secrets from /proc/<pid>/environ."""
    ran = subprocess.run(
        [sys.executable, "-c", _READ_PARENTS_ENVIRONMENT, mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", ""), "COS_SECRET_KEYS": "the-bot-secret"},
    )
    assert ran.stdout.strip().splitlines()[-1:] == [child_sees], ran.stderr
