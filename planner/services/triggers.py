"""Triggers: what needs a human now, decided from the database, written to the outbox once.

The scheduler only wakes the engine; `TriggerEngine.evaluate(at)` reads what is due as of `at` and fires each
trigger at most once per subject and time window (the firing key), so any number of replicas may evaluate at
once, and an evaluation after downtime catches up once instead of once per missed tick.

Every tick reads only what is near: tasks due around today, milestones done in the catch-up window, and, in
the weeks' first and last days, whether each tenant's weekly cycle went out. Plan health and metric pace need
a roll-up of every active plan, so they are judged in an hourly sweep that one replica claims.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, select

from planner.domain.model import Health, TaskStatus, Tier, iso_week_of, iso_week_window
from planner.domain.rollup import PlanRollup
from planner.services.delegation import OverdueDelegation, overdue_delegations
from planner.services.outbox import Message, MessageKind, Outbox
from planner.services.plans import Plans
from planner.services.trigger_rules import (
    TenantTriggerRules,
    Trigger,
    TriggerRules,
    after_quiet_hours,
    local_moment,
)
from planner.store import Store, upsert
from planner.store.schema import conversations, firings, outbox, people, plan_health, plans, tasks

__all__ = [
    "TriggerEngine",
    "TriggerRules",
    "after_quiet_hours",
]

BUDGETED = (MessageKind.DEADLINE_APPROACHING, MessageKind.DEADLINE_SLIPPED)
"""The kinds that count against a person's daily budget (scheduled messages do not)."""
CONVERSATION = "conversation:"
"""Prefix of a recipient that is a conversation (a channel) rather than a person."""
SWEEP_TENANT = "*"


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

    async def _delegations_overdue(self, at: datetime, rules_of: Any, overdue: list[OverdueDelegation]) -> int:
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
        self, at: datetime, rules_of: Any, all_rules: Iterable[TriggerRules], *, skip: set[tuple[str, int]]
    ) -> int:
        today = at.date()
        first = today - timedelta(days=self.rules.catch_up_days)
        lead = max([self.rules.approaching_days, *(r.approaching_days for r in all_rules)])
        # Only tasks due near today are read: the cost follows what is due, not the size of the table.
        query = (
            select(
                tasks.c.id,
                tasks.c.tenant_id,
                tasks.c.title,
                tasks.c.owner,
                tasks.c.due_on,
                tasks.c.snoozed_until,
                plans.c.owner.label("plan_owner"),
                people.c.time_zone,
            )
            .join(plans, plans.c.id == tasks.c.plan_id)
            .outerjoin(
                people,
                and_(
                    people.c.tenant_id == tasks.c.tenant_id,
                    people.c.user_id == func.coalesce(tasks.c.owner, plans.c.owner),
                ),
            )
            .where(
                tasks.c.due_on >= first,
                tasks.c.due_on <= today + timedelta(days=lead),
                tasks.c.status != TaskStatus.DONE.value,
            )
        )
        async with self._store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            # Every candidate's key, not only the slipped ones': a steady tick then skips what already fired
            # instead of trying again, one failing transaction per task due soon.
            candidate_keys = [
                _key(Trigger.DEADLINE_SLIPPED if r.due_on < today else Trigger.DEADLINE_APPROACHING, r.id, r.due_on)
                for r in rows
            ]
            day_start = datetime.combine(today, time(), tzinfo=UTC)
            sent_today = {
                (tenant, recipient): n
                for tenant, recipient, n in await conn.execute(
                    select(outbox.c.tenant_id, outbox.c.recipient, func.count())
                    .where(outbox.c.created_at >= day_start, outbox.c.kind.in_(BUDGETED))
                    .group_by(outbox.c.tenant_id, outbox.c.recipient)
                )
            }
            nudged_at = {}
            if candidate_keys:
                found = await conn.execute(
                    select(firings.c.key, firings.c.fired_at).where(firings.c.key.in_(candidate_keys))
                )
                nudged_at = {key: fired_at for key, fired_at in found}
        fired = 0
        for row in rows:
            rules = rules_of(row.tenant_id)
            if row.snoozed_until is not None and row.snoozed_until > at:
                continue
            if (row.tenant_id, row.id) in skip and row.due_on < today:
                continue
            slipped = row.due_on < today
            trigger = Trigger.DEADLINE_SLIPPED if slipped else Trigger.DEADLINE_APPROACHING
            if not slipped and row.due_on > today + timedelta(days=rules.approaching_days):
                continue
            key = _key(trigger, row.id, row.due_on)
            since = nudged_at.get(key)
            if since is not None:
                if (
                    slipped
                    and row.owner
                    and row.owner != row.plan_owner
                    and rules.fires(Trigger.ESCALATION)
                    and at - since >= rules.escalate_after
                    and await self._escalate(row, at, rules)
                ):
                    fired += 1
                continue
            if not rules.fires(trigger):
                continue
            recipient = row.owner or row.plan_owner
            budget_key = (row.tenant_id, recipient)
            send_at = at
            if sent_today.get(budget_key, 0) >= rules.daily_budget:
                # Over today's budget: the first thing tomorrow morning (quiet hours end then).
                send_at = datetime.combine(today + timedelta(days=1), time(), tzinfo=UTC)
            message = Message(
                recipient=recipient,
                kind=MessageKind.DEADLINE_SLIPPED if slipped else MessageKind.DEADLINE_APPROACHING,
                payload={"task": row.id, "title": row.title, "due_on": row.due_on.isoformat()},
                not_before=after_quiet_hours(send_at, row.time_zone, rules),
            )
            if await self._outbox.fire(row.tenant_id, key, [message]):
                fired += 1
                sent_today[budget_key] = sent_today.get(budget_key, 0) + 1
        return fired

    async def _escalate(self, row: Any, at: datetime, rules: TriggerRules) -> bool:
        """Tell the plan's owner about a slipped task its owner left unanswered."""
        message = Message(
            recipient=row.plan_owner,
            kind=MessageKind.ESCALATION,
            payload={"task": row.id, "title": row.title, "due_on": row.due_on.isoformat(), "owner": row.owner},
            not_before=after_quiet_hours(at, None, rules),
        )
        return await self._outbox.fire(row.tenant_id, _key(Trigger.ESCALATION, row.id, row.due_on), [message])

    # ---- milestones -----------------------------------------------------------------------------------------

    async def _milestones(self, at: datetime, rules_of: Any) -> int:
        """A milestone done within the catch-up window is told to the leader (the master plan's owner)."""
        master = plans.alias("master")
        query = (
            select(
                tasks.c.id,
                tasks.c.tenant_id,
                tasks.c.title,
                tasks.c.owner,
                tasks.c.done_at,
                master.c.owner.label("leader"),
                people.c.time_zone,
            )
            .join(master, master.c.id == tasks.c.master_id)
            .outerjoin(people, and_(people.c.tenant_id == tasks.c.tenant_id, people.c.user_id == master.c.owner))
            .where(
                tasks.c.milestone.is_(True),
                tasks.c.done_at >= at - timedelta(days=self.rules.catch_up_days),
                tasks.c.done_at <= at,
                tasks.c.status == TaskStatus.DONE.value,
            )
        )
        async with self._store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        fired = 0
        for row in rows:
            rules = rules_of(row.tenant_id)
            if not rules.fires(Trigger.MILESTONE_COMPLETED) or row.owner == row.leader:
                continue
            message = Message(
                recipient=row.leader,
                kind=MessageKind.MILESTONE_COMPLETED,
                payload={"task": row.id, "title": row.title, "owner": row.owner, "done_at": row.done_at.isoformat()},
                not_before=after_quiet_hours(at, row.time_zone, rules),
            )
            if await self._outbox.fire(row.tenant_id, f"{Trigger.MILESTONE_COMPLETED}:task:{row.id}", [message]):
                fired += 1
        return fired

    # ---- the weekly cycle -----------------------------------------------------------------------------------

    async def _weekly_cycle(self, at: datetime, rules_of: Any) -> int:
        """Monday: each member's week and a summary in each channel; Friday: a review prompt and the digest.

        Evaluated from Monday to Wednesday (and Friday to Sunday), so a bot that was down on the day still sends
        each once; every person gets theirs at the configured hour of their own day.
        """
        today = at.date()
        week = iso_week_of(today)
        window = iso_week_window(week)
        if today.weekday() <= 2:
            phase, day = "weekly_start", window.start
        elif today.weekday() >= 4:
            phase, day = "weekly_review", window.start + timedelta(days=4)
        else:
            return 0
        key = f"{phase}:{week}"
        async with self._store.engine.connect() as conn:
            active = set(
                (
                    await conn.execute(
                        select(plans.c.tenant_id)
                        .where(
                            plans.c.tier == Tier.MASTER.value,
                            plans.c.starts_on <= window.end,
                            plans.c.ends_on >= window.start,
                        )
                        .distinct()
                    )
                ).scalars()
            )
            done = set(
                (
                    await conn.execute(
                        select(firings.c.tenant_id).where(firings.c.key == key, firings.c.tenant_id.in_(active))
                    )
                ).scalars()
            )
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
        async with self._store.engine.connect() as conn:
            members = set(
                (
                    await conn.execute(
                        select(tasks.c.owner)
                        .where(
                            tasks.c.tenant_id == tenant_id,
                            tasks.c.owner.is_not(None),
                            tasks.c.status != TaskStatus.DONE.value,
                            tasks.c.due_on <= window.end,
                            tasks.c.due_on >= window.start - timedelta(days=self.rules.catch_up_days * 4),
                        )
                        .distinct()
                    )
                ).scalars()
            )
            leaders = set(
                (
                    await conn.execute(
                        select(plans.c.owner)
                        .where(
                            plans.c.tenant_id == tenant_id,
                            plans.c.tier == Tier.MASTER.value,
                            plans.c.starts_on <= window.end,
                            plans.c.ends_on >= window.start,
                        )
                        .distinct()
                    )
                ).scalars()
            )
            zones = dict(
                (
                    await conn.execute(
                        select(people.c.user_id, people.c.time_zone).where(
                            people.c.tenant_id == tenant_id, people.c.user_id.in_(members | leaders)
                        )
                    )
                ).all()
            )
            channels = (
                await conn.execute(
                    select(conversations.c.conversation_id).where(
                        conversations.c.tenant_id == tenant_id, conversations.c.kind == "channel"
                    )
                )
            ).scalars()
            channel_ids = sorted(channels)
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

    async def _sweep(self, at: datetime, rules_of: Any) -> int:
        today = at.date()
        async with self._store.engine.connect() as conn:
            masters = (
                await conn.execute(
                    select(plans.c.id, plans.c.tenant_id).where(
                        plans.c.tier == Tier.MASTER.value, plans.c.starts_on <= today, plans.c.ends_on >= today
                    )
                )
            ).all()
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
        judged = [rollup, *rollup.children]  # master and tactical plans: weekly plans change too often to tell
        async with self._store.engine.connect() as conn:
            known = dict(
                (
                    await conn.execute(
                        select(plan_health.c.plan_id, plan_health.c.health).where(
                            plan_health.c.plan_id.in_([r.plan.id for r in judged])
                        )
                    )
                ).all()
            )
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
                    "reasons": list(item.reasons[:3]),
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
                key = f"{Trigger.PLAN_HEALTH}:plan:{item.plan.id}:{before}->{now}:{at.date().isoformat()}"
                if await self._outbox.fire(tenant_id, key, messages):
                    fired += 1
            await self._remember_health(tenant_id, item.plan.id, Health(now), at)
        return fired

    async def _remember_health(self, tenant_id: str, plan_id: int, health: Health, at: datetime) -> None:
        async with self._store.transaction() as conn:
            await upsert(
                conn,
                plan_health,
                plan_health.c.plan_id == plan_id,
                dict(health=health.value, checked_at=at),
                dict(plan_id=plan_id, tenant_id=tenant_id, health=health.value, checked_at=at),
            )

    async def _drift(self, tenant_id: str, rollup: PlanRollup, at: datetime, rules: TriggerRules) -> int:
        """A metric behind its straight-line pace beyond its tolerance is told to its plan's owner, weekly."""
        fired = 0
        week = iso_week_of(at.date())
        for item in [rollup, *rollup.children]:
            for pace in item.metrics:
                if pace.health is Health.ON_TRACK:
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
                    "reason": pace.reason,
                }
                message = Message(
                    recipient=item.plan.owner,
                    kind=MessageKind.METRIC_DRIFT,
                    payload=payload,
                    not_before=after_quiet_hours(at, None, rules),
                )
                if await self._outbox.fire(
                    tenant_id, f"{Trigger.METRIC_DRIFT}:metric:{pace.metric.id}:{week}", [message]
                ):
                    fired += 1
        return fired


def _key(trigger: str, task_id: int, due_on: date) -> str:
    return f"{trigger}:task:{task_id}:{due_on.isoformat()}"
