"""Closed loop: a tactical plan's retrospective, saved as a playbook that seeds the next tactical plan.

The retrospective compares each KPI's result with its target, lists what slipped and why (late or still open,
with the reason given when it was blocked), and says which agents helped (their delegations succeeded) or got in
the way (they failed), and which policy rules stopped or held actions of the plan.

A playbook keeps the plan's task template (each task's title, its day within the plan, milestone or not, its
owner and the approver role that owner holds), and its KPIs with targets adjusted by what was learned: the way
from baseline to target is scaled by the share of it the plan achieved, between ADJUST_FLOOR and ADJUST_CEILING.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from planner.domain.errors import Expected, Field, InvalidValue, PlannerError
from planner.domain.measurement import attainment
from planner.domain.messages import Message, MessageKind
from planner.domain.model import MetricSpec, Plan, Tier, Window
from planner.services.decisions import DecisionLog
from planner.services.measurement import Measurement
from planner.services.outbox import Outbox
from planner.services.plans import Plans
from planner.store import Store
from planner.store.playbooks import (
    first_role_of_each_user,
    insert_playbook,
    playbook_contents,
    playbook_names,
    unannounced_ended_plans,
)

ADJUST_FLOOR = 0.5
ADJUST_CEILING = 1.25


class PlaybookNotFound(PlannerError, LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = tuple(sorted(known))
        super().__init__(f"no playbook named {name!r}")


@dataclass(frozen=True, kw_only=True)
class Retrospective:
    plan: Plan
    results: tuple[dict[str, Any], ...]
    """Per KPI: name, unit, baseline, target, result (None without a reading), attainment."""
    slipped: tuple[dict[str, Any], ...]
    """Per late task: task, title, due and done (ISO dates; done None while open), blocked (the reason given when it
    was blocked, or None)."""
    agents: dict[str, dict[str, int]]
    """Per agent: succeeded, failed."""
    policies: dict[str, int]
    """Per policy rule: actions of the plan it stopped or held."""

    def lessons(self) -> dict[str, Any]:
        """What a playbook keeps of it, as JSON data."""
        return {
            "results": list(self.results),
            "slipped": list(self.slipped),
            "agents": self.agents,
            "policies": self.policies,
        }


class Playbooks:
    """Retrospectives and playbooks of one tenant."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self.tenant_id = tenant_id
        self.plans = Plans(store, tenant_id)

    async def retrospective(self, plan_id: int, as_of: date | None = None) -> Retrospective:
        """The retrospective of a tactical plan as of `as_of` (its end by default). Raises PlanNotFound."""
        plan = await self.plans.get_plan(plan_id, Tier.TACTICAL)
        day = min(as_of or plan.window.end, plan.window.end)
        facts = await Measurement(self._store, self.tenant_id).facts(plan.id)
        results = []
        for series in (s for s in facts.series if s.plan.id == plan.id):
            got = attainment(series, day)
            results.append(
                {
                    "name": series.metric.name,
                    "unit": series.metric.unit,
                    "baseline": series.metric.baseline,
                    "target": series.metric.target,
                    "tolerance": series.metric.tolerance,
                    "result": got.actual,
                    "attainment": got.against_target,
                }
            )
        slipped = []
        for task in (t for t in facts.tasks if t.plan_id == plan.id):
            done = task.done_at.date() if task.done_at else None
            if done is not None and done <= task.due_on:
                continue
            if done is None and task.due_on >= day:
                continue
            slipped.append(
                {
                    "task": task.id,
                    "title": task.title,
                    "due": task.due_on.isoformat(),
                    "done": done.isoformat() if done else None,
                    "blocked": task.blocked_reason or None,
                }
            )
        agents: dict[str, dict[str, int]] = {}
        plan_tasks = {t.id for t in facts.tasks if t.plan_id == plan.id}
        for delegation in (d for d in facts.delegations if d.task_id in plan_tasks):
            record = agents.setdefault(delegation.adapter, {"succeeded": 0, "failed": 0})
            if delegation.status in record:
                record[delegation.status] += 1
        policies: dict[str, int] = {}
        for entry in await DecisionLog(self._store, self.tenant_id).entries(plan=plan.id):
            if entry.verdict in ("stop", "flag"):
                for rule in entry.rules:
                    policies[rule] = policies.get(rule, 0) + 1
        return Retrospective(
            plan=plan,
            results=tuple(results),
            slipped=tuple(slipped),
            agents=agents,
            policies=dict(sorted(policies.items())),
        )

    async def save(self, plan_id: int, name: str, *, actor: str) -> dict[str, Any]:
        """Save the plan's retrospective as the playbook `name`; returns its content. Raises InvalidValue."""
        name = " ".join(name.split()).lower()
        if not name or len(name) > 100:
            raise InvalidValue(Field.PLAYBOOK_NAME, name, Expected.PLAYBOOK_NAME)
        retro = await self.retrospective(plan_id)
        async with self._store.read() as conn:
            roles = await first_role_of_each_user(conn, self.tenant_id)
        tasks = [
            {
                "title": t.title,
                "offset_days": (t.due_on - retro.plan.window.start).days,
                "milestone": t.milestone,
                "owner": t.owner,
                "role": roles.get(t.owner or ""),
            }
            for t in await self.plans.list_tasks(plan_id)
        ]
        metrics = []
        for r in retro.results:
            share = r["attainment"]
            scale = 1.0 if share is None else min(max(share, ADJUST_FLOOR), ADJUST_CEILING)
            target = r["baseline"] + (r["target"] - r["baseline"]) * scale
            metrics.append(
                {
                    **{k: r[k] for k in ("name", "unit", "baseline", "tolerance")},
                    "target": target,
                    "reached": share,
                    "scale": scale,
                }
            )
        content = {
            "window_days": retro.plan.window.days,
            "tasks": tasks,
            "metrics": metrics,
            "lessons": retro.lessons(),
        }
        async with self._store.transaction() as conn:
            saved = await insert_playbook(
                conn,
                tenant_id=self.tenant_id,
                name=name,
                source_plan_id=plan_id,
                content=content,
                created_by=actor,
                created_at=self._store.clock(),
            )
            if not saved:
                raise InvalidValue(Field.PLAYBOOK_NAME, name, Expected.UNUSED_NAME)
        return content

    async def names(self) -> list[str]:
        async with self._store.read() as conn:
            return await playbook_names(conn, self.tenant_id)

    async def get(self, name: str) -> dict[str, Any]:
        """Raises PlaybookNotFound listing the saved ones."""
        async with self._store.read() as conn:
            contents = await playbook_contents(conn, self.tenant_id)
        wanted = " ".join(name.split()).lower()
        if wanted in contents:
            return contents[wanted]
        raise PlaybookNotFound(name, list(contents))

    async def seed(self, name: str, master_id: int, *, title: str, owner: str, start: date, actor: str) -> Plan:
        """A new tactical plan under `master_id` from the playbook: its window's length, KPIs and tasks (each on
        the same day of the plan, kept inside the master's window). Raises PlaybookNotFound, PlanNotFound,
        WindowConflict."""
        content = await self.get(name)
        master = await self.plans.get_plan(master_id, Tier.MASTER)
        end = min(start + timedelta(days=int(content["window_days"]) - 1), master.window.end)
        plan = await self.plans.create_tactical_plan(
            master.id,
            title=title,
            owner=owner,
            window=Window(start=start, end=end),
            metrics=[
                MetricSpec(
                    name=m["name"], unit=m["unit"], baseline=m["baseline"], target=m["target"], tolerance=m["tolerance"]
                )
                for m in content["metrics"]
            ],
            actor=actor,
        )
        for task in content["tasks"]:
            due = min(start + timedelta(days=int(task["offset_days"])), end)
            await self.plans.add_task(
                plan.id,
                title=task["title"],
                due_on=max(due, start),
                owner=task["owner"],
                milestone=bool(task["milestone"]),
                actor=actor,
            )
        return plan


CATCH_UP = timedelta(days=7)
"""A plan that ended while the bot was down still gets its retrospective if it ended at most this long ago."""


async def announce_ended_plans(store: Store, at: datetime) -> int:
    """Queue the retrospective of every tactical plan that ended before `at`'s day (once per plan, whatever the
    number of replicas: the outbox's firing key decides). Returns how many plans were announced."""
    today = at.date()
    async with store.read() as conn:
        ended = await unannounced_ended_plans(conn, ended_before=today, ended_since=today - CATCH_UP)
    outbox = Outbox(store)
    announced = 0
    for plan in ended:
        recipients = sorted({plan.owner, plan.leader})
        payload = {"plan": plan.plan_id}
        messages = [Message(recipient=r, kind=MessageKind.RETROSPECTIVE, payload=payload) for r in recipients]
        if await outbox.fire(plan.tenant_id, f"retrospective:plan:{plan.plan_id}", messages):
            announced += 1
    return announced
