"""The model's tool calls pass the policy engine: stopped, held for approval, or run; and always logged."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.governance import check_tool_call
from bot.llm import Assistant
from bot.operations import Caller, Context, default_registry
from planner.approvals import Approvals
from planner.decisions import DecisionLog
from planner.model import Window
from planner.policy import PolicySets
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
    clock.now = datetime(2026, 2, 10, 9, tzinfo=UTC)
    window = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))
    tenant = store.tenant(TENANT)
    master = await tenant.create_master_plan(title="Q1", owner="aad-lead", window=window, actor="aad-lead")
    await tenant.create_tactical_plan(master.id, title="Launch", owner="aad-lead", window=window, actor="x")
    await PolicySets(store, TENANT).load(RULES, actor="aad-admin")
    log = DecisionLog(store, TENANT)
    caller = Caller(tenant_id=TENANT, user_id="aad-writer", name="Content Writer")
    return Context(store, caller, clock=clock, record=log.record)


async def test_a_forbidden_tool_call_is_stopped_with_its_reason_and_logged(store: Store, clock: FakeClock) -> None:
    context = await setting(store, clock)
    reply = await check_tool_call(context, "set_task_status", {"task": "T1", "status": "blocked"})
    assert reply is not None
    assert not reply.ok
    assert "Only people block tasks" in reply.text
    [entry] = await DecisionLog(store, TENANT).entries()
    assert (entry.actor, entry.verdict, entry.rules) == ("policy", "stop", ("no-llm-blocking",))
    assert await check_tool_call(context, "set_task_status", {"task": "T1", "status": "done"}) is None


async def test_a_flagged_tool_call_waits_for_an_approver_and_runs_once_approved(store: Store, clock: FakeClock) -> None:
    context = await setting(store, clock)
    approvals = Approvals(store, TENANT)
    await approvals.approvers.assign("leader", "aad-lead", actor="aad-admin")
    args = {"title": "Draft launch email", "due": "2026-02-20"}
    reply = await check_tool_call(context, "add_task", args)
    assert reply is not None
    assert "I asked for it as A1" in reply.text
    assert await store.tenant(TENANT).tasks_due(date(2026, 2, 1), date(2026, 2, 28)) == []  # nothing ran yet
    [request] = await approvals.pending("aad-lead")
    assert request.resume == {"operation": "add_task", "args": args}


def test_injected_text_cannot_reach_approval_or_admin_operations() -> None:
    assistant = Assistant(None, default_registry(), model="m")  # type: ignore[arg-type]
    offered = {tool["name"] for tool in assistant.tools}
    assert not offered & {"approve_request", "reject_request", "register_adapter", "delegate_task", "load_policy"}


async def test_an_approved_tool_call_nobody_took_up_runs_once_at_the_next_tick_and_its_requester_hears(
    store: Store, clock: FakeClock
) -> None:
    from sqlalchemy import select

    from bot.scheduler import tick
    from bot.server import create_adapter
    from bot.settings import Settings
    from bot.teams import ChiefOfStaffBot
    from planner.approvals import ApprovalStatus
    from planner.schema import outbox

    context = await setting(store, clock)
    approvals = Approvals(store, TENANT)
    await approvals.approvers.assign("leader", "aad-lead", actor="aad-admin")
    args = {"title": "Draft launch email", "due": "2026-02-20"}
    assert await check_tool_call(context, "add_task", args) is not None
    [request] = await approvals.pending("aad-lead")
    # Approved in Teams by a replica that stopped before it ran the operation.
    await approvals.decide(request.id, approver="aad-lead", approve=True, authenticated=True)
    bot = ChiefOfStaffBot(store, Settings.from_env({}), clock=clock)
    adapter = create_adapter(Settings.from_env({}))
    for _ in range(2):
        await tick(store, adapter, app_id=None, at=clock.now, resume=bot.resume_approved)
    [task] = await store.tenant(TENANT).tasks_due(date(2026, 2, 1), date(2026, 2, 28))
    assert task.title == "Draft launch email"
    assert (await approvals.get(request.id)).status is ApprovalStatus.RESUMED
    async with store.engine.connect() as conn:
        notices = (await conn.execute(select(outbox).where(outbox.c.kind == "notice"))).all()
    assert [(n.recipient, n.payload["text"].split(":")[0]) for n in notices] == [
        ("aad-writer", f"{request.ref} was approved, and what it held has now run")
    ]
