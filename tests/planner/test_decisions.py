"""The decision log: one signed chain per tenant that shows any edit, deletion or reordering, even by someone who can
write the database, held to a signed checkpoint kept outside it; read back by subject."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from bot.text.decisions import explain
from planner.domain.decisions import (
    GENESIS,
    BreakCode,
    BreakKind,
    ChainLinks,
    ChainReport,
    CheckpointFlaw,
    Decision,
    DecisionKeys,
    DecisionNotFound,
    NoDecisionKeys,
    canonical_json,
    chained_entry,
    check_record,
    data_hash,
    entry_hash,
    verify_chain,
)
from planner.domain.errors import Expected, InvalidValue, TenantMismatch
from planner.domain.governance import DecisionRecord
from planner.domain.model import Window
from planner.domain.problems import Problem, ProblemCode
from planner.services.decisions import (
    CheckpointInvalid,
    CheckpointRefused,
    DecisionLog,
    checkpoint,
    export,
    read_checkpoint,
    verify,
)
from planner.services.plans import Plans
from planner.store import Store
from planner.store.schema import delegations
from planner.store.vault import Vault
from tests.conftest import Database, FakeClock
from tests.saying import raises_saying

TENANT = "contoso"
SECRET_KEY = Vault.generate_key()
"""As COS_SECRET_KEYS would hold it."""
KEYS = DecisionKeys.from_vault(Vault([SECRET_KEY]))
README = Path(__file__).parents[2] / "README.md"


@pytest.fixture
async def store(database: Database, clock: FakeClock) -> AsyncIterator[Store]:
    """A store on each backend whose decision log is signed, as the bot's is."""
    store = Store(database.engine(), clock=clock, decision_keys=KEYS)
    yield store
    await store.close()


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
    assert all(entry_hash(e, KEYS) == e.hash for e in (first, second, third))
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
    assert str(broken) == "tenant contoso: entry 2 edited: not_its_signature"  # for logs; the bot words it


async def test_verify_finds_changed_data(store: Store, clock: FakeClock) -> None:
    await log_three(store, clock)
    await tamper(store, """UPDATE decisions SET data = '{"agent": "salesforce"}' WHERE seq = 1""")
    [broken] = (await verify(store)).broken
    assert (broken.seq, broken.kind) == (1, BreakKind.EDITED)
    assert (broken.why, broken.details) == (BreakCode.DATA_CHANGED, {})


async def test_verify_finds_an_entry_re_signed_by_someone_with_the_key(store: Store, clock: FakeClock) -> None:
    log = await log_three(store, clock)
    forged = replace(await log.get(2), rationale="approved by everyone")
    await tamper(
        store,
        "UPDATE decisions SET rationale = :rationale, hash = :hash WHERE seq = 2",
        rationale=forged.rationale,
        hash=entry_hash(forged, KEYS),
    )
    [broken] = (await verify(store)).broken
    assert (broken.seq, broken.kind) == (2, BreakKind.EDITED)
    assert (broken.why, broken.details) == (BreakCode.REWRITTEN_BEFORE, {"next": 3})


async def test_verify_finds_a_deleted_entry_in_the_middle_and_at_the_end(store: Store, clock: FakeClock) -> None:
    await log_three(store, clock)
    await tamper(store, "DELETE FROM decisions WHERE seq = 2")
    [broken] = (await verify(store)).broken
    assert (broken.seq, broken.kind) == (2, BreakKind.DELETED)
    assert (broken.why, broken.details) == (BreakCode.MISSING, {"first": 2, "last": 2})

    await tamper(store, "DELETE FROM decisions WHERE seq = 3")
    [broken] = (await verify(store)).broken
    assert (broken.seq, broken.kind) == (2, BreakKind.DELETED)
    assert (broken.why, broken.details) == (BreakCode.MISSING_FROM_END, {"first": 2, "last": 3})


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
    assert (broken.why, broken.details) == (BreakCode.MOVED, {"logged_as": 3})


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
        replicas = [Store(database.engine(), clock=store.clock, decision_keys=KEYS) for _ in range(3)]
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
    plans = Plans(store, TENANT)
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
    with raises_saying(DecisionNotFound, "No decision 9"):
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
    with pytest.raises(InvalidValue) as refused:
        await log.record(stopped_email(data={"when": datetime(2026, 1, 1, tzinfo=UTC)}))
    assert refused.value.expected is Expected.JSON_OBJECT
    with pytest.raises(InvalidValue) as refused:
        await log.record(stopped_email(at=datetime(2026, 1, 1)))
    assert refused.value.expected is Expected.TIME_WITH_ZONE
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


# ---- signatures and checkpoints: what someone who can write the database, but lacks the key, tries ---------------


def old_hash(entry: Decision) -> str:
    """The hash the log computed before it was keyed: a plain SHA-256 of its fields' canonical JSON."""
    fields = entry.hashed_fields()
    fields.pop("key_id", None)
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


async def rehash_from(store: Store, seq: int, *, unsign: bool = False) -> None:
    """Re-hash every entry from `seq` on as the old code did, relink the chain and move the head to match (and
    with `unsign`, pass the entries off as logged before the log was keyed)."""
    entries = await DecisionLog(store, TENANT).entries()
    prev_hash = entries[seq - 2].hash if seq > 1 else GENESIS
    for entry in entries[seq - 1 :]:
        entry = replace(entry, prev_hash=prev_hash, key_id=None if unsign else entry.key_id)
        prev_hash = old_hash(entry)
        await tamper(
            store,
            "UPDATE decisions SET prev_hash = :prev, hash = :hash, key_id = :key WHERE tenant_id = :t AND seq = :seq",
            prev=entry.prev_hash,
            hash=prev_hash,
            key=entry.key_id,
            t=TENANT,
            seq=entry.seq,
        )
    await tamper(
        store,
        "UPDATE decision_heads SET hash = :hash, key_id = :key WHERE tenant_id = :t",
        hash=prev_hash,
        key=None if unsign else KEYS.signing_id,
        t=TENANT,
    )


async def test_each_entry_is_signed_with_the_newest_key_and_names_it(store: Store, clock: FakeClock) -> None:
    log = await log_three(store, clock)
    first, *_ = await log.entries()
    assert first.key_id == KEYS.signing_id
    assert first.hash == KEYS.sign(canonical_json(first.hashed_fields()))
    assert first.hash != old_hash(first)
    assert first.as_json()["key_id"] == KEYS.signing_id
    assert "hidden" in repr(KEYS)


async def test_verify_finds_an_edit_hidden_by_re_hashing_the_chain_with_plain_sha256(
    store: Store, clock: FakeClock
) -> None:
    await log_three(store, clock)
    await tamper(store, "UPDATE decisions SET rationale = 'all fine' WHERE seq = 2")
    await rehash_from(store, 2)
    [broken] = (await verify(store)).broken
    assert (broken.tenant_id, broken.seq, broken.kind) == (TENANT, 2, BreakKind.EDITED)
    assert broken.why is BreakCode.NOT_ITS_SIGNATURE


async def test_verify_finds_entries_passed_off_as_unsigned_after_signed_ones(store: Store, clock: FakeClock) -> None:
    await log_three(store, clock)
    await tamper(store, "UPDATE decisions SET verdict = 'go' WHERE seq = 2")
    await rehash_from(store, 2, unsign=True)
    [broken] = (await verify(store)).broken
    assert (broken.seq, broken.kind) == (2, BreakKind.EDITED)
    assert broken.why is BreakCode.UNSIGNED_AFTER_SIGNED


async def test_a_checkpoint_shows_the_tail_deleted_and_the_head_moved_back(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    log = await log_three(store, clock)
    saved = await checkpoint(store, tmp_path / "checkpoints.json")
    assert (saved.heads[TENANT].seq, saved.heads[TENANT].count) == (3, 3)
    second = await log.get(2)
    await tamper(
        store,
        "DELETE FROM decisions WHERE seq = 3",
        "UPDATE decision_heads SET seq = 2, hash = :hash WHERE tenant_id = :t",
        hash=second.hash,
        t=TENANT,
    )
    assert (await verify(store)).ok  # the database alone cannot show it
    report = await verify(store, checkpoint=read_checkpoint(tmp_path / "checkpoints.json", KEYS))
    [broken] = report.broken
    assert (broken.tenant_id, broken.seq, broken.kind) == (TENANT, 3, BreakKind.DELETED)
    assert (broken.why, broken.details) == (
        BreakCode.HEAD_MOVED_BACK,
        {"first": 3, "last": 3, "head": 2, "checkpoint_at": saved.written_at},
    )


async def test_a_checkpoint_shows_the_tail_replaced_after_it_was_cut_off(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    log = await log_three(store, clock)
    await checkpoint(store, tmp_path / "checkpoints.json")
    second = await log.get(2)
    await tamper(
        store,
        "DELETE FROM decisions WHERE seq = 3",
        "DELETE FROM decision_refs WHERE seq = 3",
        "UPDATE decision_heads SET seq = 2, hash = :hash WHERE tenant_id = :t",
        hash=second.hash,
        t=TENANT,
    )
    await log.record(stopped_email(verdict="approved"))  # the bot appends on, with a valid signature
    [broken] = (await verify(store, checkpoint=read_checkpoint(tmp_path / "checkpoints.json", KEYS))).broken
    assert (broken.seq, broken.kind) == (3, BreakKind.EDITED)
    assert broken.why is BreakCode.NOT_AS_CHECKPOINTED


async def test_a_checkpoint_shows_a_tenants_entries_and_head_removed_together(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    await log_three(store, clock)
    await DecisionLog(store, "fabrikam").record(stopped_email(tenant_id="fabrikam"))
    await checkpoint(store, tmp_path / "checkpoints.json")
    await tamper(
        store,
        "DELETE FROM decisions WHERE tenant_id = :t",
        "DELETE FROM decision_refs WHERE tenant_id = :t",
        "DELETE FROM decision_heads WHERE tenant_id = :t",
        t=TENANT,
    )
    assert (await verify(store)).ok
    report = await verify(store, checkpoint=read_checkpoint(tmp_path / "checkpoints.json", KEYS))
    [broken] = report.broken
    assert (broken.tenant_id, broken.seq, broken.kind) == (TENANT, 1, BreakKind.DELETED)
    assert (broken.why, broken.details["last"]) == (BreakCode.LOG_GONE, 3)
    assert [(chain.tenant_id, chain.ok) for chain in report.chains] == [(TENANT, False), ("fabrikam", True)]


async def test_a_checkpoint_shows_a_whole_chain_rewritten_as_unsigned(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    await log_three(store, clock)
    await checkpoint(store, tmp_path / "checkpoints.json")
    await tamper(store, "UPDATE decisions SET verdict = 'go' WHERE seq = 2")
    await rehash_from(store, 1, unsign=True)
    plain = await verify(store)
    assert plain.ok  # without the checkpoint: three legacy entries
    assert plain.chains[0].legacy == 3
    [broken] = (await verify(store, checkpoint=read_checkpoint(tmp_path / "checkpoints.json", KEYS))).broken
    assert (broken.seq, broken.kind) == (3, BreakKind.EDITED)
    assert broken.why is BreakCode.NOT_AS_CHECKPOINTED


async def test_a_checkpoint_edited_by_hand_fails_its_signature(store: Store, clock: FakeClock, tmp_path: Path) -> None:
    await log_three(store, clock)
    path = tmp_path / "checkpoints.json"
    await checkpoint(store, path)
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text(path.read_text().replace('"seq": 3', '"seq": 2'))
    with pytest.raises(CheckpointInvalid) as edited:
        read_checkpoint(path, KEYS)
    assert (edited.value.path, edited.value.why, edited.value.details) == (path, CheckpointFlaw.SIGNATURE_FAILS, {})
    with pytest.raises(CheckpointInvalid) as unknown:
        read_checkpoint(path, DecisionKeys.from_vault(Vault([Vault.generate_key()])))
    assert (unknown.value.why, unknown.value.details) == (CheckpointFlaw.KEY_NOT_CONFIGURED, {"key": KEYS.signing_id})
    path.write_text("not json")
    with pytest.raises(CheckpointInvalid) as garbled:
        read_checkpoint(path, KEYS)
    assert garbled.value.why is CheckpointFlaw.NOT_A_CHECKPOINT
    assert read_checkpoint(tmp_path / "absent.json", KEYS) is None


async def test_a_checkpoint_is_never_moved_back_to_a_shorter_log(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    log = await log_three(store, clock)
    path = tmp_path / "checkpoints.json"
    await checkpoint(store, path)
    kept = path.read_text()
    second = await log.get(2)
    await tamper(
        store,
        "DELETE FROM decisions WHERE seq = 3",
        "UPDATE decision_heads SET seq = 2, hash = :hash WHERE tenant_id = :t",
        hash=second.hash,
        t=TENANT,
    )
    with pytest.raises(CheckpointRefused) as refused:
        await checkpoint(store, path)
    assert refused.value.problems == [Problem(ProblemCode.LOG_SHORTER, TENANT, end=2, reached=3)]
    assert path.read_text() == kept


async def test_a_checkpoint_is_rewritten_only_when_a_head_moves(store: Store, clock: FakeClock, tmp_path: Path) -> None:
    log = await log_three(store, clock)
    await DecisionLog(store, "fabrikam").record(stopped_email(tenant_id="fabrikam"))
    path = tmp_path / "checkpoints.json"
    first = await checkpoint(store, path)
    clock.advance(minutes=1)
    assert await checkpoint(store, path) == first
    await log.record(stopped_email())
    clock.advance(minutes=1)
    moved = await checkpoint(store, path)
    assert moved.written_at == clock.now
    assert (moved.heads[TENANT].seq, moved.heads[TENANT].at) == (4, clock.now)
    assert moved.heads["fabrikam"] == first.heads["fabrikam"]  # still seen since the first checkpoint
    assert read_checkpoint(path, KEYS) == moved
    keyless = Store(store.engine, clock=clock)
    with raises_saying(NoDecisionKeys, "COS_SECRET_KEYS"):
        await checkpoint(keyless, path)


async def test_entries_signed_before_a_key_rotation_verify_while_the_old_key_is_listed(
    store: Store, clock: FakeClock, database: Database
) -> None:
    await log_three(store, clock)
    new_key = Vault.generate_key()
    rotated = DecisionKeys.from_vault(Vault([new_key, SECRET_KEY]))  # COS_SECRET_KEYS=new,old
    only_new = DecisionKeys.from_vault(Vault([new_key]))
    after = Store(database.engine(), clock=clock, decision_keys=rotated)
    dropped = Store(database.engine(), clock=clock, decision_keys=only_new)
    try:
        entry = await DecisionLog(after, TENANT).record(stopped_email())
        assert entry.key_id == only_new.signing_id != KEYS.signing_id
        assert (await verify(after)).ok
        [broken] = (await verify(dropped)).broken
        assert (broken.seq, broken.kind) == (1, BreakKind.UNKNOWN_KEY)
        assert (broken.why, broken.details) == (BreakCode.KEY_NOT_CONFIGURED, {"key": KEYS.signing_id})
    finally:
        await after.close()
        await dropped.close()


async def test_legacy_unkeyed_entries_are_reported_and_the_first_signed_entry_vouches_for_them(
    store: Store, clock: FakeClock, database: Database
) -> None:
    before_keys = Store(database.engine(), clock=clock)
    try:
        legacy_log = DecisionLog(before_keys, TENANT)
        for verdict in ("go", "stop"):
            entry = await legacy_log.record(stopped_email(verdict=verdict))
            assert entry.key_id is None
            assert entry.hash == old_hash(entry)
        [chain] = (await verify(store)).chains
        assert (chain.ok, chain.legacy, chain.vouched) == (True, 2, False)

        await DecisionLog(store, TENANT).record(stopped_email())
        [chain] = (await verify(store)).chains
        assert (chain.ok, chain.entries, chain.legacy, chain.vouched) == (True, 3, 2, True)
        with pytest.raises(NoDecisionKeys, match="tenant contoso is signed"):
            await legacy_log.record(stopped_email())

        forged = replace(await legacy_log.get(2), verdict="go")
        await tamper(store, "UPDATE decisions SET verdict = 'go', hash = :hash WHERE seq = 2", hash=old_hash(forged))
        [broken] = (await verify(store)).broken
        assert (broken.seq, broken.kind) == (2, BreakKind.EDITED)
        assert (broken.why, broken.details) == (BreakCode.REWRITTEN_BEFORE, {"next": 3})
        await tamper(store, "UPDATE decisions SET prev_hash = :hash WHERE seq = 3", hash=old_hash(forged))
        [broken] = (await verify(store)).broken
        assert (broken.seq, broken.kind) == (3, BreakKind.EDITED)
    finally:
        await before_keys.close()


def readme_sql(marker: str) -> str:
    """The README's SQL block that mentions `marker`, as an operator would paste it."""
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    [block] = [block for block in blocks if marker in block]
    return str(block)


async def test_postgresql_the_bot_role_cannot_drop_the_trigger_once_another_role_owns_the_table(
    store: Store, database: Database
) -> None:
    if database.backend != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    async with store.engine.connect() as conn:
        if not await conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")):
            pytest.skip("creating roles needs a superuser on the test server")
    suffix = uuid.uuid4().hex[:8]
    bot, owner = f"cos_bot_{suffix}", f"cos_log_owner_{suffix}"

    async def as_bot(statement: str) -> None:
        async with store.engine.begin() as conn:
            await conn.execute(text(f"SET LOCAL ROLE {bot}"))
            await conn.execute(text(statement))

    async with store.engine.begin() as conn:
        await conn.execute(text(f"CREATE ROLE {bot} NOLOGIN"))
        await conn.execute(text(f"ALTER TABLE decisions OWNER TO {bot}"))  # the bot's role ran the migrations
    try:
        await as_bot("ALTER TABLE decisions DISABLE TRIGGER decisions_append_only")  # what was found: it can
        await as_bot("ALTER TABLE decisions ENABLE TRIGGER decisions_append_only")
        async with store.engine.begin() as conn:
            for statement in readme_sql("decisions_append_only").replace("cos_bot", bot).split(";"):
                if statement.strip():
                    await conn.execute(text(statement.replace("cos_log_owner", owner)))
        for statement in (
            "DROP TRIGGER decisions_append_only ON decisions",
            "ALTER TABLE decisions DISABLE TRIGGER decisions_append_only",
            "ALTER TABLE decisions DISABLE TRIGGER ALL",
            "UPDATE decisions SET rationale = 'x'",
            "TRUNCATE decisions",
        ):
            with pytest.raises(DBAPIError, match=r"must be owner|permission denied"):
                await as_bot(statement)
        async with store.engine.connect() as conn:
            privileges = await conn.scalar(text(f"SELECT has_table_privilege('{bot}', 'decisions', 'SELECT, INSERT')"))
        assert privileges
    finally:
        async with store.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE decisions OWNER TO CURRENT_USER"))
            await conn.execute(text("ALTER FUNCTION decisions_append_only() OWNER TO CURRENT_USER"))
            for role in (bot, owner):
                if await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}):
                    await conn.execute(text(f"DROP OWNED BY {role}"))
                    await conn.execute(text(f"DROP ROLE {role}"))


async def test_a_chain_is_checked_from_its_entries_alone_with_no_database() -> None:
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    chain: list[Decision] = []
    for verdict in ("go", "stop", "go"):
        checked = check_record(stopped_email(verdict=verdict), TENANT, at)
        after = (chain[-1].seq, chain[-1].hash, chain[-1].key_id) if chain else (0, GENESIS, None)
        chain.append(chained_entry(checked, refs=(), after=after, keys=KEYS))

    async def check(entries: list[Decision]) -> ChainReport:
        async def each() -> AsyncIterator[Decision]:
            for entry in entries:
                yield entry

        async def links() -> ChainLinks:
            return ChainLinks((e.seq, e.hash, e.prev_hash) for e in entries)

        async def head() -> tuple[int, str] | None:
            return chain[-1].seq, chain[-1].hash

        return await verify_chain(TENANT, each(), keys=KEYS, links=links, head=head)

    assert (await check(chain)).ok
    edited = [chain[0], replace(chain[1], rationale="nothing happened"), chain[2]]
    broken = (await check(edited)).broken
    assert broken is not None
    assert (broken.seq, broken.kind) == (2, BreakKind.EDITED)
