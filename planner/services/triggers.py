"""Triggers: what needs a human now, decided from the database, written to the outbox once.

The scheduler only wakes the engine; `TriggerEngine.evaluate(at)` reads what is due as of `at` and fires each
trigger at most once per subject and time window (the firing key), so any number of replicas may evaluate at
once, and an evaluation after downtime catches up once instead of once per missed tick.

Every tick reads only what is near: tasks due around today, milestones done in the catch-up window, and, in
the weeks' first and last days, whether each tenant's weekly cycle went out. Plan health and metric pace need
a roll-up of every active plan, so they are judged in an hourly sweep that one replica claims.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta

from planner.domain.delegations import OverdueDelegation
from planner.domain.messages import Message, MessageKind
from planner.domain.model import Health, iso_week_window
from planner.domain.rollup import PlanRollup, metric_behind, reason_payload
from planner.domain.triggers import (
    DueTask,
    Trigger,
    TriggerRules,
    after_quiet_hours,
    deadline_is_near,
    deadline_key,
    deadline_trigger,
    drift_key,
    escalates,
    health_change_key,
    local_moment,
    milestone_key,
    nudge_time,
    weekly_phase,
)
from planner.services.delegation import overdue_delegations
from planner.services.outbox import Outbox
from planner.services.plans import Plans
from planner.services.trigger_rules import TenantTriggerRules
from planner.store import Store
from planner.store import triggers as triggers_store

BUDGETED = (MessageKind.DEADLINE_APPROACHING, MessageKind.DEADLINE_SLIPPED)
"""The kinds that count against a person's daily budget (scheduled messages do not)."""
CONVERSATION = "conversation:"
"""Prefix of a recipient that is a conversation (a channel) rather than a person."""
SWEEP_TENANT = "*"

RulesOf = Callable[[str], TriggerRules]


class TriggerEngine:
    """Evaluates every trigger of every tenant into the outbox."""

    def __init__(self, store: Store, outbox: Outbox | None = None, rules: TriggerRules | None = None) -> None:
        self._store = store
        self._outbox = outbox or Outbox(store)
        self.rules = rules or TriggerRules()
        self._tenant_rules = TenantTriggerRules(store, self.rules)

    async def evaluate(self, at: datetime) -> int:
        """Fire what is due as of `at`; returns how many firings were new."""
        tenants = await self._tenant_rules.all()

        def rules_of(tenant_id: str) -> TriggerRules:
            return tenants.get(tenant_id, self.rules)

        overdue = await overdue_delegations(self._store, at)
        fired = await self._delegations_overdue(at, rules_of, overdue)
        delegated = {(o.delegation.tenant_id, o.delegation.task_id) for o in overdue}
        fired += await self._deadlines(at, rules_of, tenants.values(), skip=delegated)
        fired += await self._milestones(at, rules_of)
        fired += await self._weekly_cycle(at, rules_of)
        if await self._outbox.fire(SWEEP_TENANT, f"sweep:{at.astimezone(UTC):%Y-%m-%dT%H}", []):
            fired += await self._sweep(at, rules_of)
        return fired

    # ---- deadlines ------------------------------------------------------------------------------------------

    async def _delegations_overdue(self, at: datetime, rules_of: RulesOf, overdue: list[OverdueDelegation]) -> int:
        """A delegation that produced nothing by its task's due date: its owner hears, instead of a slip nudge."""
        fired = 0
        for item in overdue:
            delegation = item.delegation
            rules = rules_of(delegation.tenant_id)
            if not rules.fires(Trigger.DEADLINE_SLIPPED):
                continue
            message = Message(
                recipient=item.task_owner or delegation.actor,
                kind=MessageKind.DELEGATION_OVERDUE,
                payload={"delegation": delegation.id, "task": delegation.task_id, "due_on": item.due_on.isoformat()},
                not_before=after_quiet_hours(at, None, rules),
            )
            key = f"{MessageKind.DELEGATION_OVERDUE}:{delegation.id}:{item.due_on.isoformat()}"
            if await self._outbox.fire(delegation.tenant_id, key, [message]):
                fired += 1
        return fired

    async def _deadlines(
        self, at: datetime, rules_of: RulesOf, all_rules: Iterable[TriggerRules], *, skip: set[tuple[str, int]]
    ) -> int:
        today = at.date()
        first = today - timedelta(days=self.rules.catch_up_days)
        lead = max([self.rules.approaching_days, *(r.approaching_days for r in all_rules)])
        # Only tasks due near today are read: the cost follows what is due, not the size of the table.
        async with self._store.read() as conn:
            due = await triggers_store.due_tasks(conn, first, today + timedelta(days=lead))
            # Every candidate's key, not only the slipped ones': a steady tick then skips what already fired
            # instead of trying again, one failing transaction per task due soon.
            candidate_keys = [deadline_key(deadline_trigger(t.due_on, today), t.id, t.due_on) for t in due]
            day_start = datetime.combine(today, time(), tzinfo=UTC)
            sent_today = await triggers_store.messages_queued_since(conn, day_start, BUDGETED)
            nudged_at = await triggers_store.fired_at(conn, candidate_keys)
        fired = 0
        for task in due:
            rules = rules_of(task.tenant_id)
            if task.snoozed_until is not None and task.snoozed_until > at:
                continue
            slipped = task.due_on < today
            if (task.tenant_id, task.id) in skip and slipped:
                continue
            if not deadline_is_near(task, today, rules):
                continue
            trigger = deadline_trigger(task.due_on, today)
            key = deadline_key(trigger, task.id, task.due_on)
            since = nudged_at.get(key)
            if since is not None:
                if escalates(task, at, since, rules) and await self._escalate(task, at, rules):
                    fired += 1
                continue
            if not rules.fires(trigger):
                continue
            budget_key = (task.tenant_id, task.recipient)
            message = Message(
                recipient=task.recipient,
                kind=MessageKind.DEADLINE_SLIPPED if slipped else MessageKind.DEADLINE_APPROACHING,
                payload={"task": task.id, "title": task.title, "due_on": task.due_on.isoformat()},
                not_before=nudge_time(at, sent_today.get(budget_key, 0), task.time_zone, rules),
            )
            if await self._outbox.fire(task.tenant_id, key, [message]):
                fired += 1
                sent_today[budget_key] = sent_today.get(budget_key, 0) + 1
        return fired

    async def _escalate(self, task: DueTask, at: datetime, rules: TriggerRules) -> bool:
        """Tell the plan's owner about a slipped task its owner left unanswered."""
        message = Message(
            recipient=task.plan_owner,
            kind=MessageKind.ESCALATION,
            payload={"task": task.id, "title": task.title, "due_on": task.due_on.isoformat(), "owner": task.owner},
            not_before=after_quiet_hours(at, None, rules),
        )
        key = deadline_key(Trigger.ESCALATION, task.id, task.due_on)
        return await self._outbox.fire(task.tenant_id, key, [message])

    # ---- milestones -----------------------------------------------------------------------------------------

    async def _milestones(self, at: datetime, rules_of: RulesOf) -> int:
        """A milestone done within the catch-up window is told to the leader (the master plan's owner)."""
        async with self._store.read() as conn:
            done = await triggers_store.milestones_done(conn, at - timedelta(days=self.rules.catch_up_days), at)
        fired = 0
        for milestone in done:
            rules = rules_of(milestone.tenant_id)
            if not rules.fires(Trigger.MILESTONE_COMPLETED) or milestone.owner == milestone.leader:
                continue
            message = Message(
                recipient=milestone.leader,
                kind=MessageKind.MILESTONE_COMPLETED,
                payload={
                    "task": milestone.id,
                    "title": milestone.title,
                    "owner": milestone.owner,
                    "done_at": milestone.done_at.isoformat(),
                },
                not_before=after_quiet_hours(at, milestone.time_zone, rules),
            )
            if await self._outbox.fire(milestone.tenant_id, milestone_key(milestone.id), [message]):
                fired += 1
        return fired

    # ---- the weekly cycle -----------------------------------------------------------------------------------

    async def _weekly_cycle(self, at: datetime, rules_of: RulesOf) -> int:
        """Monday: each member's week and a summary in each channel; Friday: a review prompt and the digest.

        Evaluated from Monday to Wednesday (and Friday to Sunday), so a bot that was down on the day still sends
        each once; every person gets theirs at the configured hour of their own day.
        """
        cycle = weekly_phase(at.date())
        if cycle is None:
            return 0
        phase, week, day = cycle
        window = iso_week_window(week)
        key = f"{phase}:{week}"
        async with self._store.read() as conn:
            active = await triggers_store.tenants_with_active_master(conn, window.start, window.end)
            done = await triggers_store.tenants_fired(conn, key, active)
        fired = 0
        for tenant_id in sorted(active - done):
            rules = rules_of(tenant_id)
            if not rules.fires(Trigger.WEEKLY_CYCLE):
                continue
            messages = await self._cycle_messages(tenant_id, phase, week, day, at, rules)
            if await self._outbox.fire(tenant_id, key, messages):
                fired += 1
        return fired

    async def _cycle_messages(
        self, tenant_id: str, phase: str, week: str, day: date, at: datetime, rules: TriggerRules
    ) -> list[Message]:
        window = iso_week_window(week)
        since = window.start - timedelta(days=self.rules.catch_up_days * 4)
        async with self._store.read() as conn:
            members = await triggers_store.owners_with_open_tasks(conn, tenant_id, since, window.end)
            leaders = await triggers_store.leaders(conn, tenant_id, window.start, window.end)
            zones = await triggers_store.time_zones(conn, tenant_id, members | leaders)
            channel_ids = await triggers_store.channel_ids(conn, tenant_id)
        hour = rules.week_start_hour if phase == "weekly_start" else rules.review_hour

        def when(person: str | None) -> datetime:
            zone = zones.get(person) if person else None
            return after_quiet_hours(max(at, local_moment(day, hour, zone, rules)), zone, rules)

        payload = {"week": week}
        if phase == "weekly_start":
            return [
                Message(recipient=m, kind=MessageKind.WEEK_PLAN, payload=payload, not_before=when(m))
                for m in sorted(members)
            ] + [
                Message(
                    recipient=CONVERSATION + c, kind=MessageKind.WEEK_SUMMARY, payload=payload, not_before=when(None)
                )
                for c in channel_ids
            ]
        return [
            Message(recipient=m, kind=MessageKind.WEEK_REVIEW, payload=payload, not_before=when(m))
            for m in sorted(members)
        ] + [
            Message(recipient=lead, kind=MessageKind.DIGEST, payload=payload, not_before=when(lead))
            for lead in sorted(leaders)
        ]

    # ---- the hourly sweep: plan health and metric pace ------------------------------------------------------

    async def _sweep(self, at: datetime, rules_of: RulesOf) -> int:
        today = at.date()
        async with self._store.read() as conn:
            masters = await triggers_store.active_masters(conn, today)
        fired = 0
        for master_id, tenant_id in masters:
            rules = rules_of(tenant_id)
            if not (rules.fires(Trigger.PLAN_HEALTH) or rules.fires(Trigger.METRIC_DRIFT)):
                continue
            rollup = await Plans(self._store, tenant_id).rollup(master_id, today)
            if rules.fires(Trigger.PLAN_HEALTH):
                fired += await self._health_changes(tenant_id, rollup, at, rules)
            if rules.fires(Trigger.METRIC_DRIFT):
                fired += await self._drift(tenant_id, rollup, at, rules)
        return fired

    async def _health_changes(self, tenant_id: str, rollup: PlanRollup, at: datetime, rules: TriggerRules) -> int:
        """Tell a plan's owner (and the leader) when its health changes; the first reading is only recorded."""
        # Master and tactical plans (weekly plans change too often to tell); a plan whose window has ended is
        # final (met or missed): nothing to tell about it any more.
        judged = [r for r in (rollup, *rollup.children) if not r.health.is_final]
        async with self._store.read() as conn:
            known = await triggers_store.known_health(conn, [r.plan.id for r in judged])
        fired = 0
        leader = rollup.plan.owner
        for item in judged:
            before, now = known.get(item.plan.id), item.health.value
            if before == now:
                continue
            if before is not None:
                payload = {
                    "plan": item.plan.id,
                    "title": item.plan.title,
                    "before": before,
                    "after": now,
                    "reasons": [reason_payload(reason) for reason in item.reasons[:3]],
                }
                recipients = sorted({item.plan.owner, leader})
                messages = [
                    Message(
                        recipient=r,
                        kind=MessageKind.PLAN_HEALTH,
                        payload=payload,
                        not_before=after_quiet_hours(at, None, rules),
                    )
                    for r in recipients
                ]
                key = health_change_key(item.plan.id, before, now, at.date())
                if await self._outbox.fire(tenant_id, key, messages):
                    fired += 1
            async with self._store.transaction() as conn:
                await triggers_store.remember_health(conn, tenant_id, item.plan.id, Health(now), at)
        return fired

    async def _drift(self, tenant_id: str, rollup: PlanRollup, at: datetime, rules: TriggerRules) -> int:
        """A metric behind its straight-line pace beyond its tolerance is told to its plan's owner, once per state
        (its health and the reading judged): an unchanged drift is not told again, and a plan whose window has ended
        is final, never drifting."""
        fired = 0
        for item in [rollup, *rollup.children]:
            if item.health.is_final:
                continue
            for pace in item.metrics:
                if not pace.health.needs_attention:
                    continue
                payload = {
                    "metric": pace.metric.id,
                    "name": pace.metric.name,
                    "plan": item.plan.id,
                    "plan_title": item.plan.title,
                    "unit": pace.metric.unit,
                    "actual": pace.actual,
                    "expected": pace.expected,
                    "target": pace.metric.target,
                    "health": pace.health.value,
                    "why": reason_payload(metric_behind(pace)),
                }
                message = Message(
                    recipient=item.plan.owner,
                    kind=MessageKind.METRIC_DRIFT,
                    payload=payload,
                    not_before=after_quiet_hours(at, None, rules),
                )
                key = drift_key(pace.metric.id, pace.health.value, pace.measured_on, pace.actual)
                if await self._outbox.fire(tenant_id, key, [message]):
                    fired += 1
        return fired
