"""The MCP adapter against real servers: `mcp-server-time` from PyPI over stdio, and the project's vendor agent
over streamable HTTP on loopback (a subprocess, killed at the end) and over stdio."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import select
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pytest

from adapters.egress import UNREACHABLE
from adapters.mcp import MCPAdapterFactory, MCPAgent, MCPConfig
from planner.domain.delegations import DelegationStatus
from planner.ports import (
    AgentConfigInvalid,
    AgentNotReached,
    AgentTimeout,
    AgentUnavailable,
    DelegationRequest,
    UnknownCapability,
)
from tests.adapters.operator import LOOPBACK
from tests.adapters.vendor_agent import TOKEN_VARIABLE, serve_in_process
from tests.conftest import FakeClock

ROOT = Path(__file__).resolve().parents[2]
WAIT = 20.0
"""The bound on every wait for a server to say something: far above what it takes, far below the test time-out."""


# Servers -----------------------------------------------------------------------------------------------------------


@dataclass
class VendorProcess:
    """The vendor agent serving streamable HTTP in a subprocess."""

    process: asyncio.subprocess.Process
    url: str
    port: int

    async def said(self, text: str) -> None:
        """Wait until the server prints a line containing `text`."""
        assert self.process.stdout is not None
        async with asyncio.timeout(WAIT):
            while text not in (await self.process.stdout.readline()).decode():
                pass

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


@contextlib.asynccontextmanager
async def vendor_agent(
    *, port: int = 0, token: str | None = None, legacy: bool = False, resumable: bool = False
) -> AsyncIterator[VendorProcess]:
    """The vendor agent on 127.0.0.1 (`port` 0: a free one), killed on exit; it stops too when our stdin closes."""
    env = {key: value for key, value in os.environ.items() if key != TOKEN_VARIABLE}
    if token is not None:
        env[TOKEN_VARIABLE] = token
    arguments = ["--port", str(port), "--lifetime", "300", "--exit-with-stdin", *(["--legacy"] if legacy else [])]
    arguments += ["--resumable"] if resumable else []
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.adapters.vendor_agent",
        *arguments,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(WAIT):
            line = (await process.stdout.readline()).decode()
        assert line.startswith("listening on "), f"the vendor agent did not start: {line!r}"
        url = line.split()[-1]
        yield VendorProcess(process=process, url=url, port=int(url.rsplit(":", 1)[1].split("/")[0]))
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


@pytest.fixture(scope="module")
def shared_vendor() -> Iterator[str]:
    """The URL of one vendor agent for the tests that neither stop it nor need a token; killed after the module."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.adapters.vendor_agent", "--port", "0", "--lifetime", "600", "--exit-with-stdin"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], WAIT)
        line = process.stdout.readline() if ready else ""
        assert line.startswith("listening on "), f"the vendor agent did not start: {line!r}"
        yield line.split()[-1]
    finally:
        process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


def time_server() -> MCPConfig:
    return MCPConfig(
        name="clock",
        transport="stdio",
        command=sys.executable,
        args=("-m", "mcp_server_time", "--local-timezone", "UTC"),
    )


def stdio_vendor() -> MCPConfig:
    return MCPConfig(
        name="vendor",
        transport="stdio",
        command=sys.executable,
        args=("-m", "tests.adapters.vendor_agent", "--stdio"),
        cwd=str(ROOT),
    )


@contextlib.asynccontextmanager
async def agent_for(config: MCPConfig, clock: FakeClock | None = None) -> AsyncIterator[MCPAgent]:
    """An agent for `config` (timed by `clock` when given), closed on exit."""
    agent = MCPAgent(config, clock=clock, egress=LOOPBACK) if clock is not None else MCPAgent(config, egress=LOOPBACK)
    try:
        yield agent
    finally:
        await agent.close()


@contextlib.contextmanager
def stderr_pipe() -> Iterator[tuple[TextIO, int]]:
    """A file a stdio server can write its stderr to, and the descriptor to read it from."""
    read_fd, write_fd = os.pipe()
    writer = os.fdopen(write_fd, "w")
    try:
        yield writer, read_fd
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            os.close(read_fd)


async def said_on(read_fd: int, text: str) -> None:
    """Wait until a line containing `text` comes through the pipe."""
    reader = asyncio.StreamReader()
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", closefd=False)
    )
    try:
        async with asyncio.timeout(WAIT):
            while text not in (await reader.readline()).decode():
                pass
    finally:
        transport.close()


def children() -> set[int]:
    """The live (not zombie) child processes of this test process."""
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                found.add(int(stat.parent.name))
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_vendor(vendor: VendorProcess | str) -> MCPConfig:
    return MCPConfig(name="vendor", transport="http", url=vendor if isinstance(vendor, str) else vendor.url)


def slow_report(**overrides: object) -> DelegationRequest:
    values: dict[str, object] = {"capability": "slow_report", "input": {"campaign": "abm-q1", "seconds": 60}}
    values.update(overrides)
    return DelegationRequest(**values)  # type: ignore[arg-type]


def email(**overrides: object) -> DelegationRequest:
    values: dict[str, object] = {"capability": "draft_email", "input": {"audience": "CFOs", "topic": "usage pricing"}}
    values.update(overrides)
    return DelegationRequest(**values)  # type: ignore[arg-type]


# A real server from PyPI ------------------------------------------------------------------------------------------


async def test_a_real_time_server_over_stdio_lists_its_tools_and_answers(clock: FakeClock) -> None:
    async with agent_for(time_server(), clock) as agent:
        capabilities = {capability.name: capability for capability in await agent.capabilities()}
        result = await agent.delegate(
            DelegationRequest(capability="get_current_time", input={"timezone": "Asia/Tokyo"}, task_id=7)
        )

    assert {"get_current_time", "convert_time"} <= set(capabilities)
    assert "timezone" in capabilities["get_current_time"].input_schema["properties"]
    assert capabilities["get_current_time"].description
    assert result.status is DelegationStatus.SUCCEEDED
    assert result.data is not None
    assert result.data["timezone"] == "Asia/Tokyo"
    assert "Asia/Tokyo" in result.output
    assert result.started_at == clock.now == result.finished_at
    (evidence,) = result.evidence
    assert evidence.kind == "json"
    assert json.loads(evidence.content)["structuredContent"]["timezone"] == "Asia/Tokyo"


async def test_a_real_server_refusing_bad_input_is_a_failed_delegation() -> None:
    async with agent_for(time_server()) as agent:
        result = await agent.delegate(
            DelegationRequest(capability="get_current_time", input={"timezone": "Mars/Olympus_Mons"})
        )

    assert result.status is DelegationStatus.FAILED
    assert result.error is not None
    assert "Invalid timezone" in result.error


# The vendor agent over HTTP ----------------------------------------------------------------------------------------


async def test_the_vendor_agent_drafts_an_email_over_http(shared_vendor: str) -> None:
    async with agent_for(http_vendor(shared_vendor)) as agent:
        result = await agent.delegate(email())

    assert result.status is DelegationStatus.SUCCEEDED
    assert result.data == {
        "subject": "usage pricing: what it means for CFOs",
        "body": "Hello,\n\nHere is what usage pricing changes for CFOs, and what to do next.\n",
    }
    assert "usage pricing: what it means for CFOs" in result.output
    assert result.seconds >= 0


async def test_campaign_metrics_come_back_as_structured_data(shared_vendor: str) -> None:
    async with agent_for(http_vendor(shared_vendor)) as agent:
        metrics = await agent.delegate(DelegationRequest(capability="campaign_metrics", input={"campaign": "abm-q1"}))
        segment = await agent.delegate(
            DelegationRequest(capability="create_segment", input={"name": "CFOs", "criteria": "title contains CFO"})
        )

    assert metrics.data == {"campaign": "abm-q1", "sends": 800, "opens": 520, "clicks": 130, "sqls": 21}
    assert segment.data is not None
    assert segment.data["segment_id"].startswith("seg-")
    assert segment.data["size"] > 0


async def test_a_tool_error_is_a_failed_delegation_not_an_exception(shared_vendor: str) -> None:
    async with agent_for(http_vendor(shared_vendor)) as agent:
        refused = await agent.delegate(DelegationRequest(capability="campaign_metrics", input={"campaign": "nope"}))
        still_fine = await agent.delegate(email())

    assert refused.status is DelegationStatus.FAILED
    assert refused.error is not None
    assert "no campaign named 'nope'" in refused.error
    assert "abm-q1, spring-launch" in refused.error
    assert refused.data is None
    assert json.loads(refused.evidence[0].content)["isError"] is True
    assert still_fine.status is DelegationStatus.SUCCEEDED


async def test_a_capability_mapping_renames_and_limits_the_tools(shared_vendor: str) -> None:
    config = MCPConfig(
        name="vendor",
        transport="http",
        url=shared_vendor,
        capabilities={"draft": "draft_email", "kpis": "campaign_metrics", "fax": "send_fax"},
    )
    async with agent_for(config) as agent:
        names = [capability.name for capability in await agent.capabilities()]
        kpis = await agent.delegate(DelegationRequest(capability="kpis", input={"campaign": "spring-launch"}))
        with pytest.raises(UnknownCapability):
            await agent.delegate(email())
        health = await agent.health()

    assert names == ["draft", "kpis"]
    assert kpis.data is not None
    assert kpis.data["sqls"] == 48
    assert health.ok
    assert "no tool 'send_fax' (for 'fax')" in health.detail


async def test_unknown_capability_lists_the_known_ones(shared_vendor: str) -> None:
    async with agent_for(http_vendor(shared_vendor)) as agent:
        with pytest.raises(UnknownCapability) as raised:
            await agent.delegate(DelegationRequest(capability="send_fax"))

    assert raised.value.capability == "send_fax"
    assert "cannot 'send_fax'" in str(raised.value)
    known = "campaign_metrics, campaign_spend, campaign_visual, crash, create_segment, delete_segment, draft_email, "
    known += "export_report, "
    known += "offer_discount, send_campaign, send_email, slow_report"
    assert known in str(raised.value)


async def test_concurrent_delegations_share_the_session(shared_vendor: str) -> None:
    async with agent_for(http_vendor(shared_vendor)) as agent:
        calls = [agent.delegate(email(input={"audience": f"team {n}", "topic": "x"})) for n in range(5)]
        results = await asyncio.gather(*calls)

    subjects = [result.data["subject"] for result in results if result.data]
    assert subjects == [f"x: what it means for team {n}" for n in range(5)]


async def test_more_calls_at_once_than_an_http_client_pools_by_default_all_reach_the_server() -> None:
    # Each call holds its POST's connection until the tool answers: a pool of 100 connections kept the 101st waiting.
    calls = 150
    async with vendor_agent() as vendor, agent_for(http_vendor(vendor)) as agent:
        running = [asyncio.create_task(agent.delegate(slow_report())) for _ in range(calls)]
        try:
            await vendor.said(f"slow_report started ({calls} running)")
        finally:
            for call in running:
                call.cancel()
            await asyncio.gather(*running, return_exceptions=True)


async def test_a_slow_tool_times_out(shared_vendor: str) -> None:
    async with agent_for(http_vendor(shared_vendor)) as agent:
        with pytest.raises(AgentTimeout) as raised:
            await agent.delegate(slow_report(timeout_seconds=0.5))
        after = await agent.delegate(email())

    assert raised.value.seconds == 0.5
    assert "no answer within 0.5 s" in str(raised.value)
    assert after.status is DelegationStatus.SUCCEEDED


async def test_a_server_killed_mid_call_gives_agent_unavailable_without_hanging() -> None:
    async with vendor_agent() as vendor, agent_for(http_vendor(vendor)) as agent:
        call = asyncio.create_task(agent.delegate(slow_report()))
        await vendor.said("slow_report started")
        await vendor.kill()
        with pytest.raises(AgentUnavailable) as raised:
            async with asyncio.timeout(WAIT):
                await call

    assert not isinstance(raised.value, AgentTimeout)
    assert "during the call to slow_report" in raised.value.reason
    assert "not retried" in raised.value.reason


@pytest.mark.parametrize("legacy", [False, True], ids=["2026-sessionless", "2025-with-session-id"])
async def test_the_next_call_reconnects_after_the_server_restarts(legacy: bool) -> None:
    async with vendor_agent(legacy=legacy) as first:
        config = MCPConfig(name="vendor", transport="http", url=first.url)
        agent = MCPAgent(config, egress=LOOPBACK)
        try:
            before = await agent.delegate(email())
            await first.kill()
            async with vendor_agent(port=first.port, legacy=legacy):
                after = await agent.delegate(email())
        finally:
            await agent.close()

    assert before.status is DelegationStatus.SUCCEEDED
    assert after.status is DelegationStatus.SUCCEEDED


async def test_bearer_token_is_sent_and_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    token = "tok-7f3a9c2e51d84b6f"
    caplog.set_level(logging.DEBUG)
    async with vendor_agent(token=token) as vendor:
        good = MCPConfig(name="vendor", transport="http", url=vendor.url, bearer_token=token)
        async with agent_for(good) as agent:
            result = await agent.delegate(email())
            shown = [repr(good), str(good), repr(agent), json.dumps(good.to_dict())]
        wrong = MCPConfig(name="vendor", transport="http", url=vendor.url, bearer_token="tok-wrong-00000000")
        async with agent_for(wrong) as agent:
            with pytest.raises(AgentUnavailable) as refused:
                await agent.delegate(email())
            health = await agent.health()
        async with agent_for(http_vendor(vendor)) as agent:
            anonymous = await agent.health()

    assert result.status is DelegationStatus.SUCCEEDED
    assert "refused our credentials (HTTP 401): check the bearer token" in str(refused.value)
    assert not health.ok
    assert "HTTP 401" in health.detail
    assert "requires credentials (HTTP 401): configure a bearer token" in anonymous.detail
    assert "bearer_token=<hidden>" in repr(good)
    for text in [*shown, caplog.text, str(refused.value), health.detail]:
        assert token not in text
        assert "tok-wrong" not in text
    assert good.to_dict(with_secrets=True)["bearer_token"] == token


async def test_health_of_a_dead_server_says_why() -> None:
    port = free_port()
    async with agent_for(MCPConfig(name="vendor", transport="http", url=f"http://127.0.0.1:{port}/mcp")) as agent:
        unreachable = await agent.health()
    missing = MCPConfig(name="gone", transport="stdio", command="/nonexistent/mcp-server")
    async with agent_for(missing) as agent:
        unstartable = await agent.health()
        with pytest.raises(AgentUnavailable) as raised:
            await agent.delegate(email())

    assert not unreachable.ok
    assert unreachable.detail == f"http://127.0.0.1:{port}/mcp: {UNREACHABLE}"
    assert not unstartable.ok
    assert "cannot start '/nonexistent/mcp-server': No such file or directory" in unstartable.detail
    assert "No such file or directory" in raised.value.reason


async def test_health_of_a_live_server_lists_its_capabilities(shared_vendor: str, clock: FakeClock) -> None:
    async with agent_for(http_vendor(shared_vendor), clock) as agent:
        health = await agent.health()

    assert health.ok
    assert (
        health.detail
        == "12 capabilities: campaign_metrics, campaign_spend, campaign_visual, crash, create_segment, delete_segment, "
        "draft_email, export_report, offer_discount, send_campaign, send_email, slow_report"
    )
    assert health.seconds == 0


async def test_a_server_that_never_answers_the_handshake_is_given_up_after_the_connect_timeout() -> None:
    silent = MCPConfig(
        name="silent",
        transport="stdio",
        command=sys.executable,
        args=("-c", "import time; time.sleep(60)"),
        connect_timeout_seconds=0.5,
    )
    before = children()
    async with agent_for(silent) as agent:
        health = await agent.health()

    assert not health.ok
    assert "0.5 s" in health.detail
    assert children() <= before


# The vendor agent over stdio ---------------------------------------------------------------------------------------


async def test_a_stdio_server_that_dies_mid_call_gives_agent_unavailable_then_restarts() -> None:
    async with agent_for(stdio_vendor()) as agent:
        with pytest.raises(AgentUnavailable) as raised:
            async with asyncio.timeout(WAIT):
                await agent.delegate(DelegationRequest(capability="crash"))
        again = await agent.delegate(email())

    assert "during the call to crash" in raised.value.reason
    assert again.status is DelegationStatus.SUCCEEDED


async def test_cancelling_a_delegation_leaves_no_task_or_process_behind() -> None:
    before = children()
    with stderr_pipe() as (stderr, read_fd):
        agent = MCPAgent(stdio_vendor(), stderr=stderr)
        call = asyncio.create_task(agent.delegate(slow_report()))
        await said_on(read_fd, "slow_report started")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        after_cancel = await agent.delegate(email())
        assert len(children() - before) == 1, "the stdio server runs while the agent is open"
        await agent.close()

    assert after_cancel.status is DelegationStatus.SUCCEEDED
    assert children() <= before
    assert asyncio.all_tasks() == {asyncio.current_task()}


# Configuration -----------------------------------------------------------------------------------------------------


def test_config_errors_name_every_problem() -> None:
    with pytest.raises(AgentConfigInvalid) as http:
        MCPConfig(
            name="",
            transport="http",
            url="ftp://admin:hunter22@vendor.example/mcp",
            command="npx",
            capabilities={"draft": ""},
            connect_timeout_seconds=0,
        )
    with pytest.raises(AgentConfigInvalid) as stdio:
        MCPConfig(name="x", transport="stdio", bearer_token="tok-123", url="https://vendor.example/mcp")
    with pytest.raises(AgentConfigInvalid) as cleartext:
        MCPConfig(name="x", transport="http", url="http://vendor.example/mcp", bearer_token="tok-123")
    with pytest.raises(AgentConfigInvalid) as neither:
        MCPConfig(name="x", transport="carrier-pigeon")  # type: ignore[arg-type]
    with pytest.raises(AgentConfigInvalid) as loaded:
        MCPConfig.from_dict({"name": "x", "transport": "stdio", "comand": "npx", "args": "server"})

    assert http.value.problems == [
        "name is required (a short name like acme-email)",
        "url must be http(s), not ftp",
        "url must not carry credentials: put the token in bearer_token",
        "command is only for stdio: an http agent is reached at its url",
        "capabilities: capability and tool names must not be empty",
        "connect_timeout_seconds must be a positive number of seconds",
    ]
    assert "hunter22" not in str(http.value)
    assert stdio.value.problems == [
        "command is required for stdio (the program that serves MCP on stdin/stdout)",
        "url is only for http: a stdio agent is started by its command",
        "bearer_token is only for http: pass a stdio server its credentials in env",
    ]
    assert "tok-123" not in str(stdio.value)
    assert cleartext.value.problems == ["a bearer token is only sent over https (or plain http to a loopback address)"]
    assert neither.value.problems == ["transport must be 'stdio' or 'http', not 'carrier-pigeon'"]
    assert loaded.value.problems == [
        "unknown field 'comand'",
        "command is required for stdio (the program that serves MCP on stdin/stdout)",
        "args must be a list of strings",
    ]


def test_the_registry_factory_validates_and_builds_agents_without_connecting() -> None:
    factory = MCPAdapterFactory()
    stored = factory.validate({"transport": "http", "url": "https://agent.vendor.example/mcp", "bearer_token": "t0k"})
    agent = factory.build("hubspot", stored)

    assert set(factory.secret_fields) == {"bearer_token", "env", "oauth_client_secret", "oauth_private_key"}
    assert stored == {
        "transport": "http",
        "url": "https://agent.vendor.example/mcp",
        "bearer_token": "t0k",
        "connect_timeout_seconds": 30.0,
    }
    assert (agent.kind, agent.name) == ("mcp", "hubspot")
    assert agent.config.bearer_token == "t0k"
    with pytest.raises(AgentConfigInvalid, match="url is required for http"):
        factory.validate({"transport": "http"})


# At most once, against a server that announces every call -------------------------------------------------------


async def lines_until(vendor: VendorProcess, text: str) -> list[str]:
    """What the server printed up to (and with) the first line containing `text`, waiting a bounded time."""
    assert vendor.process.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(WAIT):
        while not seen or text not in seen[-1]:
            seen.append((await vendor.process.stdout.readline()).decode())
    return seen


def send_email(subject: str) -> DelegationRequest:
    return DelegationRequest(
        capability="send_email", input={"to": "cfo@example.com", "subject": subject, "account": "acme"}
    )


@pytest.mark.parametrize("legacy", [False, True], ids=["2026-sessionless", "2025-with-session-id"])
@pytest.mark.parametrize("resumable", [False, True], ids=["plain", "resumable"])
async def test_a_call_the_server_took_before_it_restarted_is_not_sent_again_to_the_new_one(
    legacy: bool, resumable: bool
) -> None:
    """The new server refuses the client's attempt to resume the broken stream (it knows neither the session nor the
    events): that says nothing about whether the call ran."""
    async with vendor_agent(legacy=legacy, resumable=resumable) as first, agent_for(http_vendor(first)) as agent:
        call = asyncio.create_task(agent.delegate(slow_report()))
        await first.said("slow_report started")
        await first.kill()
        async with vendor_agent(port=first.port, legacy=legacy, resumable=resumable) as second:
            with pytest.raises(AgentUnavailable) as raised:
                async with asyncio.timeout(WAIT):
                    await call
            after = await agent.delegate(send_email("after the restart"))
            printed = await lines_until(second, "send_email acme: after the restart")

    assert not isinstance(raised.value, AgentNotReached)  # it may have run: the planner must not send it again
    assert after.status is DelegationStatus.SUCCEEDED
    assert not any("slow_report" in line for line in printed)


async def test_a_call_to_a_server_that_is_down_never_left_and_runs_once_when_sent_again() -> None:
    async with vendor_agent() as gone:
        port = gone.port
        await gone.kill()
    async with agent_for(http_vendor(gone.url)) as agent:
        with pytest.raises(AgentNotReached):
            await agent.delegate(send_email("spring launch"))
        async with vendor_agent(port=port) as back:
            result = await agent.delegate(send_email("spring launch"))
            printed = await lines_until(back, "send_email acme: spring launch")

    assert result.status is DelegationStatus.SUCCEEDED
    assert sum("send_email" in line for line in printed) == 1


@pytest.mark.parametrize("legacy", [False, True], ids=["2026-sessionless", "2025-with-session-id"])
async def test_after_an_http_error_on_a_call_the_next_calls_succeed_and_the_failed_one_is_not_sent_again(
    legacy: bool,
) -> None:
    """The server runs the call, then answers it HTTP 500: its outcome is unknown to the bot."""
    announced: list[str] = []
    serving = serve_in_process(legacy=legacy, fail_once="send_email", announce=announced.append)
    async with serving as url, agent_for(http_vendor(url)) as agent:
        before = await agent.delegate(email())
        with pytest.raises(AgentUnavailable) as failed:
            await agent.delegate(send_email("spring launch"))
        after = await agent.delegate(send_email("summer launch"))
        again = await agent.delegate(email())

    assert before.status is DelegationStatus.SUCCEEDED
    assert not isinstance(failed.value, AgentNotReached)  # it may have run: the planner must not send it again
    assert "answered HTTP 500 to the call to send_email" in failed.value.reason
    assert "not retried" in failed.value.reason
    assert (after.status, again.status) == (DelegationStatus.SUCCEEDED, DelegationStatus.SUCCEEDED)
    assert announced == ["send_email acme: spring launch", "send_email acme: summer launch"]


@pytest.mark.parametrize("legacy", [False, True], ids=["2026-sessionless", "2025-with-session-id"])
async def test_an_http_error_on_one_call_leaves_the_calls_in_flight_beside_it_to_finish(legacy: bool) -> None:
    released = asyncio.Event()
    started = asyncio.Event()

    def announce(line: str) -> None:
        if line.startswith("held_report started"):
            started.set()

    serving = serve_in_process(legacy=legacy, fail_once="send_email", hold=released, announce=announce)
    async with serving as url, agent_for(http_vendor(url)) as agent:
        held = asyncio.create_task(agent.delegate(DelegationRequest(capability="held_report", input={"campaign": "x"})))
        try:
            async with asyncio.timeout(WAIT):
                await started.wait()
            with pytest.raises(AgentUnavailable):
                await agent.delegate(send_email("spring launch"))
            after = await agent.delegate(email())  # on a new session, while the held call goes on on the old one
            released.set()
            async with asyncio.timeout(WAIT):
                report = await held
        finally:
            held.cancel()

    assert after.status is DelegationStatus.SUCCEEDED
    assert report.status is DelegationStatus.SUCCEEDED
    assert report.data == {"campaign": "x", "summary": "x report, held"}
