"""What a server asks of the bot mid-call besides a person's answer: its roots (none unless an admin configures some),
and its model (sampling: declined with the reason while the operator has not turned it on, else answered by the
bot's model as text). Against the project's
vendor agent on loopback, in both protocol eras."""

from __future__ import annotations

import pytest

from adapters.mcp import SAMPLING_DECLINED, MCPAgent, MCPConfig
from planner.domain.delegations import DelegationStatus
from planner.ports import AgentConfigInvalid, DelegationRequest, Sampled, SamplingDeclined, SamplingRequest
from tests.adapters.operator import LOOPBACK
from tests.adapters.vendor_agent import serve_in_process

ERAS = pytest.mark.parametrize("legacy", [False, True], ids=["2026", "2025"])


@ERAS
async def test_a_server_asking_for_roots_is_told_there_are_none(legacy: bool) -> None:
    async with serve_in_process(assisted=True, legacy=legacy) as url:
        agent = MCPAgent(MCPConfig(name="vendor", transport="http", url=url), egress=LOOPBACK)
        try:
            result = await agent.delegate(DelegationRequest(capability="workspace_folders"))
        finally:
            await agent.close()
    assert (result.status, result.output) == (DelegationStatus.SUCCEEDED, "no folders shared")


@ERAS
async def test_a_server_asking_for_roots_gets_those_an_admin_configured(legacy: bool) -> None:
    roots = [{"uri": "file:///srv/briefs", "name": "Briefs"}]
    async with serve_in_process(assisted=True, legacy=legacy) as url:
        config = MCPConfig.from_dict({"transport": "http", "url": url, "roots": roots}, name="vendor")
        agent = MCPAgent(config, egress=LOOPBACK)
        try:
            result = await agent.delegate(DelegationRequest(capability="workspace_folders"))
        finally:
            await agent.close()
    assert result.output == "Briefs: file:///srv/briefs"
    assert config.to_dict()["roots"] == roots


def test_a_root_must_be_a_file_uri() -> None:
    with pytest.raises(AgentConfigInvalid, match=r"roots #1: a root is a file:// uri"):
        MCPConfig.from_dict(
            {"transport": "http", "url": "https://agent.example/mcp", "roots": [{"uri": "https://x.example"}]},
            name="vendor",
        )
    with pytest.raises(AgentConfigInvalid, match=r"roots must be a list of \{uri, name\}"):
        MCPConfig.from_dict({"transport": "http", "url": "https://agent.example/mcp", "roots": "/srv"}, name="vendor")


@ERAS
async def test_a_tool_that_needs_the_bots_model_stays_listed_and_fails_saying_sampling_is_off(legacy: bool) -> None:
    async with serve_in_process(assisted=True, legacy=legacy) as url:
        agent = MCPAgent(MCPConfig(name="vendor", transport="http", url=url), egress=LOOPBACK)
        try:
            listed = [capability.name for capability in await agent.capabilities()]
            result = await agent.delegate(
                DelegationRequest(capability="summarise_campaign", input={"campaign": "abm-q1"})
            )
        finally:
            await agent.close()
    assert "summarise_campaign" in listed
    assert result.status is DelegationStatus.FAILED
    assert "this Chief of Staff does not lend its language model to agents" in (result.error or "")
    assert SAMPLING_DECLINED.startswith("Sampling declined")


class WritingModel:
    """A sampler that writes one line, or declines, keeping what it was asked."""

    def __init__(self, declines: str | None = None) -> None:
        self.declines = declines
        self.asked: list[SamplingRequest] = []

    async def sample(self, request: SamplingRequest) -> Sampled:
        self.asked.append(request)
        if self.declines is not None:
            raise SamplingDeclined(self.declines)
        return Sampled(text="21 SQLs from 800 sends, ahead of plan.", model="claude-test")


@ERAS
async def test_with_sampling_on_the_servers_request_is_answered_by_the_bots_model_as_text(legacy: bool) -> None:
    model = WritingModel()
    request = DelegationRequest(
        capability="summarise_campaign", input={"campaign": "abm-q1"}, requested_by="aad-lead", delegation_id=7
    )
    async with serve_in_process(assisted=True, legacy=legacy) as url:
        agent = MCPAgent(MCPConfig(name="vendor", transport="http", url=url), egress=LOOPBACK, sampler=model)
        try:
            result = await agent.delegate(request)
        finally:
            await agent.close()
    assert result.output == "abm-q1: 21 SQLs from 800 sends, ahead of plan. (written by claude-test)"
    [asked] = model.asked[-1:]
    assert asked.agent == "vendor"
    assert asked.messages == (("user", "Summarise the abm-q1 campaign's results in one line."),)
    assert (asked.max_tokens, asked.requested_by, asked.delegation_id) == (200, "aad-lead", 7)


async def test_a_sampling_request_the_gate_refuses_fails_the_tool_with_the_gates_reason() -> None:
    model = WritingModel(declines="a rule stops it: no model for vendor agents")
    async with serve_in_process(assisted=True) as url:
        agent = MCPAgent(MCPConfig(name="vendor", transport="http", url=url), egress=LOOPBACK, sampler=model)
        try:
            result = await agent.delegate(
                DelegationRequest(capability="summarise_campaign", input={"campaign": "abm-q1"})
            )
        finally:
            await agent.close()
    assert result.status is DelegationStatus.FAILED
    assert "Sampling declined: a rule stops it: no model for vendor agents" in (result.error or "")
