"""Every operation passes one policy gate, whoever asks: stopped, held for approval, or run; the model's calls logged
as the model's, on behalf of the person who asked."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from bot.llm import Assistant
from bot.operations import Caller, Context, default_registry
from bot.operations.base import ASSISTANT
from planner.domain.governance import DecisionRecord
from planner.domain.model import MetricSpec, Window
from planner.services.approvals import Approvals
from planner.services.decisions import DecisionLog
from planner.services.plans import Plans
from planner.services.policy import PolicySets
from planner.services.tenants import Tenants
from planner.store import Store
from tests.conftest import FakeClock

TENANT = "contoso"
RULES = {
    "rules": [
        {
            "id": "no-llm-blocking",
            "description": "Only people block tasks",
            "effect": "forbid",
            "kinds": ["tool_call"],
            "actions": ["set_task_status"],
            "when": {"attributes": {"status": "blocked"}},
        },
        {
            "id": "llm-tasks-checked",
            "description": "Tasks the assistant adds are checked by a leader",
            "effect": "require",
            "kinds": ["tool_call"],
            "actions": ["add_task"],
        },
    ]
}


async def setting(store: Store, clock: FakeClock) -> Context:
    """The person's context; `as_model` turns it into the model's, acting for them."""
    clock.now = datetime(2026, 2, 10, 9, tzinfo=UTC)
    window = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))
    tenant = Plans(store, TENANT)
    master = await tenant.create_master_plan(title="Q1", owner="aad-lead", window=window, actor="aad-lead")
    tactical = await tenant.create_tactical_plan(master.id, title="Launch", owner="aad-lead", window=window, actor="x")
    await tenant.add_task(tactical.id, title="Brief", due_on=date(2026, 2, 12), owner="aad-writer", actor="x")
    await PolicySets(store, TENANT).load(RULES, actor="aad-admin")
    log = DecisionLog(store, TENANT)
    caller = Caller(tenant_id=TENANT, user_id="aad-writer", name="Content Writer")
    return Context(Tenants(store), caller, clock=clock, record=log.record)


def as_model(context: Context) -> Context:
    return context.acting_as(replace(context.caller, via=ASSISTANT, model="claude-test"))


async def test_a_forbidden_tool_call_is_stopped_with_its_reason_and_logged_as_the_models(
    store: Store, clock: FakeClock
) -> None:
    context = as_model(await setting(store, clock))
    registry = default_registry()
    reply = await registry.run("set_task_status", context, {"task": "T1", "status": "blocked"})
    assert not reply.ok
    assert "Only people block tasks" in reply.text
    [entry] = await DecisionLog(store, TENANT).entries()
    assert (entry.actor, entry.verdict, entry.rules) == ("llm", "stop", ("no-llm-blocking",))
    assert (entry.data["on_behalf_of"], entry.data["model"]) == ("aad-writer", "claude-test")
    assert (await Plans(store, TENANT).get_task(1)).status.value == "todo"
    done = await registry.run("set_task_status", context, {"task": "T1", "status": "done"})
    assert done.ok, done.text
    *_, went = await DecisionLog(store, TENANT).entries()
    assert (went.actor, went.verdict, went.data["on_behalf_of"]) == ("llm", "go", "aad-writer")


async def test_a_flagged_tool_call_waits_for_an_approver_and_is_asked_for_by_the_model_for_the_person(
    store: Store, clock: FakeClock
) -> None:
    context = as_model(await setting(store, clock))
    approvals = Approvals(store, TENANT)
    await approvals.approvers.assign("leader", "aad-lead", actor="aad-admin")
    args = {"title": "Draft launch email", "due": "2026-02-20"}
    reply = await default_registry().run("add_task", context, args)
    assert "I asked for it as A1" in reply.text
    assert [t.title for t in await Plans(store, TENANT).tasks_due(date(2026, 2, 1), date(2026, 2, 28))] == ["Brief"]
    [request] = await approvals.pending("aad-lead")
    assert request.resume == {"operation": "add_task", "args": args, "via": "assistant"}
    assert (request.requester, request.action.actor, request.action.on_behalf_of) == ("aad-writer", "llm", "aad-writer")
    held, asked = await DecisionLog(store, TENANT).entries()
    assert (held.actor, held.verdict, held.data["on_behalf_of"]) == ("llm", "flag", "aad-writer")
    assert (asked.action, asked.actor, asked.data["on_behalf_of"]) == ("approval.requested", "llm", "aad-writer")


async def test_what_an_operation_records_for_the_model_is_written_as_the_models_on_behalf_of_the_person(
    store: Store, clock: FakeClock
) -> None:
    context = as_model(await setting(store, clock))
    assert context.record is not None
    entry = DecisionRecord(
        tenant_id=TENANT, actor="aad-writer", action="task.changed", subject="task:1", verdict="done", rationale="x"
    )
    await context.record(entry)
    [logged] = await DecisionLog(store, TENANT).entries()
    assert (logged.actor, logged.data) == ("llm", {"on_behalf_of": "aad-writer", "model": "claude-test"})


def test_injected_text_cannot_reach_approval_or_admin_operations() -> None:
    assistant = Assistant(None, default_registry(), model="m")  # type: ignore[arg-type]
    offered = {tool["name"] for tool in assistant.tools}
    assert not offered & {"approve_request", "reject_request", "register_adapter", "delegate_task", "load_policy"}


async def test_an_approved_tool_call_nobody_took_up_runs_once_at_the_next_tick_as_its_requester_who_hears(
    store: Store, clock: FakeClock
) -> None:
    from sqlalchemy import select

    from bot.scheduler import tick
    from bot.settings import Settings
    from bot.teams.botbuilder import BotbuilderChannel, create_adapter
    from bot.teams.handler import ChiefOfStaffBot
    from planner.domain.approvals import ApprovalStatus
    from planner.store.schema import outbox

    context = as_model(await setting(store, clock))
    approvals = Approvals(store, TENANT)
    await approvals.approvers.assign("leader", "aad-lead", actor="aad-admin")
    args = {"title": "Draft launch email", "due": "2026-02-20", "owner": "me"}
    assert "A1" in (await default_registry().run("add_task", context, args)).text
    [request] = await approvals.pending("aad-lead")
    # Approved in Teams by a replica that stopped before it ran the operation.
    await approvals.decide(request.id, approver="aad-lead", approve=True, authenticated=True)
    bot = ChiefOfStaffBot(store, Settings.from_env({}), clock=clock)
    adapter = create_adapter(Settings.from_env({}))
    for _ in range(2):
        await tick(store, BotbuilderChannel(adapter), at=clock.now, resume=bot.resume_approved)
    tasks = await Plans(store, TENANT).tasks_due(date(2026, 2, 1), date(2026, 2, 28))
    [task] = [t for t in tasks if t.title == "Draft launch email"]
    assert task.owner == "aad-writer"  # "me" is the person who asked, not the approver
    assert (await approvals.get(request.id)).status is ApprovalStatus.RESUMED
    async with store.engine.connect() as conn:
        notices = (await conn.execute(select(outbox).where(outbox.c.kind == "notice"))).all()
    assert [(n.recipient, n.payload["text"].split(":")[0]) for n in notices] == [
        ("aad-writer", f"{request.ref} was approved, and what it held has now run")
    ]


async def test_the_model_taking_back_a_change_of_goals_waits_for_the_leader_and_the_leader_in_person_does_not(
    store: Store, clock: FakeClock
) -> None:
    clock.now = datetime(2026, 2, 10, 9, tzinfo=UTC)
    tenant = Plans(store, TENANT)
    window = Window(start=date(2026, 1, 1), end=date(2026, 3, 31))
    await tenant.create_master_plan(
        title="Q1", owner="aad-lead", window=window, metrics=[MetricSpec(name="SQLs", target=500)], actor="aad-lead"
    )
    leader = Context(Tenants(store), Caller(tenant_id=TENANT, user_id="aad-lead", name="Lead"), clock=clock)
    registry = default_registry()
    changed = await registry.run("edit_master_plan", leader, {"targets": [{"name": "SQLs", "target": 600}]})
    assert "P1 changed: SQLs target 600" in changed.text
    held = await registry.run("restore_task", as_model(leader), {})
    assert "I asked for it as A1" in held.text
    assert (await tenant.list_metrics(1))[0].target == 600
    undone = await registry.run("restore_task", leader, {})
    assert "Undone: P1 is as it was before your change (SQLs target 500)" in undone.text
    assert (await tenant.list_metrics(1))[0].target == 500
