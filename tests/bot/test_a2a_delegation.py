"""An A2A agent end to end: registered in chat by an admin, a task delegated to it, the agent's question relayed to
the person who delegated, and the result posted to the task's owner; a dead agent's delegation is not run twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from planner.store.vault import Vault
from tests.bot.cards.test_cards import all_text, schema_errors, texts
from tests.bot.conftest import TENANT, Running
from tests.bot.delegating import a_desk, to_the_writer
from tests.conftest import FakeClock
from tests.fakes.a2a_agent import REGION_QUESTION, Access, listening_socket, serve, vendor_process


async def test_an_a2a_agent_asks_the_delegating_person_half_way_and_the_owner_gets_the_brief(
    delegating: Running, clock: FakeClock
) -> None:
    task_id, lead, _ = await a_desk(delegating, clock)
    async with serve(access=Access(tokens={"vendor-secret-token"})) as (url, executor):
        config = json.dumps({"url": url, "bearer_token": "vendor-secret-token", "poll_seconds": 0.05})
        [registered] = await lead.ask(f"adapter add a2a planner {config}")
        assert "Adapter a2a:planner registered" in registered
        await lead.ask("adapter test planner")
        assert "can region_brief" in all_text(delegating.connector.cards()[-1])

        before = len(delegating.connector.sent)
        [queued] = await lead.ask(f'delegate T{task_id} to planner region_brief {{"topic": "the spring launch"}}')
        assert f"T{task_id} delegated to planner (region_brief)" in queued
        [question] = [
            s for s in (await delegating.connector.wait_for(before + 2))[before:] if s.body.get("text") != queued
        ]
        assert question.conversation_id == "a:personal-lead"
        assert "planner needs an answer from you" in question.body["text"]
        assert REGION_QUESTION in texts(question.body["attachments"][0]["content"])
        assert await lead.ask("EMEA") == ["Thanks, I've passed it on."]
        await delegating.bot.drain()
        assert executor.executions == {"region_brief": 2}  # one task: the answer went into it
    result = to_the_writer(delegating, before)
    assert len(result) == 1
    assert f"T{task_id} (D1, planner region_brief) is back" in result[0].body["text"]
    card = result[0].body["attachments"][0]["content"]
    assert schema_errors(card) == []
    assert "Brief for EMEA" in all_text(card)
    assert "vendor-secret-token" not in json.dumps([s.body for s in delegating.connector.sent])


async def test_an_a2a_agent_that_refuses_connections_defers_the_delegation_and_it_runs_once_when_back(
    delegating: Running, clock: FakeClock
) -> None:
    task_id, lead, _ = await a_desk(delegating, clock)
    sock = listening_socket(0)
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connections are refused
    await lead.ask(f"adapter add a2a planner {json.dumps({'url': f'http://127.0.0.1:{port}'})}")
    await lead.ask(f'delegate T{task_id} to planner brief {{"topic": "the spring launch"}}')
    await delegating.bot.drain()
    delegator = delegating.bot.delegator
    assert delegator is not None
    [delegation] = await delegator.delegations(TENANT).of_task(task_id)
    assert delegation.status.value == "deferred"
    async with serve(port=port) as (_, executor):
        clock.advance(minutes=10)
        assert await delegator.run_due(clock.now) == 1
        assert executor.executions == {"brief": 1}
    [delegation] = await delegator.delegations(TENANT).of_task(task_id)
    assert delegation.status.value == "succeeded"


async def test_an_a2a_agent_that_dies_with_the_message_leaves_the_delegation_unknown_and_never_sends_it_again(
    delegating: Running, clock: FakeClock, tmp_path: Path
) -> None:
    task_id, lead, _ = await a_desk(delegating, clock)
    log = tmp_path / "executions"
    async with vendor_process(log) as (url, process):
        await lead.ask(f"adapter add a2a planner {json.dumps({'url': url})}")
        await lead.ask(f"delegate T{task_id} to planner crash")
        await delegating.bot.drain()
        await process.wait()
    delegator = delegating.bot.delegator
    assert delegator is not None
    [delegation] = await delegator.delegations(TENANT).of_task(task_id)
    assert delegation.status.value == "unknown"
    told = [s.body.get("text", "") for s in delegating.connector.sent if s.conversation_id == "a:writer"]
    assert any("I can't tell whether planner did it" in t and "`retry D1` or `cancel D1`" in t for t in told)
    clock.advance(days=1)
    assert await delegator.run_due(clock.now) == 0
    assert log.read_text().splitlines() == ["crash"]


def test_an_a2a_agent_is_registered_from_a_shell_where_the_operator_allows_its_address(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COS_SECRET_KEYS", Vault.generate_key())
    config = json.dumps({"url": "http://127.0.0.1:9/", "bearer_token": "vendor-secret-token"})
    tenant = ["--tenant", "contoso"]
    assert main(["db", "upgrade"]) == 0
    assert main(["adapters", "register", *tenant, "a2a", "planner", config]) == 1
    refused = capsys.readouterr().err
    assert "a loopback address" in refused
    assert "COS_ADAPTER_ALLOWED_NETWORKS" in refused
    monkeypatch.setenv("COS_ADAPTER_ALLOWED_NETWORKS", "127.0.0.1/32")
    assert main(["adapters", "register", *tenant, "a2a", "planner", config]) == 0
    assert "a2a:planner registered; secret fields kept encrypted: bearer_token" in capsys.readouterr().out
    assert main(["adapters", "list", *tenant]) == 0
    listed = capsys.readouterr().out
    assert "a2a:planner (enabled)" in listed
    assert "vendor-secret-token" not in listed


async def test_an_a2a_skill_an_admin_classified_waits_for_its_gate_s_approver_and_adapters_shows_its_gate(
    delegating: Running, clock: FakeClock
) -> None:
    task_id, lead, _ = await a_desk(delegating, clock)
    await lead.ask("approvers add brand aad-writer")
    async with serve() as (url, executor):
        await lead.ask(f"adapter add a2a planner {json.dumps({'url': url, 'poll_seconds': 0.05})}")
        [classified] = await lead.ask("adapter classify planner region_brief brand_creative")
        assert "region_brief is classified: Brand-critical creative (brand)" in classified.replace("`", "")
        await lead.ask("adapters")
        listed = all_text(delegating.connector.cards()[-1])
        assert "↳ every skill its agent offers: `adapter test planner` lists them" in listed.replace("\\", "")
        assert "↳ region_brief (gates: Brand-critical creative)" in listed
        await lead.ask(f'delegate T{task_id} to planner region_brief {{"topic": "the spring launch"}}')
        await delegating.bot.drain()
        delegator = delegating.bot.delegator
        assert delegator is not None
        [delegation] = await delegator.delegations(TENANT).of_task(task_id)
        assert delegation.status.value == "held"
        assert executor.executions == {}
