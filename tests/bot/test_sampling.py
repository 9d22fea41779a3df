"""MCP sampling with the operator's switch on: a vendor tool borrows the bot's model (Claude through a fake Messages
API transport) behind the tenant's policy gate, and gets only text; a policy can stop it; every request is logged."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import anthropic
import httpx2
import pytest

from bot.sampling import ClaudeSampler
from bot.server import create_assistant, create_sampler
from bot.settings import Settings
from planner.services.decisions import DecisionLog
from planner.services.policy import PolicySets
from planner.store import Store
from tests.adapters.vendor_agent import serve_in_process
from tests.bot.conftest import TENANT, Running, a_delegating_bot
from tests.bot.delegating import a_desk, vendor_registered
from tests.bot.test_llm import ReplayTransport
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector

WRITTEN = {
    "id": "msg_sampling_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-5-5",
    "content": [{"type": "text", "text": "21 SQLs from 800 sends: ahead of plan."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 40, "output_tokens": 12},
}
NO_MODEL_FOR_AGENTS = """
rules:
  - id: no-model-for-agents
    description: Vendor agents do not get to use our model.
    effect: forbid
    kinds: [sampling]
"""


@pytest.fixture
def model() -> ReplayTransport:
    return ReplayTransport([WRITTEN])


@pytest.fixture
async def lending(
    store: Store, connector: FakeConnector, clock: FakeClock, model: ReplayTransport
) -> AsyncIterator[Running]:
    client = anthropic.AsyncAnthropic(
        api_key="test-key", max_retries=0, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(model))
    )
    sampler = ClaudeSampler(client, model="claude-sonnet-5-5")
    async with a_delegating_bot(store, connector, clock, sampler=sampler) as running:
        yield running


async def summarise_delegated(running: Running, clock: FakeClock) -> int:
    task_id, lead, _ = await a_desk(running, clock)
    async with serve_in_process(assisted=True) as url:
        await vendor_registered(lead, url, "summarise_campaign")
        [queued] = await lead.ask(f'delegate T{task_id} to vendor summarise_campaign {{"campaign": "abm-q1"}}')
        await running.bot.drain()
    found = re.search(r"delegation D(\d+)", queued)
    assert found is not None, queued
    return int(found.group(1))


async def test_a_vendor_tool_borrows_the_bots_model_for_text_only_and_the_loan_is_logged(
    lending: Running, clock: FakeClock, model: ReplayTransport
) -> None:
    delegation_id = await summarise_delegated(lending, clock)
    delegation = await lending.bot.delegator.delegations(TENANT).get(delegation_id)
    assert delegation.status.value == "succeeded"
    assert delegation.output == "abm-q1: 21 SQLs from 800 sends: ahead of plan. (written by claude-sonnet-5-5)"
    [asked] = model.requests
    assert "tools" not in asked  # the model can act on nothing: it only writes the agent's text
    assert asked["max_tokens"] == 200
    assert asked["messages"] == [{"role": "user", "content": "Summarise the abm-q1 campaign's results in one line."}]
    [lent] = [d for d in await DecisionLog(lending.store, TENANT).entries() if d.action.startswith("sampling.")]
    assert (lent.action, lent.actor, lent.subject) == ("sampling.lent", "agent:vendor", f"delegation:{delegation_id}")
    assert lent.data["on_behalf_of"] == "aad-lead"


async def test_a_policy_that_forbids_sampling_declines_it_and_the_tool_fails_saying_so(
    lending: Running, clock: FakeClock, model: ReplayTransport
) -> None:
    await PolicySets(lending.store, TENANT).load(NO_MODEL_FOR_AGENTS, actor="aad-admin")
    delegation_id = await summarise_delegated(lending, clock)
    delegation = await lending.bot.delegator.delegations(TENANT).get(delegation_id)
    assert delegation.status.value == "failed"
    assert "Sampling declined: this bot's policy does not lend its model here" in (delegation.error or "")
    assert "Vendor agents do not get to use our model" in (delegation.error or "")
    assert model.requests == []
    [declined] = [d for d in await DecisionLog(lending.store, TENANT).entries() if d.action.startswith("sampling.")]
    assert (declined.action, declined.verdict, declined.rules) == (
        "sampling.declined",
        "stop",
        ("no-model-for-agents",),
    )


def test_sampling_is_lent_only_when_the_operator_turns_it_on_and_a_key_is_set() -> None:
    assert create_sampler(Settings.from_env({}), None) is None
    assert create_sampler(Settings.from_env({"COS_MCP_SAMPLING": "on"}), None) is None  # no key: off, logged
    keyed = Settings.from_env({"COS_MCP_SAMPLING": "on", "ANTHROPIC_API_KEY": "sk-test"})
    assert isinstance(create_sampler(keyed, create_assistant(keyed)), ClaudeSampler)
    assert create_sampler(Settings.from_env({"ANTHROPIC_API_KEY": "sk-test"}), create_assistant(keyed)) is None
    with pytest.raises(ValueError, match="COS_MCP_SAMPLING='maybe' is not valid: expected on or off"):
        Settings.from_env({"COS_MCP_SAMPLING": "maybe"})
