"""The decision log: one hash chain per tenant that shows any edit, deletion or reordering, read back by subject."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from planner.decisions import (
    GENESIS,
    BreakKind,
    Decision,
    DecisionLog,
    DecisionNotFound,
    canonical_json,
    data_hash,
    entry_hash,
    explain,
    export,
    verify,
)
from planner.errors import InvalidValue, TenantMismatch
from planner.governance import DecisionRecord
from planner.model import Window
from planner.schema import delegations
from planner.store import Store
from tests.conftest import Database, FakeClock

TENANT = "contoso"


def stopped_email(task: int = 12, **changes: Any) -> DecisionRecord:
    values: dict[str, Any] = {
        "tenant_id": TENANT,
        "actor": "policy",
        "action": "delegation.checked",
        "subject": f"task:{task}",
        "verdict": "stop",
        "rationale": "a support ticket was opened 5 hours earlier",
        "data": {"agent": "hubspot", "capability": "send_email", "facts": ["fact:ticket:acme:77"]},
        "rules": ("no-outbound-during-ticket",),
    }
    return DecisionRecord(**(values | changes))


async def log_three(store: Store, clock: FakeClock) -> DecisionLog:
    log = DecisionLog(store, TENANT)
    for verdict in ("go", "stop", "go"):
        await log.record(stopped_email(verdict=verdict))
        clock.advance(minutes=5)
    return log


async def tamper(store: Store, *statements: str, **params: Any) -> None:
    """Change the table behind the log's back (on PostgreSQL as a superuser who switches the trigger off)."""
    async with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            await conn.execute(text(statement), params)


async def test_each_entry_links_to_the_one_before_in_its_tenants_chain(store: Store, clock: FakeClock) -> None:
    log = await log_three(store, clock)
    other = await DecisionLog(store, "fabrikam").record(stopped_email(tenant_id="fabrikam"))
    first, second, third = await log.entries()
    assert [e.seq for e in (first, second, third)] == [1, 2, 3]
    assert first.prev_hash == GENESIS
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert other.seq == 1
    assert other.prev_hash == GENESIS
    assert second.at == datetime(2026, 1, 5, 9, 5, tzinfo=UTC)
    assert first.data_hash == data_hash(first.data)
    assert all(entry_hash(e) == e.hash for e in (first, second, third))
    assert first.rules == ("no-outbound-during-ticket",)
    report = await verify(store)
    assert report.ok
    assert {(c.tenant_id, c.entries, c.head_hash) for c in report.chains} == {
        (TENANT, 3, third.hash),
        ("fabrikam", 1, other.hash),
    }


async def test_verify_finds_an_edited_rationale(store: Store, clock: FakeClock) -> None:
    await log_three(store, clock)
    await tamper(store, "UPDATE decisions SET rationale = 'all fine' WHERE seq = 2")
    report = await verify(store, TENANT)
    [broken] = report.broken
    assert not report.ok
    assert (broken.seq, broken.kind) == (2, BreakKind.EDITED)
    assert "no longer matches its hash" in str(broken)


async def test_verify_finds_changed_data(store: Store, clock: FakeClock) -> None:
    await log_three(store, clock)
    await tamper(store, """UPDATE decisions SET data = '{"agent": "salesforce"}' WHERE seq = 1""")
    [broken] = (await verify(store)).broken
    assert (broken.seq, broken.kind) == (1, BreakKind.EDITED)
    assert "data" in broken.detail


async def test_verify_finds_an_entry_rewritten_with_a_fresh_hash(store: Store, clock: FakeClock) -> None:
    log = await log_three(store, clock)
    forged = replace(await log.get(2), rationale="approved by everyone")
    await tamper(
        store,
        "UPDATE decisions SET rationale = :rationale, hash = :hash WHERE seq = 2",
        rationale=forged.rationale,
        hash=entry_hash(forged),
    )
    [broken] = (await verify(store)).broken
    assert (broken.seq, broken.kind) == (2, BreakKind.EDITED)
    assert "entry 3 recorded its hash" in broken.detail


async def test_verify_finds_a_deleted_entry_in_the_middle_and_at_the_end(store: Store, clock: FakeClock) -> None:
    await log_three(store, clock)
    await tamper(store, "DELETE FROM decisions WHERE seq = 2")
    [broken] = (await verify(store)).broken
    assert (broken.seq, broken.kind) == (2, BreakKind.DELETED)
    assert broken.detail == "entry 2 is missing"

    await tamper(store, "DELETE FROM decisions WHERE seq = 3")
    [broken] = (await verify(store)).broken
    assert (broken.seq, broken.kind) == (2, BreakKind.DELETED)
    assert broken.detail == "entries 2 to 3 are missing from the end"


async def test_verify_finds_the_last_entry_deleted(store: Store, clock: FakeClock) -> None:
    await log_three(store, clock)
    await tamper(store, "DELETE FROM decisions WHERE seq = 3")
    [broken] = (await verify(store)).broken
    assert (broken.seq, broken.kind) == (3, BreakKind.DELETED)


async def test_verify_finds_two_entries_swapped(store: Store, clock: FakeClock) -> None:
    await log_three(store, clock)
    await tamper(
        store,
        "UPDATE decisions SET seq = -2 WHERE seq = 2",
        "UPDATE decisions SET seq = 2 WHERE seq = 3",
        "UPDATE decisions SET seq = 3 WHERE seq = -2",
    )
    [broken] = (await verify(store)).broken
    assert (broken.seq, broken.kind) == (2, BreakKind.REORDERED)
    assert "logged as entry 3" in broken.detail


async def test_postgresql_refuses_to_change_or_remove_an_entry(store: Store, clock: FakeClock) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    await log_three(store, clock)
    for statement in ("UPDATE decisions SET rationale = 'x'", "DELETE FROM decisions", "TRUNCATE decisions"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with store.engine.begin() as conn:
                await conn.execute(text(statement))
    assert (await verify(store)).ok


async def test_appends_keep_one_chain_when_they_race(store: Store, database: Database) -> None:
    if database.backend == "postgresql":
        replicas = [Store(database.engine(), clock=store.clock) for _ in range(3)]
    else:  # SQLite serves one process: its writers queue on the store's lock
        replicas = [store] * 3

    async def append(replica: Store, n: int) -> list[Decision]:
        log = DecisionLog(replica, TENANT)
        return [await log.record(stopped_email(task=n * 100 + i)) for i in range(10)]

    try:
        written = await asyncio.gather(*(append(replica, n) for n, replica in enumerate(replicas)))
    finally:
        for replica in replicas:
            if replica is not store:
                await replica.close()
    entries = await DecisionLog(store, TENANT).entries()
    assert [e.seq for e in entries] == list(range(1, 31))
    assert sorted(e.seq for batch in written for e in batch) == list(range(1, 31))
    assert len({e.prev_hash for e in entries}) == 30
    assert (await verify(store)).ok


async def plan_with_a_task(store: Store) -> tuple[int, int, int]:
    """(master plan id, tactical plan id, task id)."""
    plans = store.tenant(TENANT)
    window = Window(start=date(2026, 1, 1), end=date(2026, 3, 31))
    master = await plans.create_master_plan(title="Q1", owner="aad-lead", window=window, actor="aad-lead")
    tactical = await plans.create_tactical_plan(
        master.id, title="Launch", owner="aad-lead", window=window, actor="aad-lead"
    )
    task = await plans.add_task(tactical.id, title="Send the launch email", due_on=date(2026, 2, 1), actor="aad-lead")
    return master.id, tactical.id, task.id


async def delegation_of(store: Store, task_id: int) -> int:
    async with store.transaction() as conn:
        result = await conn.execute(
            insert(delegations).values(
                tenant_id=TENANT,
                task_id=task_id,
                adapter="hubspot",
                adapter_kind="mcp",
                capability="send_email",
                input={},
                timeout_seconds=60,
                actor="aad-lead",
                status="queued",
                queued_at=store.clock(),
                attempts=0,
            )
        )
    return int(result.inserted_primary_key[0])


async def test_about_finds_a_tasks_decisions_and_its_delegations_newest_first(store: Store, clock: FakeClock) -> None:
    master, tactical, task = await plan_with_a_task(store)
    delegation = await delegation_of(store, task)
    log = DecisionLog(store, TENANT)
    direct = await log.record(stopped_email(task=task))
    clock.advance(hours=1)
    via_delegation = await log.record(
        DecisionRecord(
            tenant_id=TENANT,
            actor="agent:hubspot",
            action="delegation.run",
            subject=f"delegation:{delegation}",
            verdict="done",
            rationale="sent to 1,200 contacts",
        )
    )
    await log.record(stopped_email(task=task + 1))
    assert f"task:{task}" in via_delegation.refs
    assert {f"plan:{master}", f"plan:{tactical}", "agent:hubspot"} <= set(via_delegation.refs)
    assert [e.seq for e in await log.about(f"task:{task}")] == [via_delegation.seq, direct.seq]
    assert [e.seq for e in await log.about(f"delegation:{delegation}")] == [via_delegation.seq]
    assert [e.seq for e in await log.about("fact:ticket:acme:77")] == [3, 1]
    assert await DecisionLog(store, "fabrikam").about(f"task:{task}") == []
    assert (await log.get(2)).actor == "agent:hubspot"
    with pytest.raises(DecisionNotFound, match="No decision 9"):
        await log.get(9)


async def export_text(entries: AsyncIterator[Decision], fmt: Any = "jsonl") -> str:
    out = io.StringIO()
    await export(entries, out, fmt)
    return out.getvalue()


async def test_export_filters_by_time_agent_plan_and_verdict(store: Store, clock: FakeClock) -> None:
    master, tactical, task = await plan_with_a_task(store)
    log = DecisionLog(store, TENANT)
    await log.record(stopped_email(task=task))  # 1: hubspot, stop, in the plan, 09:00
    clock.advance(days=1)
    await log.record(  # 2: salesforce, go, no plan, next day
        stopped_email(task=999, verdict="go", data={"agent": "salesforce", "capability": "update_lead"}, rules=())
    )
    clock.advance(days=1)
    await log.record(  # 3: a person approves, in the plan, approval 4
        stopped_email(task=task, actor="aad-lead", action="approval.decided", verdict="approved", approval_id=4)
    )

    async def seqs(**filters: Any) -> list[int]:
        lines = (await export_text(log.stream(**filters))).splitlines()
        return [json.loads(line)["seq"] for line in lines]

    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert await seqs() == [1, 2, 3]
    assert await seqs(since=start + timedelta(hours=1)) == [2, 3]
    assert await seqs(until=start + timedelta(days=1)) == [1]
    assert await seqs(agent="hubspot") == [1, 3]
    assert await seqs(agent="salesforce") == [2]
    assert await seqs(plan=master) == [1, 3]
    assert await seqs(plan=tactical, verdict="approved") == [3]
    assert await seqs(verdict="stop") == [1]
    assert await seqs(actor="aad-lead") == [3]
    assert await seqs(subject_prefix="task:99") == [2]
    assert [e.seq for e in await log.entries(limit=2, newest_first=True)] == [3, 2]

    [line] = (await export_text(log.stream(verdict="approved"))).splitlines()
    exported = json.loads(line)
    assert exported["approval_id"] == 4
    assert exported["at"] == "2026-01-07T09:00:00.000000+00:00"
    assert exported["data_hash"] == data_hash(exported["data"])

    rows = list(csv.DictReader(io.StringIO(await export_text(log.stream(), "csv"))))
    assert [r["seq"] for r in rows] == ["1", "2", "3"]
    assert json.loads(rows[0]["rules"]) == ["no-outbound-during-ticket"]
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert canonical_json(json.loads(rows[0]["data"])) == rows[0]["data"]


async def test_a_stopped_action_is_explained_in_plain_words(store: Store, clock: FakeClock) -> None:
    clock.now = datetime(2026, 2, 10, 9, tzinfo=UTC)
    log = DecisionLog(store, TENANT)
    stopped = await log.record(stopped_email())
    assert explain(stopped) == (
        "On 2026-02-10 at 09:00 UTC, the policy engine stopped agent hubspot's send_email for task T12: "
        "rule no-outbound-during-ticket matched (a support ticket was opened 5 hours earlier). Approval: none."
    )
    approved = await log.record(
        DecisionRecord(
            tenant_id=TENANT,
            actor="aad-lead",
            action="approval.decided",
            subject="delegation:5",
            verdict="approved",
            rationale="The discount is within the quarter's budget.",
            approval_id=3,
            at=datetime(2026, 2, 10, 10, 30, tzinfo=UTC),
        )
    )
    assert explain(approved, names={"aad-lead": "Marketing lead"}) == (
        "On 2026-02-10 at 10:30 UTC, Marketing lead approved the approval request for delegation D5: "
        "The discount is within the quarter's budget. Approval: request A3."
    )
    done = await log.record(
        DecisionRecord(
            tenant_id=TENANT,
            actor="agent:hubspot",
            action="delegation.run",
            subject="task:12",
            verdict="failed",
            rationale="",
        )
    )
    assert explain(done).endswith("agent hubspot tried the delegation for task T12, which failed. Approval: none.")


async def test_the_approval_gates_decisions_read_as_sentences_too(store: Store, clock: FakeClock) -> None:
    clock.now = datetime(2026, 2, 10, 9, tzinfo=UTC)
    log = DecisionLog(store, TENANT)
    asked = await log.record(
        DecisionRecord(
            tenant_id=TENANT,
            actor="agent:hubspot",
            action="approval.requested",
            subject="task:12",
            verdict="flag",
            rationale="brand-critical creative needs the brand team",
            data={"approval": 3, "action": {"agent": "hubspot", "name": "send_email"}},
            rules=("gate:brand_creative",),
            approval_id=3,
        )
    )
    assert explain(asked) == (
        "On 2026-02-10 at 09:00 UTC, agent hubspot asked a person to approve send_email for task T12: "
        "rule gate:brand_creative matched (brand-critical creative needs the brand team). Approval: request A3."
    )
    assert "approval:3" in asked.refs
    assigned = await log.record(
        DecisionRecord(
            tenant_id=TENANT,
            actor="aad-admin",
            action="approvers.assigned",
            subject="role:legal",
            verdict="done",
            rationale="aad-counsel may now approve what needs the legal role.",
            data={"role": "legal", "user": "aad-counsel"},
        )
    )
    assert explain(assigned) == (
        "On 2026-02-10 at 09:00 UTC, aad-admin assigned approvers for role legal: "
        "aad-counsel may now approve what needs the legal role. Approval: none."
    )


async def test_the_log_refuses_what_it_cannot_keep_faithfully(store: Store) -> None:
    log = DecisionLog(store, TENANT)
    with pytest.raises(TenantMismatch):
        await log.record(stopped_email(tenant_id="fabrikam"))
    with pytest.raises(InvalidValue, match="plain JSON"):
        await log.record(stopped_email(data={"when": datetime(2026, 1, 1, tzinfo=UTC)}))
    with pytest.raises(InvalidValue, match="time zone"):
        await log.record(stopped_email(at=datetime(2026, 1, 1)))
    with pytest.raises(InvalidValue, match="verdict"):
        await log.record(stopped_email(verdict=" "))
    assert await log.entries() == []
    assert (await verify(store)).ok


async def test_decisions_commit_with_the_callers_change(store: Store) -> None:
    log = DecisionLog(store, TENANT)

    async def change_that_fails() -> None:
        async with store.transaction() as conn:
            await log.record(stopped_email(), conn=conn)
            raise RuntimeError("change failed")

    with pytest.raises(RuntimeError, match="change failed"):
        await change_that_fails()
    assert await log.entries() == []
    async with store.transaction() as conn:
        entry = await log.record(stopped_email(), conn=conn)
    assert entry.seq == 1
    assert (await verify(store)).ok
