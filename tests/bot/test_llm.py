"""Claude through a fake HTTP transport replaying recorded Messages API responses: no real API call."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from bot.llm import Assistant, LLMUnavailable
from bot.operations import Caller, Context, default_registry
from planner.domain.model import Tier
from planner.services.plans import Plans
from planner.services.tenants import Tenants
from planner.store import Store
from tests.bot.conftest import TENANT, TeamsUser, start_bot
from tests.conftest import FakeClock
from tests.fakes.connector import FakeConnector

RECORDINGS = Path(__file__).with_name("recordings")


class ReplayTransport:
    """Answers each Messages API call with the next recorded response, keeping the requests it saw."""

    def __init__(self, responses: list[dict[str, Any] | Callable[[], httpx2.Response]]) -> None:
        self.responses = list(responses)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/v1/messages"
        self.requests.append(json.loads(request.content))
        answer = self.responses.pop(0)
        if callable(answer):
            return answer()
        return httpx2.Response(200, json=answer)


def assistant_with(transport: ReplayTransport) -> Assistant:
    client = anthropic.AsyncAnthropic(
        api_key="test-key", max_retries=0, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(transport))
    )
    return Assistant(client, default_registry(), model="claude-sonnet-5-5")


def context_for(store: Store) -> Context:
    return Context(Tenants(store), Caller(tenant_id=TENANT, user_id="aad-lead", name="Lead"), clock=store.clock)


async def test_a_multi_step_tool_loop_creates_the_plan_and_drafts_tactical_plans(store: Store) -> None:
    transport = ReplayTransport(json.loads((RECORDINGS / "plan_from_text.json").read_text()))
    reply = await assistant_with(transport).handle(
        context_for(store), "Set up our Q1 plan: 500 SQLs by end of March, with an ABM push and webinars"
    )
    assert reply.text.startswith("Your master plan P1 is set")
    tenant = Plans(store, TENANT)
    [master] = await tenant.list_plans(Tier.MASTER)
    assert master.title == "500 SQLs by 31 March"
    # The tactical plans are only drafted: nothing is saved until a person says so.
    assert await tenant.list_plans(Tier.TACTICAL) == []
    draft_card = json.dumps(reply.cards[-1])
    assert "ABM programme" in draft_card
    assert "Save" in draft_card

    first, second, third = transport.requests
    tool_names = {tool["name"] for tool in first["tools"]}
    assert "create_master_plan" in tool_names
    assert "confirm_draft" not in tool_names  # the model can never save a draft
    results = second["messages"][-1]["content"]
    assert results[0]["type"] == "tool_result"
    assert results[0]["tool_use_id"] == "toolu_01"
    assert json.loads(results[0]["content"])["ok"] is True
    assert third["messages"][-1]["content"][0]["tool_use_id"] == "toolu_02"


async def test_a_tool_call_with_bad_arguments_is_reported_back_to_the_model_not_applied(store: Store) -> None:
    bad_call = {
        "id": "msg_x",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
        "content": [
            {
                "type": "tool_use",
                "id": "toolu_x",
                "name": "create_master_plan",
                "input": {"title": "Grow", "start": "2026-03-31", "end": "2026-01-01"},
            }
        ],
    }
    confirm = {
        **bad_call,
        "content": [{"type": "tool_use", "id": "toolu_y", "name": "confirm_draft", "input": {"draft": "1"}}],
    }
    done = {**bad_call, "stop_reason": "end_turn", "content": [{"type": "text", "text": "The dates were wrong."}]}
    transport = ReplayTransport([bad_call, confirm, done])
    reply = await assistant_with(transport).handle(context_for(store), "make a plan")
    assert reply.text == "The dates were wrong."
    assert await Plans(store, TENANT).list_plans() == []
    refused = transport.requests[1]["messages"][-1]["content"][0]
    assert refused["is_error"] is True
    assert "before it starts" in json.loads(refused["content"])["result"]
    not_a_tool = transport.requests[2]["messages"][-1]["content"][0]
    assert "no tool 'confirm_draft'" in json.loads(not_a_tool["content"])["result"]


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, "rate limited"), (529, "overloaded"), (500, "error 500")],
)
async def test_model_errors_become_llm_unavailable(store: Store, status: int, reason: str) -> None:
    transport = ReplayTransport(
        [lambda: httpx2.Response(status, json={"type": "error", "error": {"type": "x", "message": "no"}})]
    )
    with pytest.raises(LLMUnavailable, match=reason):
        await assistant_with(transport).handle(context_for(store), "hello")


async def test_free_text_is_acknowledged_at_once_and_answered_in_the_background(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    transport = ReplayTransport(json.loads((RECORDINGS / "plan_from_text.json").read_text()))
    running = await start_bot(store, connector, clock, assistant=assistant_with(transport))
    try:
        lead = TeamsUser(running)
        await lead.say("Set up our Q1 plan please")
        await running.bot.drain()
        sent = await connector.wait_for(4)
        assert sent[0].body["type"] == "typing"
        assert sent[1].body["text"] == "Working on it…"
        assert any("Your master plan P1 is set" in (s.body.get("text") or "") for s in sent[2:])
    finally:
        await running.session.close()
        await running.server.close()


async def test_an_unavailable_model_falls_back_to_the_grammar_with_a_clear_message(
    store: Store, connector: FakeConnector, clock: FakeClock
) -> None:
    overloaded = ReplayTransport(
        [lambda: httpx2.Response(529, json={"type": "error", "error": {"type": "overloaded_error", "message": "x"}})]
    )
    running = await start_bot(store, connector, clock, assistant=assistant_with(overloaded))
    try:
        lead = TeamsUser(running)
        await lead.say("what is going on with the plan?")
        await running.bot.drain()
        sent = await connector.wait_for(3)
        assert "couldn't reach the language model just now (overloaded)" in sent[-1].body["text"]
    finally:
        await running.session.close()
        await running.server.close()
