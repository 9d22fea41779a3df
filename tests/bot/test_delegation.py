"""Delegation from Teams, against the project's vendor agent served over MCP on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.delegating import Delegator
from planner.domain.model import TaskStatus
from planner.services.plans import Plans
from planner.store import Store
from planner.store.vault import Vault
from tests.adapters.vendor_agent import serve_in_process
from tests.bot.cards.test_cards import all_text, schema_errors, texts
from tests.bot.conftest import TENANT, Running, TeamsUser, a_delegating_bot
from tests.bot.delegating import Desk, a_desk, a_task_for_the_writer, to_the_writer, vendor_registered
from tests.conftest import FakeClock
from tests.fakes.agents import FakeAgentFactory
from tests.fakes.connector import FakeConnector


async def test_the_pool_lends_one_open_agent_per_adapter_version_and_closes_what_it_replaces(
    store: Store, clock: FakeClock
) -> None:
    factory = FakeAgentFactory(clock)
    delegator = Delegator(store, Vault([Vault.generate_key()]), kinds=lambda *_: {"fake": factory})
    registry = delegator.registry(TENANT)
    for name in ("hubspot", "agentforce"):
        await registry.register("fake", name, {"url": f"https://{name}.example/mcp"}, actor="aad-admin")
    for _ in range(2):
        lent = await registry.open("hubspot")
        await lent.close()  # lent: kept open for the next delegation
    assert (len(factory.built), factory.agent("hubspot").closed) == (1, 0)
    # Two delegations asking at once for an agent not open yet: it is built once.
    await asyncio.gather(registry.open("agentforce"), registry.open("agentforce"))
    assert len(factory.built) == 2
    # A new version of the adapter: the old agent is closed, a new one built from the new configuration.
    await registry.reconfigure("hubspot", {"url": "https://hubspot.example/mcp/v2"}, actor="aad-admin")
    await registry.open("hubspot")
    assert (factory.built[-1]["url"], factory.agent("hubspot").closed) == ("https://hubspot.example/mcp/v2", 1)
    await delegator.close()
    assert (factory.agent("hubspot").closed, factory.agent("agentforce").closed) == (2, 1)


async def test_an_admin_registers_the_vendor_agent_and_a_task_comes_back_drafted(
    delegating: Running, clock: FakeClock
) -> None:
    task_id, lead, _ = await a_desk(delegating, clock)
    async with serve_in_process(token="vendor-secret-token") as url:
        config = json.dumps({"transport": "http", "url": url, "bearer_token": "vendor-secret-token"})
        [registered] = await lead.ask(f"adapter add mcp vendor {config}")
        assert "Adapter mcp:vendor registered" in registered
        assert "bearer_token" in registered
        await lead.ask("adapter test vendor")
        tested = all_text(delegating.connector.cards()[-1])
        assert "Answers" in tested
        assert "draft_email (off): Draft a marketing email" in tested
        assert "delete_segment (off, destructive: each call needs an approval)" in tested
        # Its tools are off until an admin has read them and enabled the ones wanted.
        [off] = await lead.ask(f'delegate T{task_id} to vendor draft_email {{"audience": "CFOs", "topic": "x"}}')
        assert "vendor's tool 'draft_email' is off" in off
        assert "`adapter enable vendor draft_email`" in off
        [enabled] = await lead.ask("adapter enable vendor draft_email")
        assert "vendor's tool draft_email is on" in enabled
        await lead.ask("adapters")
        listing = all_text(delegating.connector.cards()[-1])
        assert "mcp:vendor · enabled · circuit closed" in listing
        assert "bearer_token: set" in listing
        assert "vendor-secret-token" not in json.dumps([s.body for s in delegating.connector.sent])

        before = len(delegating.connector.sent)
        [queued] = await lead.ask(
            f'delegate T{task_id} to vendor draft_email {{"audience": "CFOs", "topic": "the spring launch"}}'
        )
        assert f"T{task_id} delegated to vendor (draft_email)" in queued
        await delegating.bot.drain()
    result = to_the_writer(delegating, before)
    assert len(result) == 1
    assert f"T{task_id} (D1, vendor draft_email) is back" in result[0].body["text"]
    card = result[0].body["attachments"][0]["content"]
    assert schema_errors(card) == []
    assert "the spring launch: what it means for CFOs" in all_text(card)
    task = await Plans(delegating.store, TENANT).get_task(task_id)
    assert task.status is TaskStatus.DELEGATED  # the owner decides when it is done
    await lead.ask(f"delegations T{task_id}")
    assert "D1 T1 → vendor draft_email: succeeded" in all_text(delegating.connector.cards()[-1])


async def test_an_admin_reads_a_server_s_tools_enables_them_one_by_one_and_a_wrong_input_is_named_in_chat(
    delegating: Running, clock: FakeClock
) -> None:
    task_id = await a_task_for_the_writer(delegating, clock)
    lead = TeamsUser(delegating)
    writer = TeamsUser(delegating, user_id="aad-writer", name="Content Writer", conversation_id="a:writer")
    async with serve_in_process() as url:
        await vendor_registered(lead, url)
        await lead.ask("adapter tools vendor")
        listed = all_text(delegating.connector.cards()[-1])
        assert "offer_discount (off): Offer an account a discount" in listed
        assert "delete_segment (off, destructive: each call needs an approval): Delete an audience segment" in listed
        [destructive] = await lead.ask("adapter enable vendor delete_segment")
        assert "every delegation to it waits for an approval" in destructive
        [enabled] = await lead.ask("adapter enable vendor offer_discount")
        assert "vendor's tool offer_discount is on" in enabled
        [not_member] = await writer.ask("adapter enable vendor send_email")
        assert "admin" in not_member
        [wrong] = await lead.ask(
            f'delegate T{task_id} to vendor offer_discount {{"account": "acme", "percent": "ten"}}'
        )
        assert 'input.percent: expected a number, not "ten"' in wrong
        await lead.ask("adapters")
        listed = all_text(delegating.connector.cards()[-1])
        assert "↳ delete_segment (on, destructive, no gate of its own)" in listed
        assert "↳ offer_discount (on, no gate of its own)" in listed
        [off] = await lead.ask("adapter disable vendor offer_discount")
        assert "vendor's tool offer_discount is off" in off
        [unknown] = await lead.ask("adapter enable vendor send_fax")
        assert "cannot 'send_fax'" in unknown
        delegator = delegating.bot.delegator
        assert delegator is not None
        assert await delegator.delegations(TENANT).of_task(task_id) == []
        # A destructive tool, enabled: the delegation waits for a person's approval before anything reaches the vendor.
        await lead.ask("approvers add leader aad-approver")
        await lead.ask(f'delegate T{task_id} to vendor delete_segment {{"segment_id": "seg-9"}}')
        await delegating.bot.drain()
        await delegator.drain()
        [held] = await delegator.delegations(TENANT).of_task(task_id)
        assert held.status.value == "held"
        assert "marks delete_segment as destructive" in (held.error or "")


async def test_an_agent_that_is_down_defers_the_work_tells_the_owner_once_and_runs_it_when_back(
    delegating: Running, clock: FakeClock
) -> None:
    task_id, lead, _ = await a_desk(delegating, clock)
    async with serve_in_process() as url:
        config = json.dumps({"transport": "http", "url": url, "connect_timeout_seconds": 5})
        await lead.ask(f"adapter add mcp vendor {config}")
        await lead.ask("adapter enable vendor draft_email")
    # The server is gone: the port refuses connections.
    await lead.ask(f'delegate T{task_id} to vendor draft_email {{"audience": "CFOs", "topic": "launch"}}')
    await delegating.bot.drain()
    delegator = delegating.bot.delegator
    assert delegator is not None
    await delegator.run_due(clock.now)  # a second failure opens the circuit
    texts = [s.body.get("text", "") for s in delegating.connector.sent if s.conversation_id == "a:writer"]
    waiting = [t for t in texts if "is waiting: vendor is not answering" in t]
    assert len(waiting) == 1
    [delegation] = await delegator.delegations(TENANT).of_task(task_id)
    assert delegation.status.value == "deferred"
    assert (await delegator.breakers(TENANT).state("vendor")).state.value == "open"
    [reply] = await lead.ask("adapters")
    assert "circuit open" in all_text(delegating.connector.cards()[-1]) or "circuit open" in reply
    # A lot later the vendor is back, on the same port: the deferred delegation runs and its result arrives.
    port = int(url.split(":")[2].split("/")[0])
    async with serve_in_process(port=port):
        clock.advance(minutes=10)
        assert await delegator.run_due(clock.now) == 1
    texts = [s.body.get("text", "") for s in delegating.connector.sent if s.conversation_id == "a:writer"]
    assert any("is back" in t for t in texts)


async def test_members_cannot_register_adapters_and_bad_configs_say_what_is_wrong(
    delegating: Running, clock: FakeClock
) -> None:
    await a_task_for_the_writer(delegating, clock)
    lead = TeamsUser(delegating)
    [bad] = await lead.ask('adapter add mcp vendor {"transport": "carrier-pigeon"}')
    assert "invalid adapter configuration" in bad
    assert "transport" in bad
    [unknown] = await lead.ask('adapter add smoke-signal vendor {"url": "x"}')
    assert "mcp" in unknown
    assert "browser" in unknown
    [not_json] = await lead.ask("adapter add mcp vendor {transport: http")
    assert "JSON object" in not_json
    [nothing] = await lead.ask("delegate T1 to nobody draft_email")
    assert "nobody" in nothing


@pytest.fixture
async def scripted(store: Store, connector: FakeConnector, clock: FakeClock) -> AsyncIterator[tuple[Running, Any]]:
    """The bot delegating to the scripted fake agent (`factory.agent("crm")`), its results sent as they come."""
    factory = FakeAgentFactory(clock)
    async with a_delegating_bot(store, connector, clock, kinds=lambda *_: {"fake": factory}) as running:
        yield running, factory


async def a_crm_desk(running: Running, clock: FakeClock) -> Desk:
    """The writer's task, the lead (an admin) and the writer (who has said hello), and the scripted agent `crm`."""
    desk = await a_desk(running, clock)
    await desk.lead.ask('adapter add fake crm {"url": "https://crm.example/mcp"}')
    return desk


async def test_a_delegation_of_unknown_outcome_is_told_to_its_owner_and_runs_again_only_when_a_person_says_so(
    scripted: tuple[Running, Any], clock: FakeClock
) -> None:
    running, factory = scripted
    task_id, lead, writer = await a_crm_desk(running, clock)
    factory.agent("crm").script = ["broken"]
    await lead.ask(f"delegate T{task_id} to crm draft_email")
    await running.bot.drain()
    delegator = running.bot.delegator
    assert delegator is not None
    told = [s.body.get("text", "") for s in running.connector.sent if s.conversation_id == "a:writer"]
    assert any("I can't tell whether crm did it" in t and "`retry D1` or `cancel D1`" in t for t in told)
    clock.advance(days=1)
    assert await delegator.run_due(clock.now) == 0  # never sent again by itself
    assert len(factory.agent("crm").calls) == 1
    [refused] = await TeamsUser(running, user_id="aad-other", name="Other", conversation_id="a:other").ask("retry D1")
    assert "Only who delegated T1, its owner or an admin can retry D1" in refused
    [again] = await writer.ask("retry D1")
    assert "D1 goes to crm (draft_email) again" in again
    await running.bot.drain()
    assert len(factory.agent("crm").calls) == 2
    [done_twice] = await writer.ask("retry D1")
    assert "D1 cannot be retried: it succeeded already" in done_twice


async def test_cancel_stops_what_waits_and_a_done_task_cancels_its_pending_delegations(
    scripted: tuple[Running, Any], clock: FakeClock
) -> None:
    running, factory = scripted
    task_id, lead, writer = await a_crm_desk(running, clock)
    factory.agent("crm").script = ["broken", "unavailable"]
    await lead.ask(f"delegate T{task_id} to crm draft_email")
    await running.bot.drain()
    [cancelled] = await writer.ask("cancel D1")
    assert "D1 is cancelled" in cancelled
    await lead.ask(f"delegate T{task_id} to crm draft_email")  # D2: the agent is not reached, so it waits
    await running.bot.drain()
    assert (await running.bot.delegator.delegations(TENANT).get(2)).status.value == "deferred"  # type: ignore[union-attr]
    [done] = await writer.ask(f"done T{task_id}")
    assert "Cancelled D2: no agent is needed for it now." in done
    [usage] = await writer.ask("cancel")
    assert "`cancel D12`" in usage


async def test_a_deleted_task_cancels_its_pending_delegations_and_undo_brings_back_only_the_task(
    scripted: tuple[Running, Any], clock: FakeClock
) -> None:
    running, factory = scripted
    task_id, lead, _ = await a_crm_desk(running, clock)
    factory.agent("crm").script = ["unavailable"]
    await lead.ask(f"delegate T{task_id} to crm draft_email")  # D1: the agent is not reached, so it waits
    await running.bot.drain()
    delegations = running.bot.delegator.delegations(TENANT)  # type: ignore[union-attr]
    assert (await delegations.get(1)).status.value == "deferred"
    [deleted] = await lead.ask(f"delete T{task_id}")
    assert "Cancelled D1: no agent is needed for a deleted task." in deleted
    [back] = await lead.ask("undo")
    assert f"T{task_id} is back" in back
    assert await delegations.of_task(task_id) == []
    clock.advance(days=1)
    assert await running.bot.delegator.run_due(clock.now) == 0  # type: ignore[union-attr]
    assert len(factory.agent("crm").calls) == 1


async def test_an_admin_resets_a_circuit_and_what_waited_for_it_runs(
    scripted: tuple[Running, Any], clock: FakeClock
) -> None:
    running, _factory = scripted
    task_id, lead, _writer = await a_crm_desk(running, clock)
    delegator = running.bot.delegator
    assert delegator is not None
    for _ in range(5):
        await delegator.breakers(TENANT).failed("crm", "connection refused")
    await lead.ask(f"delegate T{task_id} to crm draft_email")
    await running.bot.drain()
    assert (await delegator.delegations(TENANT).get(1)).status.value == "deferred"
    [reset] = await lead.ask("adapter reset crm")
    assert "fake:crm's circuit is closed" in reset
    assert "the 1 delegation(s) that waited for it" in reset
    await running.bot.drain()
    assert (await delegator.delegations(TENANT).get(1)).status.value == "succeeded"
    [member] = await TeamsUser(running, user_id="aad-other", name="Other", conversation_id="a:other").ask(
        "adapter reset crm"
    )
    assert "crm's circuit is closed" not in member


async def test_a_delegation_whose_runner_stopped_mid_call_is_told_to_its_owner_as_unknown_at_the_next_tick(
    scripted: tuple[Running, Any], clock: FakeClock
) -> None:
    running, factory = scripted
    task_id, _lead, _writer = await a_crm_desk(running, clock)
    delegator = running.bot.delegator
    assert delegator is not None
    stopped = delegator.delegations(TENANT)  # a runner that requests with start, then its process stops
    await stopped.request(task_id, adapter="crm", capability="draft_email", input={}, actor="aad-lead", start=True)
    clock.advance(minutes=5)
    await delegator.run_due(clock.now)
    texts = [s.body.get("text", "") for s in running.connector.sent if s.conversation_id == "a:writer"]
    assert any("I can't tell whether crm did it" in t for t in texts)
    assert factory.agent("crm").calls == []
    assert (await delegator.delegations(TENANT).get(1)).status.value == "unknown"


async def test_a_delegation_run_again_by_the_tick_asks_the_person_who_delegated_for_the_code(
    scripted: tuple[Running, Any], clock: FakeClock
) -> None:
    running, factory = scripted
    task_id, _lead, writer = await a_crm_desk(running, clock)
    factory.agent("crm").script = ["unavailable", "ask"]
    await writer.ask(f"delegate T{task_id} to crm draft_email")
    await running.bot.drain()
    delegator = running.bot.delegator
    assert delegator is not None
    assert (await delegator.delegations(TENANT).get(1)).status.value == "deferred"
    before = len(running.connector.sent)

    clock.advance(minutes=10)
    ticking = asyncio.create_task(delegator.run_due(clock.now))
    sent = await running.connector.wait_for(before + 1)
    [question] = [s for s in sent[before:] if "needs an answer from you" in (s.body.get("text") or "")]
    assert question.conversation_id == "a:writer"
    assert "within 5 minutes" in question.body["text"]
    assert await writer.ask("448-912") == ["Thanks, I've passed it on."]
    assert await asyncio.wait_for(ticking, 10) == 1

    assert factory.agent("crm").answers == ["448912"]
    assert (await delegator.delegations(TENANT).get(1)).status.value == "succeeded"


def readme_browser_recipe() -> str:
    """The README's browser recipe (its JSON block), on one line as a chat message carries it."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- recipe: flows -->\n```json\n", 1)[1].split("```", 1)[0]
    return json.dumps(json.loads(block))


async def test_the_readme_browser_recipe_registers_in_chat_as_written(delegating: Running) -> None:
    lead = TeamsUser(delegating)

    [registered] = await lead.ask(f"adapter add browser flows {readme_browser_recipe()}")

    assert "Adapter browser:flows registered" in registered
    assert "a long passphrase" not in registered
    await lead.ask("adapters")
    listing = all_text(delegating.connector.cards()[-1])
    assert "browser:flows · enabled" in listing
    assert "a long passphrase" not in listing


async def test_an_admin_retrying_a_delegation_has_the_person_who_delegated_asked_for_the_code(
    scripted: tuple[Running, Any], clock: FakeClock
) -> None:
    running, factory = scripted
    task_id, lead, writer = await a_crm_desk(running, clock)
    factory.agent("crm").script = ["broken", "ask"]
    await writer.ask(f"delegate T{task_id} to crm draft_email")
    await running.bot.drain()
    before = len(running.connector.sent)

    [again] = await lead.ask("retry D1")
    assert "D1 goes to crm (draft_email) again" in again
    sent = await running.connector.wait_for(before + 2)
    [question] = [s for s in sent[before:] if "needs an answer from you" in (s.body.get("text") or "")]
    assert question.conversation_id == "a:writer"
    assert await writer.ask("448 912") == ["Thanks, I've passed it on."]
    await running.bot.drain()

    assert factory.agent("crm").answers == ["448912"]


async def test_an_mcp_server_s_question_is_relayed_to_the_person_and_the_card_shows_the_progress_it_reported(
    delegating: Running, clock: FakeClock
) -> None:
    task_id, lead, _ = await a_desk(delegating, clock)
    async with serve_in_process() as url:
        await vendor_registered(lead, url, "send_campaign", "export_report")
        before = len(delegating.connector.sent)
        [queued] = await lead.ask(f'delegate T{task_id} to vendor send_campaign {{"campaign": "spring-launch"}}')
        [question] = [
            s for s in (await delegating.connector.wait_for(before + 2))[before:] if s.body.get("text") != queued
        ]
        assert question.conversation_id == "a:personal-lead"
        asked = question.body["attachments"][0]["content"]
        assert schema_errors(asked) == []
        assert "Send spring-launch now?" in all_text(asked)
        assert "• Confirm (yes or no, required)" in texts(asked)  # a field a line, not run into one paragraph
        assert await lead.ask("confirm: yes\naudience size: 4 800") == ["Thanks, I've passed it on."]
        await delegating.bot.drain()
        await lead.ask(f'delegate T{task_id} to vendor export_report {{"campaign": "abm-q1", "steps": 2}}')
        await delegating.bot.drain()
    sent, exported = to_the_writer(delegating, before)
    assert "spring-launch sent to 4800 recipients" in all_text(sent.body["attachments"][0]["content"])
    card = exported.body["attachments"][0]["content"]
    assert schema_errors(card) == []
    assert "What vendor reported as it went:" in all_text(card)
    assert "2/2: exported part 2 of abm-q1" in all_text(card)
