"""An MCP server's tools through the registry, against the project's vendor agent: off until an admin enables each,
pinned when enabled and held when the server changes them, approvals for every call of a destructive tool, and the
input checked against the tool's schema before anything reaches the vendor."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import jsonschema
import pytest
from sqlalchemy import select

from adapters.mcp import MCPAdapterFactory
from bot.text.errors import describe_plain
from planner.domain.adapters import ToolState, fingerprint
from planner.domain.delegations import DelegationStatus
from planner.domain.governance import DestructiveTool
from planner.domain.model import Window
from planner.domain.problems import Problem, ProblemCode
from planner.services import tools
from planner.services.approvals import Approvals
from planner.services.decisions import DecisionLog
from planner.services.delegation import Delegations
from planner.services.plans import Plans
from planner.services.registry import Registry, ToolsNotSwitched
from planner.services.tools import InputInvalid, ToolHeld, ToolNotEnabled, input_problem
from planner.store import Store
from planner.store.schema import adapter_tools, events
from planner.store.vault import Vault
from tests.adapters.operator import LOOPBACK
from tests.adapters.vendor_agent import REVISED_DRAFT, serve_in_process
from tests.conftest import FakeClock
from tests.fakes.agents import FakeAgentFactory
from tests.saying import raises_saying

TENANT = "contoso"
KEY = Vault.generate_key()
JANUARY = Window(start=date(2026, 1, 1), end=date(2026, 1, 31))


@dataclass
class Vendor:
    """The vendor agent registered as the adapter `vendor`, a task to delegate, and who calls it."""

    store: Store
    url: str
    port: int
    registry: Registry
    delegations: Delegations
    task_id: int
    calls: list[str]

    async def delegate(self, capability: str, **input: Any) -> Any:
        delegation = await self.delegations.request(
            self.task_id, adapter="vendor", capability=capability, input=input, actor="aad-lead"
        )
        return (await self.delegations.run(delegation.id)).delegation


def registry_of(store: Store, clock: FakeClock) -> Registry:
    kinds = {"mcp": MCPAdapterFactory(egress=LOOPBACK), "fake": FakeAgentFactory(clock)}
    return Registry(store, TENANT, vault=Vault([KEY]), kinds=kinds)


@pytest.fixture
async def vendor(store: Store, clock: FakeClock) -> AsyncIterator[Vendor]:
    plans = Plans(store, TENANT)
    master = await plans.create_master_plan(title="Q1", owner="aad-lead", window=JANUARY, actor="aad-lead")
    tactical = await plans.create_tactical_plan(master.id, title="Launch", owner="aad-lead", window=JANUARY, actor="x")
    task = await plans.add_task(tactical.id, title="Emails", due_on=date(2026, 1, 9), owner="aad-writer", actor="x")
    calls: list[str] = []
    async with serve_in_process(announce=calls.append) as url:
        registry = registry_of(store, clock)
        await registry.register("mcp", "vendor", {"transport": "http", "url": url}, actor="aad-admin")
        port = int(url.split(":")[2].split("/")[0])
        yield Vendor(store, url, port, registry, Delegations(store, TENANT, registry=registry), task.id, calls)


async def test_a_new_mcp_adapter_s_tools_are_listed_but_off_and_a_delegation_to_one_is_refused_saying_how_to_enable(
    vendor: Vendor,
) -> None:
    tools = {tool.capability: tool for tool in await vendor.registry.tools("vendor")}
    assert {tool.state for tool in tools.values()} == {"off"}
    assert tools["draft_email"].now is not None
    assert tools["draft_email"].now.description == "Draft a marketing email for an audience about a topic."
    assert tools["delete_segment"].destructive
    assert not tools["draft_email"].destructive

    with pytest.raises(ToolNotEnabled) as refused:
        await vendor.delegations.request(
            vendor.task_id, adapter="vendor", capability="send_email", input={"to": "a@b.example"}, actor="aad-lead"
        )
    assert "`adapter enable vendor send_email`" in describe_plain(refused.value)
    assert await vendor.delegations.of_task(vendor.task_id) == []
    assert vendor.calls == []


async def test_an_enabled_tool_is_called_with_its_definition_pinned_and_the_admin_s_act_recorded(
    vendor: Vendor,
) -> None:
    enabled = await vendor.registry.enable_tool("vendor", "draft_email", actor="aad-admin")
    assert enabled.state is ToolState.ENABLED
    assert enabled.definition["description"] == "Draft a marketing email for an audience about a topic."
    assert enabled.definition["inputSchema"]["required"] == ["audience", "topic"]
    assert enabled.pin == fingerprint(enabled.definition)
    assert enabled.decided_by == "aad-admin"

    done = await vendor.delegate("draft_email", audience="CFOs", topic="the launch")

    assert done.status is DelegationStatus.SUCCEEDED, done.error
    assert "the launch: what it means for CFOs" in (done.output or "")
    [listed] = [tool for tool in await vendor.registry.tools("vendor") if tool.capability == "draft_email"]
    assert listed.state == "on"
    async with vendor.store.read() as conn:
        kinds = list((await conn.execute(select(events.c.kind).where(events.c.subject_type == "adapter"))).scalars())
    assert kinds == ["adapter.registered", "adapter.tool_enabled"]


async def test_a_tool_s_input_schema_is_checked_against_its_metaschema_once_for_every_request_and_call(
    vendor: Vendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    build = tools._validator

    def counted(schema_json: str) -> Any:
        built.append(schema_json)
        return build(schema_json)

    monkeypatch.setattr(tools, "_validator", counted)
    await vendor.registry.enable_tool("vendor", "draft_email", actor="aad-admin")

    for topic in ("the launch", "the webinar", "the price change"):
        done = await vendor.delegate("draft_email", audience="CFOs", topic=topic)
        assert done.status is DelegationStatus.SUCCEEDED, done.error

    assert len(built) == 1


async def test_a_tool_whose_server_changes_its_definition_is_held_until_an_admin_enables_it_again(
    vendor: Vendor,
) -> None:
    await vendor.registry.enable_tool("vendor", "draft_email", actor="aad-admin")
    await vendor.registry.enable_tool("vendor", "campaign_metrics", actor="aad-admin")
    async with serve_in_process(port=0, revised=True) as revised_url:
        await vendor.registry.reconfigure("vendor", {"url": revised_url}, actor="aad-admin")  # the vendor's update

        held = await vendor.delegate("draft_email", audience="CFOs", topic="the launch")

        assert held.status is DelegationStatus.FAILED
        # Stored as the planner states it (the bot's delegator words it with bot/text/errors.py).
        assert "tool 'draft_email' of adapter 'vendor' is held" in (held.error or "")
        assert "changed: description" in (held.error or "")
        # Held: refused at once from now on, and listed so; an unchanged tool of the same server still works.
        with pytest.raises(ToolHeld):
            await vendor.delegations.request(
                vendor.task_id, adapter="vendor", capability="draft_email", input={}, actor="aad-lead"
            )
        states = {tool.capability: tool.state for tool in await vendor.registry.tools("vendor")}
        assert states["draft_email"] == "held"
        metrics = await vendor.delegate("campaign_metrics", campaign="abm-q1")
        assert metrics.status is DelegationStatus.SUCCEEDED, metrics.error

        # The admin reads the new definition and enables it again: it is pinned anew and callable.
        again = await vendor.registry.enable_tool("vendor", "draft_email", actor="aad-admin")
        assert again.definition["description"] == REVISED_DRAFT
        done = await vendor.delegate("draft_email", audience="CFOs", topic="the launch")
        assert done.status is DelegationStatus.SUCCEEDED, done.error
    # Back to the first release: the change is seen as soon as the server reports it, in a listing too.
    await vendor.registry.reconfigure("vendor", {"url": vendor.url}, actor="aad-admin")
    states = {tool.capability: tool.state for tool in await vendor.registry.tools("vendor")}
    assert (states["draft_email"], states["campaign_metrics"]) == ("held", "on")
    async with vendor.store.read() as conn:
        kinds = list((await conn.execute(select(events.c.kind).where(events.c.subject_type == "adapter"))).scalars())
    assert kinds.count("adapter.tool_held") == 2


async def test_every_delegation_to_a_destructive_tool_waits_for_an_approval(vendor: Vendor) -> None:
    approvals = Approvals(vendor.store, TENANT, record=DecisionLog(vendor.store, TENANT).record)
    await approvals.approvers.assign("leader", "aad-approver", actor="aad-admin")
    await vendor.registry.enable_tool("vendor", "create_segment", actor="aad-admin")
    await vendor.registry.enable_tool("vendor", "delete_segment", actor="aad-admin")
    made = await vendor.delegate("create_segment", name="Churned", criteria="no order in 90 days")
    assert made.status is DelegationStatus.SUCCEEDED, made.error

    first = await vendor.delegate("delete_segment", segment_id="seg-1")

    assert first.status is DelegationStatus.HELD
    assert vendor.calls == []  # nothing reached the vendor
    [request] = await approvals.pending()
    # Why, as data the bot words ("vendor's server marks delete_segment as destructive…", tests/bot/test_delegation.py)
    assert request.policy_reasons == (DestructiveTool(agent="vendor", capability="delete_segment"),)
    await approvals.decide(request.id, approver="aad-approver", approve=True, authenticated=True)
    await vendor.delegations.release_hold(first.id, approved=True, actor="aad-approver", reason="approved")
    ran = (await vendor.delegations.run(first.id)).delegation
    assert ran.status is DelegationStatus.SUCCEEDED, ran.error
    assert vendor.calls == ["delete_segment seg-1"]
    # The next one asks again: an approval is for one delegation.
    second = await vendor.delegate("delete_segment", segment_id="seg-2")
    assert second.status is DelegationStatus.HELD
    assert len(await approvals.pending()) == 1


async def test_input_the_tool_s_schema_refuses_is_named_before_anything_is_queued_or_sent(vendor: Vendor) -> None:
    await vendor.registry.enable_tool("vendor", "offer_discount", actor="aad-admin")

    with pytest.raises(InputInvalid) as missing:
        await vendor.delegations.request(
            vendor.task_id, adapter="vendor", capability="offer_discount", input={"account": "acme"}, actor="x"
        )
    with pytest.raises(InputInvalid) as wrong:
        await vendor.delegations.request(
            vendor.task_id,
            adapter="vendor",
            capability="offer_discount",
            input={"account": "acme", "percent": "a lot"},
            actor="x",
        )

    assert missing.value.problem == Problem(ProblemCode.MISSING, "input.percent")
    assert "input.percent: missing" in describe_plain(missing.value)
    assert wrong.value.problem == Problem(ProblemCode.NOT_OF_TYPE, "input.percent", value="a lot", types=("number",))
    assert 'input.percent: expected a number, not "a lot"' in describe_plain(wrong.value)
    assert await vendor.delegations.of_task(vendor.task_id) == []
    assert vendor.calls == []


async def test_a_tool_switched_off_after_a_delegation_was_asked_for_is_not_called(vendor: Vendor) -> None:
    await vendor.registry.enable_tool("vendor", "send_email", actor="aad-admin")
    asked = await vendor.delegations.request(
        vendor.task_id,
        adapter="vendor",
        capability="send_email",
        input={"to": "a@b.example", "subject": "Hi"},
        actor="x",
    )
    assert await vendor.registry.disable_tool("vendor", "send_email", actor="aad-admin") is not None

    outcome = (await vendor.delegations.run(asked.id)).delegation

    assert outcome.status is DelegationStatus.FAILED
    assert "tool 'send_email' of adapter 'vendor' is off" in (outcome.error or "")
    assert vendor.calls == []
    assert await vendor.registry.disable_tool("vendor", "send_email", actor="aad-admin") is None


async def test_removing_an_adapter_forgets_its_tools_and_a_kind_without_tools_refuses_to_switch_them(
    vendor: Vendor,
) -> None:
    await vendor.registry.enable_tool("vendor", "draft_email", actor="aad-admin")
    await vendor.registry.remove("vendor", actor="aad-admin")
    async with vendor.store.read() as conn:
        assert (await conn.execute(select(adapter_tools))).all() == []
    await vendor.registry.register("fake", "recipe", {"url": "https://crm.example/mcp"}, actor="aad-admin")
    with raises_saying(ToolsNotSwitched, "need no enabling one by one"):
        await vendor.registry.enable_tool("recipe", "draft_email", actor="aad-admin")


FIELDS = ("account", "channel", "codes", "either", "note", "percent", "plan", "region", "segment", "tags")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"account": "acme", "percent": 5}, None),
        ({"percent": 5}, Problem(ProblemCode.MISSING, "input.account")),
        (
            {"account": "acme", "percent": 5, "notes": "x"},
            Problem(ProblemCode.NOT_A_FIELD, "input.notes", name="notes", known=FIELDS),
        ),
        (
            {"account": "acme", "percent": 5, "codes": [1, "two"]},
            Problem(ProblemCode.NOT_OF_TYPE, "input.codes[1]", value="two", types=("integer",)),
        ),
        ({"account": "acme", "percent": -1}, Problem(ProblemCode.BELOW_MINIMUM, "input.percent", value=-1, limit=0)),
        ({"account": "acme", "percent": 90}, Problem(ProblemCode.ABOVE_MAXIMUM, "input.percent", value=90, limit=50)),
        (
            {"account": "acme", "percent": 5, "codes": [1, 2.5]},
            Problem(ProblemCode.NOT_OF_TYPE, "input.codes[1]", value=2.5, types=("integer",)),
        ),
        (
            {"account": "acme", "percent": 5, "channel": "fax"},
            Problem(ProblemCode.NOT_ONE_OF, "input.channel", value="fax", known=("email", "sms")),
        ),
        (
            {"account": "acme", "percent": 5, "plan": "gold"},
            Problem(ProblemCode.NOT_CONSTANT, "input.plan", value="gold", expected="basic"),
        ),
        (
            {"account": "acme", "percent": 5, "region": "eu-west"},
            Problem(ProblemCode.PATTERN, "input.region", value="eu-west", pattern="^[A-Z]{2}$"),
        ),
        ({"account": "", "percent": 5}, Problem(ProblemCode.TEXT_AT_LEAST, "input.account", limit=1)),
        ({"account": "a" * 41, "percent": 5}, Problem(ProblemCode.TEXT_AT_MOST, "input.account", limit=40)),
        ({"account": "acme", "percent": 5, "tags": []}, Problem(ProblemCode.ITEMS_AT_LEAST, "input.tags", limit=1)),
        (
            {"account": "acme", "percent": 5, "tags": ["a", "b", "c", "d"]},
            Problem(ProblemCode.ITEMS_AT_MOST, "input.tags", limit=3),
        ),
        ({"account": "acme", "percent": 5, "tags": ["a", "a"]}, Problem(ProblemCode.ITEMS_REPEAT, "input.tags")),
        ({"account": "acme", "percent": 7}, Problem(ProblemCode.NOT_A_MULTIPLE, "input.percent", value=7, limit=5)),
        (
            {"account": "acme", "percent": 5, "segment": 0},
            Problem(ProblemCode.NOT_ABOVE, "input.segment", value=0, limit=0),
        ),
        (
            {"account": "acme", "percent": 5, "segment": 100},
            Problem(ProblemCode.NOT_BELOW, "input.segment", value=100, limit=100),
        ),
        (
            {"account": "acme", "percent": 5, "either": 3},
            Problem(
                ProblemCode.SCHEMA_SAYS,
                "input.either",
                keyword="not",
                message="3 should not be valid under {'type': 'integer'}",
            ),
        ),
    ],
)
def test_input_problems_name_the_field_and_what_its_schema_says_as_data(
    value: dict[str, Any], problem: Problem | None
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "account": {"type": "string", "minLength": 1, "maxLength": 40},
            "percent": {"type": "number", "minimum": 0, "maximum": 50, "multipleOf": 5},
            "codes": {"type": "array", "items": {"type": "integer"}},
            "channel": {"enum": ["email", "sms"]},
            "plan": {"const": "basic"},
            "region": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "note": {"type": "string"},
            "tags": {"type": "array", "minItems": 1, "maxItems": 3, "uniqueItems": True},
            "segment": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 100},
            "either": {"not": {"type": "integer"}},
        },
        "required": ["account", "percent"],
        "additionalProperties": False,
    }
    assert input_problem(schema, value) == problem


def test_a_field_no_schema_lists_is_named_as_one_the_tool_does_not_take() -> None:
    closed = {"type": "object", "additionalProperties": False}
    assert input_problem(closed, {"note": "x"}) == Problem(ProblemCode.FIELD_NOT_TAKEN, "input.note")


def test_a_format_a_validator_checks_is_named_as_data() -> None:
    schema = {"type": "object", "properties": {"day": {"type": "string", "format": "date"}}}

    def checking_formats(schema_json: str) -> Any:
        return jsonschema.Draft202012Validator(
            json.loads(schema_json), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )

    problem = input_problem(schema, {"day": "someday"}, checking_formats)  # type: ignore[arg-type]
    assert problem == Problem(ProblemCode.FORMAT, "input.day", value="someday", format="date")


def test_a_schema_the_server_got_wrong_is_named_as_the_server_s_problem_and_no_remote_schema_is_fetched() -> None:
    broken = input_problem({"type": "objet"}, {})
    assert broken is not None
    assert (broken.code, broken.path) == (ProblemCode.SCHEMA_UNREADABLE, "inputSchema")
    remote = {"type": "object", "properties": {"a": {"$ref": "https://schemas.example/a.json"}}}
    assert input_problem(remote, {"a": 1}) == Problem(
        ProblemCode.SCHEMA_UNUSABLE, "inputSchema", reason="Unresolvable: https://schemas.example/a.json"
    )
