from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from bot.text.triggers import describe
from planner.domain.errors import Expected, InvalidValue
from planner.domain.messages import Envelope, Message
from planner.domain.model import MetricSpec, TaskChanges, TaskStatus, Window
from planner.domain.triggers import Trigger, TriggerRules, after_quiet_hours
from planner.services.directory import Directory
from planner.services.outbox import Outbox
from planner.services.plans import Plans
from planner.services.trigger_rules import TenantTriggerRules
from planner.services.triggers import TriggerEngine
from planner.store import Store
from tests.conftest import Database, FakeClock

FEB = Window(start=date(2026, 2, 1), end=date(2026, 2, 28))
MORNING = datetime(2026, 2, 10, 9, tzinfo=UTC)
DEADLINES = TriggerRules(
    enabled=frozenset({Trigger.DEADLINE_APPROACHING, Trigger.DEADLINE_SLIPPED, Trigger.ESCALATION})
)
"""The deadline triggers alone (the weekly cycle also fires on a Tuesday, and is tested on its own)."""


async def plan_with_tasks(store: Store) -> dict[str, int]:
    """A plan's tasks around 10 February; the store's clock is set to that morning, as a tick would see it."""
    store.clock.now = MORNING  # type: ignore[attr-defined]
    tenant = Plans(store, "contoso")
    master = await tenant.create_master_plan(title="Q1", owner="aad-lead", window=FEB, actor="aad-lead")
    tactical = await tenant.create_tactical_plan(master.id, title="Launch", owner="aad-lead", window=FEB, actor="x")
    ids = {}
    for name, day, owner in [
        ("slipped", 9, "aad-writer"),
        ("tomorrow", 11, None),
        ("later", 20, "aad-writer"),
        ("old", 1, "aad-writer"),
    ]:
        ids[name] = (
            await tenant.add_task(tactical.id, title=name, due_on=date(2026, 2, day), owner=owner, actor="x")
        ).id
    return ids


async def test_slipped_deadline_nudges_owner_once_and_approaching_one_goes_to_the_plan_owner(store: Store) -> None:
    ids = await plan_with_tasks(store)
    engine = TriggerEngine(store, rules=DEADLINES)
    assert await engine.evaluate(MORNING) == 2  # "old" slipped 9 days ago: beyond the catch-up window
    assert await engine.evaluate(MORNING + timedelta(minutes=1)) == 0
    claimed = await Outbox(store).claim("s")
    assert sorted((e.kind, e.recipient, e.payload["task"]) for e in claimed) == [
        ("deadline_approaching", "aad-lead", ids["tomorrow"]),
        ("deadline_slipped", "aad-writer", ids["slipped"]),
    ]


class CountingOutbox(Outbox):
    """The real outbox, noting the deadline firings it is asked to record."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.attempts: list[str] = []

    async def fire(self, tenant_id: str, key: str, messages: Sequence[Message]) -> bool:
        if key.startswith("deadline_"):
            self.attempts.append(key)
        return await super().fire(tenant_id, key, messages)


async def test_a_steady_tick_does_not_try_again_what_already_fired(store: Store) -> None:
    # Each attempt is a transaction that fails on the firing's unique key: with many tasks due, ticks grew slow
    # enough (seconds, found by bench/soak.py) to hold up the approvals' expiry that runs after them.
    await plan_with_tasks(store)
    outbox = CountingOutbox(store)
    engine = TriggerEngine(store, outbox=outbox, rules=DEADLINES)
    assert await engine.evaluate(MORNING) == 2
    assert len(outbox.attempts) == 2
    assert await engine.evaluate(MORNING + timedelta(minutes=1)) == 0
    assert len(outbox.attempts) == 2


async def test_done_and_snoozed_tasks_are_left_alone(store: Store) -> None:
    ids = await plan_with_tasks(store)
    tenant = Plans(store, "contoso")
    await tenant.update_task(ids["slipped"], TaskChanges(status=TaskStatus.DONE), actor="x")
    await tenant.update_task(ids["tomorrow"], TaskChanges(snoozed_until=MORNING + timedelta(hours=4)), actor="x")
    engine = TriggerEngine(store, rules=DEADLINES)
    assert await engine.evaluate(MORNING) == 0
    assert await engine.evaluate(MORNING + timedelta(hours=5)) == 1


async def test_a_moved_deadline_can_slip_again(store: Store) -> None:
    ids = await plan_with_tasks(store)
    engine = TriggerEngine(store, rules=DEADLINES)
    await engine.evaluate(MORNING)
    await Plans(store, "contoso").update_task(ids["slipped"], TaskChanges(due_on=date(2026, 2, 12)), actor="x")
    # On the 13th: the moved task slipped again, and the one due on the 11th has slipped too.
    store.clock.now = datetime(2026, 2, 13, 9, tzinfo=UTC)  # type: ignore[attr-defined]
    assert await engine.evaluate(store.clock.now) == 2  # type: ignore[attr-defined]
    keys = {e.firing_key for e in await Outbox(store).claim("s", limit=10)}
    assert f"deadline_slipped:task:{ids['slipped']}:2026-02-12" in keys
    assert f"deadline_slipped:task:{ids['tomorrow']}:2026-02-11" in keys


async def test_several_engines_evaluating_at_once_fire_each_trigger_once(store: Store, database: Database) -> None:
    await plan_with_tasks(store)
    replicas = [Store(database.engine(), clock=store.clock) for _ in range(3)]
    try:
        fired = await asyncio.gather(*(TriggerEngine(s, rules=DEADLINES).evaluate(MORNING) for s in replicas))
    finally:
        for s in replicas:
            await s.close()
    assert sum(fired) == 2
    assert await Outbox(store).counts() == {"pending": 2}


def test_quiet_hours_hold_a_night_nudge_until_the_recipients_morning() -> None:
    rules = TriggerRules()
    evening_utc = datetime(2026, 2, 10, 21, 30, tzinfo=UTC)
    # 21:30 in London is quiet: wait until 08:00 London the next day.
    assert after_quiet_hours(evening_utc, "Europe/London", rules) == datetime(2026, 2, 11, 8, tzinfo=UTC)
    # 21:30 UTC is 13:30 in Los Angeles: send now.
    assert after_quiet_hours(evening_utc, "America/Los_Angeles", rules) == evening_utc
    # 03:00 in Tokyo (18:00 UTC the day before) waits for 08:00 Tokyo, 23:00 UTC.
    assert after_quiet_hours(datetime(2026, 2, 10, 18, tzinfo=UTC), "Asia/Tokyo", rules) == datetime(
        2026, 2, 10, 23, tzinfo=UTC
    )
    assert after_quiet_hours(evening_utc, "Not/AZone", rules) == datetime(2026, 2, 11, 8, tzinfo=UTC)


async def test_a_nudge_due_at_night_waits_for_the_morning_in_the_recipients_time_zone(
    store: Store, clock: FakeClock
) -> None:
    await plan_with_tasks(store)
    await Directory(store, "contoso").remember_person("aad-writer", "Writer", "Asia/Tokyo")
    night_in_tokyo = datetime(2026, 2, 10, 15, tzinfo=UTC)  # 00:00 in Tokyo
    clock.now = night_in_tokyo
    await TriggerEngine(store, rules=DEADLINES).evaluate(night_in_tokyo)
    [for_the_lead] = await Outbox(store).claim("s")  # the plan owner has no time zone: UTC, 15:00, not quiet
    assert for_the_lead.recipient == "aad-lead"
    assert await Outbox(store).sent(for_the_lead, "s")
    clock.now = datetime(2026, 2, 10, 23, tzinfo=UTC)  # 08:00 in Tokyo
    [for_the_writer] = await Outbox(store).claim("s")
    assert for_the_writer.recipient == "aad-writer"


async def test_a_slipped_task_left_unanswered_escalates_to_the_plan_owner_once(store: Store, clock: FakeClock) -> None:
    ids = await plan_with_tasks(store)
    engine = TriggerEngine(store, rules=DEADLINES)
    await engine.evaluate(MORNING)
    outbox = Outbox(store)
    for envelope in await outbox.claim("s"):
        await outbox.sent(envelope, "s")
    clock.advance(hours=23)
    assert await engine.evaluate(clock.now) == 0  # nudged 23 hours ago: not yet
    clock.advance(hours=2)
    assert await engine.evaluate(clock.now) == 1
    [escalation] = await outbox.claim("s")
    assert (escalation.kind, escalation.recipient, escalation.payload["task"]) == (
        "escalation",
        "aad-lead",
        ids["slipped"],
    )
    assert escalation.payload["owner"] == "aad-writer"
    assert await engine.evaluate(clock.now + timedelta(hours=1)) == 0


async def test_a_person_gets_at_most_the_daily_budget_and_the_rest_tomorrow_morning(
    store: Store, clock: FakeClock
) -> None:
    await plan_with_tasks(store)
    tenant = Plans(store, "contoso")
    [tactical] = [p for p in await tenant.list_plans() if p.title == "Launch"]
    for n in range(6):
        await tenant.add_task(tactical.id, title=f"extra {n}", due_on=date(2026, 2, 9), owner="aad-writer", actor="x")
    engine = TriggerEngine(store, rules=replace(DEADLINES, daily_budget=3))
    assert await engine.evaluate(MORNING) == 8  # 7 slipped for the writer, 1 approaching for the lead
    outbox = Outbox(store)
    claimed = await outbox.claim("s", limit=50)
    for envelope in claimed:
        await outbox.sent(envelope, "s")
    assert len([e for e in claimed if e.recipient == "aad-writer"]) == 3
    clock.now = datetime(2026, 2, 11, 7, 59, tzinfo=UTC)
    assert await outbox.claim("s", limit=50) == []  # the rest waits for the morning
    clock.now = datetime(2026, 2, 11, 8, tzinfo=UTC)
    tomorrow = await outbox.claim("s", limit=50)
    assert [e.recipient for e in tomorrow] == ["aad-writer"] * 4


# ---- milestones, health, drift, the weekly cycle, per-tenant rules -------------------------------------------


def only(*triggers: str) -> TriggerRules:
    return TriggerRules(enabled=frozenset(triggers))


async def test_a_completed_milestone_is_told_to_the_leader_once(store: Store, clock: FakeClock) -> None:
    ids = await plan_with_tasks(store)
    tenant = Plans(store, "contoso")
    [tactical] = [p for p in await tenant.list_plans() if p.title == "Launch"]
    launch = await tenant.add_task(
        tactical.id, title="Launch day", due_on=date(2026, 2, 20), owner="aad-writer", milestone=True, actor="x"
    )
    engine = TriggerEngine(store, rules=only(Trigger.MILESTONE_COMPLETED))
    assert await engine.evaluate(MORNING) == 0
    await tenant.update_task(ids["later"], TaskChanges(status=TaskStatus.DONE), actor="aad-writer")  # not a milestone
    await tenant.update_task(launch.id, TaskChanges(status=TaskStatus.DONE), actor="aad-writer")
    clock.advance(minutes=1)
    assert await engine.evaluate(clock.now) == 1
    assert await engine.evaluate(clock.now + timedelta(hours=1)) == 0
    [told] = await Outbox(store).claim("s")
    assert (told.kind, told.recipient, told.payload["task"], told.payload["owner"]) == (
        "milestone_completed",
        "aad-lead",
        launch.id,
        "aad-writer",
    )


async def delivered(store: Store) -> list[Envelope]:
    """The messages due now, as a sender takes and delivers them (so they are not handed out again)."""
    outbox = Outbox(store)
    claimed = await outbox.claim("s")
    for envelope in claimed:
        assert await outbox.sent(envelope, "s")
    return claimed


async def test_a_metric_behind_its_pace_is_told_to_its_owner_once_per_change(store: Store, clock: FakeClock) -> None:
    await plan_with_tasks(store)
    tenant = Plans(store, "contoso")
    [master] = [p for p in await tenant.list_plans() if p.title == "Q1"]
    sqls = await tenant.add_metric(master.id, MetricSpec(name="SQLs", target=280, tolerance=0.1), actor="x")
    pipeline = await tenant.add_metric(master.id, MetricSpec(name="Pipeline", target=28, tolerance=0.1), actor="x")
    # 10 days of 28 gone: 100 SQLs expected; 60 is 40 % behind (off track). Pipeline 10 of 10 expected is on pace.
    await tenant.record_reading(sqls.id, 60, actor="x")
    await tenant.record_reading(pipeline.id, 10, actor="x")
    engine = TriggerEngine(store, rules=only(Trigger.METRIC_DRIFT))
    assert await engine.evaluate(MORNING) == 1
    assert await engine.evaluate(MORNING + timedelta(minutes=5)) == 0  # the sweep runs once an hour
    assert await engine.evaluate(MORNING + timedelta(hours=1)) == 0  # and tells an unchanged drift once
    [drift] = await delivered(store)
    assert (drift.kind, drift.recipient, drift.payload["name"], drift.payload["health"]) == (
        "metric_drift",
        "aad-lead",
        "SQLs",
        "off track",
    )
    assert drift.payload["expected"] == 100
    assert drift.payload["actual"] == 60
    # Two days later SQLs is still off track on the same reading: not told again. Pipeline (10 of 12 expected) has
    # fallen behind: told.
    clock.now = MORNING + timedelta(days=2)
    assert await engine.evaluate(clock.now) == 1
    [pipeline_drift] = await delivered(store)
    assert (pipeline_drift.payload["name"], pipeline_drift.payload["health"]) == ("Pipeline", "at risk")
    clock.now = MORNING + timedelta(days=6)  # Pipeline worse (10 of 16: off track): told; SQLs unchanged: not
    assert await engine.evaluate(clock.now) == 1
    [worse] = await delivered(store)
    assert (worse.payload["name"], worse.payload["health"]) == ("Pipeline", "off track")
    await tenant.record_reading(sqls.id, 130, actor="x")  # a new reading, still behind (160 expected): told again
    clock.now += timedelta(hours=1)
    assert await engine.evaluate(clock.now) == 1
    [again] = await delivered(store)
    assert (again.payload["name"], again.payload["actual"]) == ("SQLs", 130)


async def test_a_plan_whose_health_changes_is_told_and_the_first_look_only_records(
    store: Store, clock: FakeClock
) -> None:
    ids = await plan_with_tasks(store)
    tenant = Plans(store, "contoso")
    for name in ("slipped", "old"):
        await tenant.update_task(ids[name], TaskChanges(status=TaskStatus.DONE), actor="aad-writer")
    [master] = [p for p in await tenant.list_plans() if p.title == "Q1"]
    engine = TriggerEngine(store, rules=only(Trigger.PLAN_HEALTH))
    first = await tenant.rollup(master.id, MORNING.date())
    assert await engine.evaluate(MORNING) == 0  # first look: recorded, nothing said
    assert await Outbox(store).counts() == {}
    # Many open tasks slip: the plan falls behind.
    [tactical] = [p for p in await tenant.list_plans() if p.title == "Launch"]
    for n in range(8):
        await tenant.add_task(tactical.id, title=f"late {n}", due_on=date(2026, 2, 3), owner="aad-writer", actor="x")
    clock.now = MORNING + timedelta(hours=1)
    later = await tenant.rollup(master.id, clock.now.date())
    assert later.health != first.health
    assert await engine.evaluate(clock.now) >= 1
    told = await Outbox(store).claim("s", limit=10)
    assert {e.kind for e in told} == {"plan_health"}
    assert {e.recipient for e in told} == {"aad-lead"}
    master_told = [e for e in told if e.payload["plan"] == master.id]
    assert master_told[0].payload["before"] == first.health.value
    assert master_told[0].payload["after"] == later.health.value
    clock.now = MORNING + timedelta(hours=2)
    assert await engine.evaluate(clock.now) == 0  # unchanged since: nothing more


async def test_monday_brings_each_member_their_week_and_each_channel_a_summary_at_their_local_hour(
    store: Store, clock: FakeClock
) -> None:
    await plan_with_tasks(store)
    directory = Directory(store, "contoso")
    await directory.remember_person("aad-writer", "Writer", "America/New_York")
    await directory.remember_conversation(
        "19:channel@thread.tacv2", kind="channel", user_id=None, address={"conversation": {"id": "19:c"}}
    )
    engine = TriggerEngine(store, rules=only(Trigger.WEEKLY_CYCLE))
    monday = datetime(2026, 2, 9, 0, 5, tzinfo=UTC)
    clock.now = monday
    assert await engine.evaluate(monday) == 1  # one firing for the tenant's whole Monday
    assert await engine.evaluate(monday + timedelta(days=1)) == 0  # Tuesday: already done this week
    messages = {e.recipient: e for e in await Outbox(store).claim("s", limit=10, lease=timedelta(days=9))}
    assert messages == {}  # nothing before 09:00 anywhere
    clock.now = datetime(2026, 2, 9, 9, tzinfo=UTC)
    at_nine_utc = await Outbox(store).claim("s", limit=10)
    for envelope in at_nine_utc:
        await Outbox(store).sent(envelope, "s")
    assert {e.recipient: e.kind for e in at_nine_utc} == {"conversation:19:channel@thread.tacv2": "week_summary"}
    clock.now = datetime(2026, 2, 9, 14, tzinfo=UTC)  # 09:00 in New York
    assert {e.recipient: e.kind for e in await Outbox(store).claim("s", limit=10)} == {"aad-writer": "week_plan"}


async def test_friday_brings_a_review_prompt_to_members_and_the_digest_to_the_leader(
    store: Store, clock: FakeClock
) -> None:
    await plan_with_tasks(store)
    engine = TriggerEngine(store, rules=only(Trigger.WEEKLY_CYCLE))
    thursday = datetime(2026, 2, 12, 12, tzinfo=UTC)
    assert await engine.evaluate(thursday) == 0
    # A bot that was down all Friday catches up once on Saturday.
    saturday = datetime(2026, 2, 14, 10, tzinfo=UTC)
    clock.now = saturday
    assert await engine.evaluate(saturday) == 1
    assert await engine.evaluate(saturday + timedelta(hours=3)) == 0
    got = sorted((e.kind, e.recipient) for e in await Outbox(store).claim("s", limit=10))
    assert got == [("digest", "aad-lead"), ("week_review", "aad-writer")]


async def test_a_tenant_turns_a_trigger_off_and_changes_its_lead_time(store: Store, clock: FakeClock) -> None:
    ids = await plan_with_tasks(store)
    settings = TenantTriggerRules(store)
    await settings.switch("contoso", "slipped", on=False, actor="aad-lead")
    await settings.change("contoso", "lead", "10", actor="aad-lead")
    await settings.switch("contoso", "weekly", on=False, actor="aad-lead")
    rules = await settings.of("contoso")
    assert not rules.fires(Trigger.DEADLINE_SLIPPED)
    assert rules.approaching_days == 10
    assert await TriggerEngine(store).evaluate(MORNING) == 2  # 'tomorrow' and 'later' (due in 10 days)
    claimed = {e.payload["task"]: e.kind for e in await Outbox(store).claim("s", limit=10)}
    assert claimed == {ids["tomorrow"]: "deadline_approaching", ids["later"]: "deadline_approaching"}
    # Another tenant keeps the defaults.
    assert (await settings.of("fabrikam")).approaching_days == 1


async def test_trigger_settings_refuse_bad_values_with_what_is_accepted(store: Store) -> None:
    settings = TenantTriggerRules(store)
    with pytest.raises(InvalidValue) as refused:
        await settings.change("contoso", "budget", "lots", actor="x")
    assert (refused.value.expected, refused.value.details) == (Expected.WHOLE_NUMBER_FROM, {"low": 1, "high": 100})
    with pytest.raises(InvalidValue) as refused:
        await settings.change("contoso", "speed", "3", actor="x")
    assert refused.value.expected is Expected.ONE_OF
    assert refused.value.details["choices"][:2] == ("lead", "quiet-from")
    with pytest.raises(InvalidValue) as refused:
        await settings.change("contoso", "time-zone", "Mars/Olympus", actor="x")
    assert refused.value.expected is Expected.TIME_ZONE
    with pytest.raises(InvalidValue) as refused:
        await settings.switch("contoso", "sometimes", on=False, actor="x")
    assert "weekly" in refused.value.details["choices"]
    assert await settings.of("contoso") == TriggerRules()
    changed = await settings.change("contoso", "quiet-from", "21:30", actor="x")
    assert changed.quiet_from == time(21, 30)
    assert "quiet-from = 21:30 (start of quiet hours)" in describe(changed)
    assert await settings.reset("contoso", actor="x") == TriggerRules()


async def test_after_days_of_downtime_each_missed_firing_is_caught_up_once(store: Store, clock: FakeClock) -> None:
    ids = await plan_with_tasks(store)
    tenant = Plans(store, "contoso")
    [tactical] = [p for p in await tenant.list_plans() if p.title == "Launch"]
    for day in (12, 13):
        await tenant.add_task(tactical.id, title=f"due {day}", due_on=date(2026, 2, day), owner="aad-writer", actor="x")
    engine = TriggerEngine(store, rules=replace(DEADLINES, enabled=frozenset({Trigger.DEADLINE_SLIPPED})))
    # Down from the 10th to the 14th: one evaluation when the bot is back, not one per missed tick.
    clock.now = datetime(2026, 2, 14, 9, tzinfo=UTC)
    assert await engine.evaluate(clock.now) == 4  # slipped on the 9th, 11th, 12th and 13th
    assert await engine.evaluate(clock.now + timedelta(minutes=1)) == 0
    keys = {e.firing_key for e in await Outbox(store).claim("s", limit=10)}
    assert f"deadline_slipped:task:{ids['slipped']}:2026-02-09" in keys
    assert len(keys) == 4
