"""`cos tick --at`: a future tick says what it would fire, queue, send and expire; only --apply changes anything."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.rehearsal import RecordingChannel
from bot.scheduler import tick
from planner.domain.approvals import ApprovalStatus
from planner.domain.governance import Action, ActionKind, GateCategory
from planner.domain.model import Window
from planner.services.approvals import Approvals
from planner.services.directory import Directory
from planner.services.outbox import Outbox
from planner.services.plans import Plans
from planner.services.trigger_rules import TenantTriggerRules
from planner.store import Store, create_engine
from planner.store.migrate import upgrade

TENANT = "contoso"
MADE_AT = datetime(2026, 2, 9, 9, tzinfo=UTC)
LATER = "2026-02-12T10:00:00+00:00"


async def a_plan_with_a_slipping_task_and_a_waiting_approval(url: str) -> None:
    store = Store(create_engine(url), clock=lambda: MADE_AT)
    try:
        await upgrade(store.engine)
        plans = Plans(store, TENANT)
        feb = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))
        master = await plans.create_master_plan(title="Q1", owner="aad-lead", window=feb, actor="aad-lead")
        launch = await plans.create_tactical_plan(master.id, title="Launch", owner="aad-lead", window=feb, actor="x")
        await plans.add_task(launch.id, title="Draft email", due_on=date(2026, 2, 10), owner="aad-writer", actor="x")
        directory = Directory(store, TENANT)
        await directory.remember_person("aad-writer", "Writer One")
        await directory.remember_person("aad-lead", "Lead Marketer")
        await directory.remember_conversation(
            "a:writer",
            kind="personal",
            user_id="aad-writer",
            address={
                "serviceUrl": "http://127.0.0.1:9/",  # nothing listens: a rehearsal sends nothing anyway
                "channelId": "msteams",
                "conversation": {"id": "a:writer"},
                "bot": {"id": "28:bot"},
                "user": {"id": "29:writer"},
            },
        )
        await TenantTriggerRules(store).switch(TENANT, "weekly", on=False, actor="test")
        approvals = Approvals(store, TENANT, store.clock)
        await approvals.approvers.assign("finance", "aad-approver", actor="aad-admin")
        await approvals.request(
            Action(
                tenant_id=TENANT,
                kind=ActionKind.DELEGATION,
                actor="aad-lead",
                agent="hubspot",
                name="shift_budget",
                subject="plan:1",
                categories=(GateCategory.BUDGET,),
            ),
            requester="aad-lead",
            reason="Move 5,000 USD to paid social",
            resume={"delegation": 1},
            expires_in=timedelta(hours=24),
        )
    finally:
        await store.close()


async def state(url: str) -> tuple[dict[str, int], list[ApprovalStatus]]:
    store = Store(create_engine(url))
    try:
        pending = await Approvals(store, TENANT, lambda: MADE_AT).pending()
        return await Outbox(store).counts(), [r.status for r in pending]
    finally:
        await store.close()


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "cos.db"
    url = f"sqlite+aiosqlite:///{path}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("MICROSOFT_APP_ID", raising=False)
    asyncio.run(a_plan_with_a_slipping_task_and_a_waiting_approval(url))
    return path, url


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_tick_at_a_future_time_says_what_it_would_do_and_changes_nothing(
    database: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, url = database
    before_state = asyncio.run(state(url))
    before = digest(path)
    assert main(["tick", "--at", LATER]) == 0
    out = capsys.readouterr().out
    assert f"Rehearsal as of {LATER}, on a copy of the database (SQLite file {path}): nothing was changed." in out
    assert "Add --apply to do it." in out
    assert (
        "1 trigger(s) would fire.\n"
        "New messages would come from: deadline slipped (T1, 2026-02-10), approval (A1, decided)" in out
    )
    assert "  Writer One: 1 new (1 deadline_slipped); 1 sent\n" in out
    assert "  Lead Marketer: 1 new (1 approval_decided); 1 undeliverable\n" in out
    assert "1 approval request(s) would expire:\n  A1, asked by Lead Marketer at 2026-02-09T09:00:00+00:00" in out
    assert digest(path) == before
    assert asyncio.run(state(url)) == before_state
    assert before_state[1] == [ApprovalStatus.PENDING]


def test_apply_does_it_and_a_second_rehearsal_then_finds_nothing_new(
    database: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = database
    assert main(["tick", "--at", LATER, "--apply"]) == 0
    assert f"as of {LATER}: " in capsys.readouterr().out
    counts, pending = asyncio.run(state(url))
    assert sum(counts.values()) >= 2  # the slip nudge, and the expiry told to the requester
    assert pending == []
    assert main(["tick", "--at", LATER]) == 0
    out = capsys.readouterr().out
    assert "Writer One: 0 new" not in out
    assert "deadline_slipped" not in out
    assert "would expire" not in out


async def a_tick_applied_at(url: str, at: datetime) -> None:
    """What `cos tick --at AT --apply` does, with a channel that takes every message (the writer's nudge is sent)."""
    store = Store(create_engine(url), clock=lambda: at)
    try:
        await tick(store, RecordingChannel(), at=at)
    finally:
        await store.close()


def test_a_rehearsal_at_the_time_a_tick_was_applied_leaves_out_what_that_run_sent_rather_than_call_it_dropped(
    database: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = database
    asyncio.run(a_tick_applied_at(url, datetime.fromisoformat(LATER)))
    counts = asyncio.run(state(url))[0]
    assert (counts["sent"], counts["dropped"]) == (1, 1)  # the writer's slip nudge went; the expired approval's not
    assert main(["tick", "--at", LATER]) == 0
    out = capsys.readouterr().out
    # The writer's nudge, and the approval card that expired before it went out, were that run's: not this one's.
    assert "Writer One" not in out
    assert "would be queued" not in out
    assert "Left out here, as an earlier run at this time handled them: 1 sent, 1 dropped.\n" in out
    assert "Delivery in this tick: 0 sent, 0 more inside summary cards, 0 dropped (no longer needed)" in out


def test_a_rehearsal_needs_a_sqlite_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://cos@127.0.0.1:1/cos")
    assert main(["tick", "--at", LATER]) == 2
    assert "pass --apply to change this database" in capsys.readouterr().err


async def another_task_slipping_the_same_day(url: str) -> None:
    store = Store(create_engine(url), clock=lambda: MADE_AT)
    try:
        await Plans(store, TENANT).add_task(
            2, title="Book the venue", due_on=date(2026, 2, 10), owner="aad-writer", actor="x"
        )
    finally:
        await store.close()


def test_messages_a_tick_would_fold_into_one_summary_card_are_counted_not_left_out(
    database: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = database
    asyncio.run(another_task_slipping_the_same_day(url))
    assert main(["tick", "--at", LATER]) == 0
    out = capsys.readouterr().out
    # Two slips for one person arrive as one summary card: both of them are accounted for.
    assert "  Writer One: 2 new (2 deadline_slipped); 1 sent, 1 sent in a summary card\n" in out
    assert "Delivery in this tick: 1 sent, 1 more inside summary cards, " in out
