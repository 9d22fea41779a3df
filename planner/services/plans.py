"""Plans, tasks and KPIs of one tenant: the use cases that create, edit, list and roll them up.

Every method reads and writes that tenant's rows only. Every change is written in one transaction together with its
event. Edits are optimistic: each row carries a version, and an update only lands on the version it read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, overload

from planner.domain.derivation import weekly_selection
from planner.domain.errors import (
    Dated,
    Expected,
    Field,
    InvalidValue,
    MetricNotFound,
    NothingToUndo,
    PlanNotFound,
    StaleEdit,
    StaleUndo,
    TaskNotFound,
    TenantMismatch,
    UndoNeedsLeader,
)
from planner.domain.kpis import counts_gain, kpi_id_of, share_of
from planner.domain.model import (
    Event,
    Metric,
    MetricReading,
    MetricSpec,
    Plan,
    Task,
    TaskChanges,
    Tier,
    WeeklyItem,
    Window,
    iso_week_window,
)
from planner.domain.plans import (
    active_plan,
    apply_task_changes,
    clean_text,
    require_archivable,
    require_due_inside,
    require_metric_home,
    require_reading_value,
    require_task_home,
    require_window_change,
    task_event_kind,
    task_in_snapshot,
    week_of_tactical,
)
from planner.domain.rollup import OwnedRollup, PlanRollup, roll_up_tree
from planner.domain.snapshots import snapshot
from planner.store import Connection, Store, rollups
from planner.store import events as event_log
from planner.store import kpis as kpi_rows
from planner.store import plans as plan_rows
from planner.store import tasks as task_rows

TARGETS = "targets"
"""The key of a plan event's `before` and `after` that holds its KPIs' targets by name, when the change set some: a
master plan's goals change as one (north star, window, constraints, targets), and are undone as one."""
EDIT_ATTEMPTS = 20
"""How often `edit_task` reads and writes again when other writers keep changing the task in between."""
UNDO_WINDOW = timedelta(minutes=10)
"""How long a deleted task can be brought back with `restore_task`, and an edit taken back with `undo`."""
UNDOABLE_TASK_FIELDS = ("title", "due_on", "owner", "plan_id", "milestone")
UNDOABLE_PLAN_FIELDS = ("title", "owner", "window", "constraints", "archived_at", TARGETS)
UNDOABLE_KINDS = ("task.updated", "task.assigned", "task.moved", "task.deleted", "plan.updated", "plan.archived")
"""The changes `undo` takes back: the fixes people make (a status change is undone by setting the status again)."""
UNDO_KINDS = {"task": "task.undone", "plan": "plan.undone"}
UNDOES = "undoes"
"""The key of an undo event's `after` that holds the id of the event it took back."""


@dataclass(frozen=True, kw_only=True)
class UndoneChange:
    """What `undo` took back: the object as it is now, the fields it restored (none for a deletion: the whole task
    came back), and for a deleted task the id it had."""

    subject: Task | Plan
    fields: tuple[str, ...]
    deleted: bool
    was_id: int


def _undoable_fields(event: Event) -> tuple[str, ...]:
    """The fields an edit's event changed that `undo` puts back (none: nothing of it to undo)."""
    if event.before is None or event.after is None:
        return ()
    names = UNDOABLE_TASK_FIELDS if event.subject_type == "task" else UNDOABLE_PLAN_FIELDS
    return tuple(name for name in names if event.before.get(name) != event.after.get(name))


def _plan_fields(picture: dict[str, object], fields: tuple[str, ...]) -> dict[str, Any]:
    """The values of `fields` in a plan's snapshot, as a Plan holds them."""
    values: dict[str, Any] = {}
    for field in fields:
        value = picture.get(field)
        if field == "window" and isinstance(value, dict):
            values[field] = Window(
                start=date.fromisoformat(str(value["start"])), end=date.fromisoformat(str(value["end"]))
            )
        elif field == "constraints":
            values[field] = tuple(str(c) for c in value) if isinstance(value, list) else ()
        elif field == "archived_at":
            values[field] = datetime.fromisoformat(str(value)) if value else None
        elif field == TARGETS:
            continue  # not a field of the plan's row: its metrics' targets
        else:
            values[field] = value
    return values


class Plans:
    """Plans, tasks and metrics of one tenant (the Teams tenant id). Raises InvalidValue for a blank tenant id."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        if not tenant_id or not tenant_id.strip():
            raise InvalidValue(Field.TENANT_ID, tenant_id, Expected.TEAMS_TENANT_ID)
        self._store = store
        self.tenant_id = tenant_id

    def _now(self) -> datetime:
        return self._store.clock()

    def _check_tenant(self, value: Plan | Task | Metric) -> None:
        if value.tenant_id != self.tenant_id:
            raise TenantMismatch(self.tenant_id, value.tenant_id)

    async def _record(
        self,
        conn: Connection,
        *,
        actor: str,
        kind: str,
        subject: Plan | Task | Metric | MetricReading,
        before: Plan | Task | Metric | MetricReading | None,
    ) -> None:
        subject_type = kind.split(".", 1)[0]
        await event_log.record(
            conn,
            tenant_id=self.tenant_id,
            at=self._now(),
            actor=actor,
            kind=kind,
            subject_type=subject_type,
            subject_id=subject.id,
            before=snapshot(before) if before is not None else None,
            after=snapshot(subject),
        )

    # ---- plans ---------------------------------------------------------------------------------------------

    async def _plan_row(self, conn: Connection, plan_id: int, tier: Tier | None = None) -> Plan:
        plan = await plan_rows.get(conn, self.tenant_id, plan_id)
        if plan is None or (tier is not None and plan.tier is not tier):
            raise PlanNotFound(plan_id, tier.value if tier else None)
        return plan

    async def get_plan(self, plan_id: int, tier: Tier | None = None) -> Plan:
        """The plan with this id. Raises PlanNotFound (also for another tier when `tier` is given)."""
        async with self._store.read() as conn:
            return await self._plan_row(conn, plan_id, tier)

    async def list_plans(
        self, tier: Tier | None = None, *, parent_id: int | None = None, archived: bool = False
    ) -> list[Plan]:
        """Plans of the tenant, optionally of one tier or under one parent, oldest window first; archived plans
        too only with `archived`."""
        async with self._store.read() as conn:
            return await plan_rows.listed(conn, self.tenant_id, tier, parent_id=parent_id, archived=archived)

    async def _insert_plan(
        self,
        conn: Connection,
        *,
        tier: Tier,
        parent: Plan | None,
        title: str,
        owner: str,
        window: Window,
        constraints: Sequence[str] = (),
        iso_week: str | None = None,
        actor: str,
    ) -> Plan:
        plan = await plan_rows.insert_plan(
            conn,
            self.tenant_id,
            tier=tier,
            parent=parent,
            title=clean_text(Field.TITLE, title),
            owner=clean_text(Field.OWNER, owner, limit=200),
            window=window,
            constraints=[clean_text(Field.CONSTRAINT, c) for c in constraints],
            iso_week=iso_week,
            created_at=self._now(),
        )
        await self._record(conn, actor=actor, kind=f"plan.created.{tier.value}", subject=plan, before=None)
        return plan

    async def create_master_plan(
        self,
        *,
        title: str,
        owner: str,
        window: Window,
        constraints: Sequence[str] = (),
        metrics: Sequence[MetricSpec] = (),
        actor: str,
    ) -> Plan:
        """A new master plan (the north star) with its KPI metrics, in one transaction."""
        for spec in metrics:
            spec.validate()
        async with self._store.transaction() as conn:
            plan = await self._insert_plan(
                conn,
                tier=Tier.MASTER,
                parent=None,
                title=title,
                owner=owner,
                window=window,
                constraints=constraints,
                actor=actor,
            )
            for spec in metrics:
                await self._insert_metric(conn, plan, spec, actor=actor)
            return plan

    async def create_tactical_plan(
        self,
        master_id: int,
        *,
        title: str,
        owner: str,
        window: Window,
        constraints: Sequence[str] = (),
        metrics: Sequence[MetricSpec] = (),
        actor: str,
    ) -> Plan:
        """A tactical plan under a master plan. Raises WindowConflict if its window leaves the master's."""
        for spec in metrics:
            spec.validate()
        async with self._store.transaction() as conn:
            master = await self._plan_row(conn, master_id, Tier.MASTER)
            window.require_inside(
                master.window,
                what=Dated(kind="plan", tier=Tier.TACTICAL),
                parent_name=Dated(kind="plan", tier=Tier.MASTER, ref=master.id),
            )
            plan = await self._insert_plan(
                conn,
                tier=Tier.TACTICAL,
                parent=master,
                title=title,
                owner=owner,
                window=window,
                constraints=constraints,
                actor=actor,
            )
            for spec in metrics:
                await self._insert_metric(conn, plan, spec, actor=actor)
            return plan

    async def update_plan(
        self,
        plan_id: int,
        *,
        title: str | None = None,
        owner: str | None = None,
        window: Window | None = None,
        constraints: Sequence[str] | None = None,
        targets: Mapping[int, float] | None = None,
        expected_version: int | None = None,
        actor: str,
    ) -> Plan:
        """Edit a plan. A new window must stay inside the parent's and keep children and due dates inside it.

        `targets`: new targets of the plan's own KPIs, by metric id, set in the same change (one event of the plan
        holds them before and after, so `undo` takes the whole change back). Raises PlanNotFound, StaleEdit,
        WindowConflict, MetricNotFound (a metric of another plan) or InvalidValue (a target the KPI cannot have).
        """
        async with self._store.transaction() as conn:
            before = await self._plan_row(conn, plan_id)
            if expected_version is not None and expected_version != before.version:
                raise StaleEdit("Plan", plan_id, expected_version, before.version)
            after = replace(
                before,
                title=clean_text(Field.TITLE, title) if title is not None else before.title,
                owner=clean_text(Field.OWNER, owner, limit=200) if owner is not None else before.owner,
                window=window or before.window,
                constraints=tuple(clean_text(Field.CONSTRAINT, c) for c in constraints)
                if constraints is not None
                else before.constraints,
                version=before.version + 1,
            )
            if window is not None and window != before.window:
                await self._check_window_change(conn, before, window)
            if not await plan_rows.update_plan(conn, after, seen_version=before.version):
                raise StaleEdit("Plan", plan_id, before.version, None)
            if not targets:
                await self._record(conn, actor=actor, kind="plan.updated", subject=after, before=before)
                return after
            was = await self._targets_of(conn, before)
            await self._set_targets(conn, before, targets, actor=actor)
            await self._record_pictures(
                conn,
                actor=actor,
                kind="plan.updated",
                subject=("plan", after.id),
                before=snapshot(before) | {TARGETS: was},
                after=snapshot(after) | {TARGETS: await self._targets_of(conn, after)},
            )
            return after

    async def _targets_of(self, conn: Connection, plan: Plan) -> dict[str, float]:
        """The targets of a plan's own KPIs, by name."""
        return {m.name: m.target for m in await kpi_rows.of_plan(conn, self.tenant_id, plan.id)}

    async def _set_targets(self, conn: Connection, plan: Plan, targets: Mapping[int, float], *, actor: str) -> None:
        """Set KPIs of `plan` to new targets (by metric id), each with its own event."""
        for metric_id, target in targets.items():
            metric = await kpi_rows.get(conn, self.tenant_id, metric_id)
            if metric is None or metric.plan_id != plan.id:
                raise MetricNotFound(metric_id, plan.id)
            await self._write_target(conn, metric, target, actor=actor)

    async def _write_target(self, conn: Connection, before: Metric, target: float, *, actor: str) -> Metric:
        spec = MetricSpec(
            name=before.name,
            target=target,
            unit=before.unit,
            baseline=before.baseline,
            direction=before.direction,
            tolerance=before.tolerance,
        )
        spec.validate()
        after = replace(before, target=target, version=before.version + 1)
        await kpi_rows.set_target(conn, after)
        await self._record(conn, actor=actor, kind="metric.updated", subject=after, before=before)
        return after

    async def _record_pictures(
        self,
        conn: Connection,
        *,
        actor: str,
        kind: str,
        subject: tuple[str, int],
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        """An event whose pictures hold more than the subject's snapshot (a plan's KPI targets, the event undone)."""
        await event_log.record(
            conn,
            tenant_id=self.tenant_id,
            at=self._now(),
            actor=actor,
            kind=kind,
            subject_type=subject[0],
            subject_id=subject[1],
            before=before,
            after=after,
        )

    async def archive_plan(
        self, plan_id: int, *, archived: bool = True, expected_version: int | None = None, actor: str
    ) -> Plan:
        """Archive a tactical or weekly plan (hidden from lists and defaults, kept with its history), or bring it
        back with `archived=False`. Raises PlanNotFound, InvalidValue (a master plan) or StaleEdit."""
        async with self._store.transaction() as conn:
            before = await self._plan_row(conn, plan_id)
            require_archivable(before)
            if expected_version is not None and expected_version != before.version:
                raise StaleEdit("Plan", plan_id, expected_version, before.version)
            if (before.archived_at is not None) == archived:
                return before
            after = replace(before, archived_at=self._now() if archived else None, version=before.version + 1)
            if not await plan_rows.set_archived(conn, after, seen_version=before.version):
                raise StaleEdit("Plan", plan_id, before.version, None)
            kind = "plan.archived" if archived else "plan.unarchived"
            await self._record(conn, actor=actor, kind=kind, subject=after, before=before)
            return after

    async def _check_window_change(self, conn: Connection, plan: Plan, window: Window) -> None:
        parent: Plan | None = None
        children: list[Plan] = []
        task_outside: Task | None = None
        if plan.tier is not Tier.WEEKLY:  # a weekly plan's window never changes: nothing to read
            parent = await self._plan_row(conn, plan.parent_id) if plan.parent_id is not None else None
            children = await plan_rows.children(conn, self.tenant_id, plan.id)
            if plan.tier is Tier.TACTICAL:
                task_outside = await task_rows.one_due_outside(conn, self.tenant_id, plan.id, window)
        require_window_change(plan, window, parent=parent, children=children, task_outside=task_outside)

    # ---- weekly plans --------------------------------------------------------------------------------------

    async def derive_weekly_plan(self, tactical_id: int, iso_week: str, *, actor: str) -> tuple[Plan, list[WeeklyItem]]:
        """The weekly plan of `iso_week` under a tactical plan, created or refreshed by the derivation rules.

        Idempotent: deriving again adds tasks that became due that week and never removes a task.
        Raises PlanNotFound, InvalidValue (bad week) or WindowConflict (week outside the tactical plan).
        """
        week = iso_week_window(iso_week)
        iso_week = f"{week.start.isocalendar().year}-W{week.start.isocalendar().week:02d}"
        async with self._store.transaction() as conn:
            tactical = await self._plan_row(conn, tactical_id, Tier.TACTICAL)
            week = week_of_tactical(week, iso_week, tactical)
            weekly = await plan_rows.weekly_of(conn, self.tenant_id, tactical.id, iso_week)
            if weekly is None:
                weekly = await self._insert_plan(
                    conn,
                    tier=Tier.WEEKLY,
                    parent=tactical,
                    title=f"{tactical.title}, week {iso_week}",
                    owner=tactical.owner,
                    window=week,
                    iso_week=iso_week,
                    actor=actor,
                )
            selection = weekly_selection(await task_rows.for_week(conn, self.tenant_id, tactical.id, week), week)
            present = await plan_rows.weekly_task_ids(conn, weekly.id)
            new_items = [item for item in selection if item.task.id not in present]
            if new_items:
                await plan_rows.add_weekly_items(conn, weekly, new_items)
                await event_log.record(
                    conn,
                    tenant_id=self.tenant_id,
                    at=self._now(),
                    actor=actor,
                    kind="plan.derived.weekly",
                    subject_type="plan",
                    subject_id=weekly.id,
                    before={"task_ids": sorted(present)},
                    after={"task_ids": sorted(present | {i.task.id for i in new_items})},
                )
            return weekly, await plan_rows.weekly_items_of(conn, self.tenant_id, weekly.id)

    async def weekly_items(self, weekly_id: int) -> list[WeeklyItem]:
        """The tasks of a weekly plan, carried-over ones first. Raises PlanNotFound."""
        async with self._store.read() as conn:
            await self._plan_row(conn, weekly_id, Tier.WEEKLY)
            return await plan_rows.weekly_items_of(conn, self.tenant_id, weekly_id)

    # ---- tasks ---------------------------------------------------------------------------------------------

    async def add_task(
        self,
        plan_id: int,
        *,
        title: str,
        due_on: date,
        owner: str | None = None,
        milestone: bool = False,
        actor: str,
    ) -> Task:
        """A new task in a tactical plan, or in a weekly plan (then it belongs to that week's tactical plan).

        Raises PlanNotFound, InvalidValue (a master plan: tasks go into tactical plans) or WindowConflict.
        """
        async with self._store.transaction() as conn:
            plan = await self._plan_row(conn, plan_id)
            weekly: Plan | None = None
            require_task_home(plan)
            if plan.tier is Tier.WEEKLY:
                weekly, plan = plan, await self._plan_row(conn, plan.parent_id or 0, Tier.TACTICAL)
            require_due_inside(due_on, weekly or plan)
            task = await task_rows.insert_task(
                conn,
                self.tenant_id,
                plan_id=plan.id,
                master_id=plan.master_id,
                title=clean_text(Field.TITLE, title),
                owner=clean_text(Field.OWNER, owner, limit=200) if owner else None,
                due_on=due_on,
                milestone=milestone,
                created_at=self._now(),
            )
            await self._record(conn, actor=actor, kind="task.created", subject=task, before=None)
            week_plan = weekly or await plan_rows.week_containing(conn, self.tenant_id, plan.id, due_on)
            if week_plan is not None:
                await plan_rows.add_weekly_items(conn, week_plan, [WeeklyItem(task=task, carried_over=False)])
            return task

    async def _task_row(self, conn: Connection, task_id: int) -> Task:
        task = await task_rows.get(conn, self.tenant_id, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    async def get_task(self, task_id: int) -> Task:
        """The task with this id. Raises TaskNotFound."""
        async with self._store.read() as conn:
            return await self._task_row(conn, task_id)

    async def tasks_by_id(self, task_ids: Iterable[int]) -> dict[int, Task]:
        """The tasks with these ids, in one query (ids of no task of the tenant are left out)."""
        wanted = sorted(set(task_ids))
        if not wanted:
            return {}
        async with self._store.read() as conn:
            return await task_rows.by_id(conn, self.tenant_id, wanted)

    async def plans_by_id(self, plan_ids: Iterable[int]) -> dict[int, Plan]:
        """The plans with these ids, in one query (ids of no plan of the tenant are left out)."""
        wanted = sorted(set(plan_ids))
        if not wanted:
            return {}
        async with self._store.read() as conn:
            return await plan_rows.by_id(conn, self.tenant_id, wanted)

    async def list_tasks(self, plan_id: int) -> list[Task]:
        """The tasks of a tactical plan, or of a weekly plan, or of all tactical plans under a master plan."""
        async with self._store.read() as conn:
            plan = await self._plan_row(conn, plan_id)
            if plan.tier is Tier.WEEKLY:
                return [item.task for item in await plan_rows.weekly_items_of(conn, self.tenant_id, plan.id)]
            if plan.tier is Tier.MASTER:
                return await task_rows.of_master(conn, self.tenant_id, plan.id)
            return await task_rows.of_plan(conn, self.tenant_id, plan.id)

    async def tasks_due(
        self, start: date, end: date, *, open_only: bool = True, owner: str | None = None, limit: int | None = None
    ) -> list[Task]:
        """Tasks due between `start` and `end` inclusive, by due date; open ones only unless told otherwise."""
        Window(start=start, end=end)
        async with self._store.read() as conn:
            return await task_rows.due(conn, self.tenant_id, start, end, open_only=open_only, owner=owner, limit=limit)

    async def tasks_of_owner(self, owner: str, *, open_only: bool = True) -> list[Task]:
        """A person's tasks across all plans, by due date."""
        async with self._store.read() as conn:
            return await task_rows.of_owner(conn, self.tenant_id, owner, open_only=open_only)

    async def update_task(
        self, task_id: int, changes: TaskChanges, *, actor: str, expected_version: int | None = None
    ) -> Task:
        """Apply `changes` to a task and record the event.

        With `expected_version`, the edit lands only on that version (else StaleEdit): for a person who edited
        what they saw. Without it, the changes are applied to whatever version is current, retried on a
        concurrent write, so concurrent edits of different fields never lose one another. A new `plan_id` moves
        the task to that tactical plan (or the tactical plan of that weekly plan), in the same event.
        Raises TaskNotFound, PlanNotFound, InvalidValue (a master plan), WindowConflict (due date outside the plan),
        StaleEdit.
        """
        if changes.plan_id is not None:
            return await self._move_task(task_id, changes, actor=actor, expected_version=expected_version)
        return await self.edit_task(
            task_id,
            lambda task: apply_task_changes(task, changes, self._now()),
            actor=actor,
            expected_version=expected_version,
        )

    async def _move_task(self, task_id: int, changes: TaskChanges, *, actor: str, expected_version: int | None) -> Task:
        assert changes.plan_id is not None
        async with self._store.transaction() as conn:
            before = await self._task_row(conn, task_id)
            if expected_version is not None and before.version != expected_version:
                raise StaleEdit("Task", task_id, expected_version, before.version)
            home = await self._plan_row(conn, changes.plan_id)
            require_task_home(home)
            weekly: Plan | None = None
            if home.tier is Tier.WEEKLY:
                weekly, home = home, await self._plan_row(conn, home.parent_id or 0, Tier.TACTICAL)
            after = apply_task_changes(before, changes, self._now())
            after = replace(after, plan_id=home.id, master_id=home.master_id or home.id, version=before.version + 1)
            require_due_inside(after.due_on, weekly or home)
            if not await task_rows.update_task(conn, after, seen_version=before.version):
                raise StaleEdit("Task", task_id, before.version, None)
            await self._rehome_in_weeks(conn, before, after)
            await self._record(conn, actor=actor, kind=task_event_kind(before, after), subject=after, before=before)
            return after

    async def _rehome_in_weeks(self, conn: Connection, before: Task, after: Task) -> None:
        """A task moved to another plan or week leaves the weekly plans that no longer hold it and joins the one of
        its new week, if that week was derived."""
        if before.plan_id == after.plan_id and before.due_on == after.due_on:
            return
        await plan_rows.leave_other_weeks(conn, after)
        week = await plan_rows.week_containing(conn, self.tenant_id, after.plan_id, after.due_on)
        if week is not None and after.id not in await plan_rows.weekly_task_ids(conn, week.id):
            await plan_rows.add_weekly_items(conn, week, [WeeklyItem(task=after, carried_over=False)])

    async def delete_task(self, task_id: int, *, actor: str) -> Task:
        """Remove a task; the event keeps what it was (`restore_task` brings it back). Raises TaskNotFound."""
        async with self._store.transaction() as conn:
            task = await self._task_row(conn, task_id)
            if not await task_rows.delete_task(conn, task):
                raise TaskNotFound(task_id)
            await event_log.record(
                conn,
                tenant_id=self.tenant_id,
                at=self._now(),
                actor=actor,
                kind="task.deleted",
                subject_type="task",
                subject_id=task.id,
                before=snapshot(task),
                after=None,
            )
            return task

    async def restore_task(
        self, task_id: int | None, *, actor: str, window: timedelta = UNDO_WINDOW
    ) -> tuple[Task, int]:
        """Bring back a task deleted within `window`: `task_id`, or the one `actor` deleted last; returns it and the
        id it had. It keeps that id when it is free, else gets a new one. Raises NothingToUndo, PlanNotFound (its plan
        went too) or WindowConflict (its plan's window no longer holds its due date)."""
        since = self._now() - window
        async with self._store.transaction() as conn:
            deletions = await event_log.of_kind_since(
                conn,
                self.tenant_id,
                "task.deleted",
                since,
                subject_id=task_id,
                actor=actor if task_id is None else None,
            )
            undone = await self._undone_since(conn, since)
            deletion = next((e for e in deletions if e.before and e.id not in undone), None)
            if deletion is None:
                raise NothingToUndo(task_id, int(window.total_seconds() // 60))
            return await self._restore(conn, deletion, actor=actor)

    async def _undone_since(self, conn: Connection, since: datetime) -> set[int]:
        """The ids of the events undone since `since`: deletions restored, edits taken back."""
        undos = await event_log.of_kind_since(conn, self.tenant_id, ("task.restored", *UNDO_KINDS.values()), since)
        done: set[int] = set()
        deletions = await event_log.of_kind_since(conn, self.tenant_id, "task.deleted", since)
        for undo in undos:
            if undo.kind == "task.restored" and undo.before:
                # A restore names the id the task had: it undid the last deletion of that id before it.
                was = undo.before.get("id")
                done |= {next((d.id for d in deletions if d.id < undo.id and d.subject_id == was), -1)}
            elif undo.after and isinstance(undid := undo.after.get(UNDOES), int):
                done.add(undid)
        return done

    async def _restore(self, conn: Connection, deletion: Event, *, actor: str) -> tuple[Task, int]:
        assert deletion.before is not None
        was = task_in_snapshot(deletion.before)
        self._check_tenant(was)
        plan = await self._plan_row(conn, was.plan_id)
        require_due_inside(was.due_on, plan)
        free = await task_rows.get(conn, self.tenant_id, was.id) is None
        task = await task_rows.reinsert_task(conn, was, keep_id=free)
        week = await plan_rows.week_containing(conn, self.tenant_id, task.plan_id, task.due_on)
        if week is not None:
            await plan_rows.add_weekly_items(conn, week, [WeeklyItem(task=task, carried_over=False)])
        await self._record(conn, actor=actor, kind="task.restored", subject=task, before=was)
        return task, was.id

    async def undo(
        self,
        *,
        actor: str,
        subject: tuple[str, int] | None = None,
        version: int | None = None,
        window: timedelta = UNDO_WINDOW,
    ) -> UndoneChange:
        """Take back `actor`'s last change made within `window`: an edit of a task (title, due date, owner, plan,
        milestone), an edit or archive of a plan (a master plan's north star, window, constraints and KPI targets
        changed together are one change), or a task's deletion; with `subject` ("task" or "plan", id) the last one of
        that object, and with `version` the one that left it at that version.

        The undo is itself an event ("task.undone", "plan.undone") naming the event it takes back. Raises
        NothingToUndo; StaleUndo when the object changed since (by someone else, or in the fields to restore), and
        nothing changes; UndoNeedsLeader for a master plan's edit by anyone but its leader; PlanNotFound or
        WindowConflict when what it was no longer fits.
        """
        since = self._now() - window
        async with self._store.transaction() as conn:
            found = await self._undoable(conn, actor=actor, subject=subject, version=version, since=since)
            if found is None:
                raise NothingToUndo(None, int(window.total_seconds() // 60))
            event, fields = found
            if event.kind == "task.deleted":
                task, was = await self._restore(conn, event, actor=actor)
                return UndoneChange(subject=task, fields=(), deleted=True, was_id=was)
            return await self._undo_edit(conn, event, fields, actor=actor)

    async def undoable(
        self,
        *,
        actor: str,
        subject: tuple[str, int] | None = None,
        version: int | None = None,
        window: timedelta = UNDO_WINDOW,
    ) -> Event | None:
        """The change `undo` with these arguments would take back, changing nothing (None: there is none)."""
        since = self._now() - window
        async with self._store.read() as conn:
            found = await self._undoable(conn, actor=actor, subject=subject, version=version, since=since)
        return found[0] if found is not None else None

    async def _undoable(
        self,
        conn: Connection,
        *,
        actor: str,
        subject: tuple[str, int] | None,
        version: int | None,
        since: datetime,
    ) -> tuple[Event, tuple[str, ...]] | None:
        """`actor`'s last change since `since` that `undo` takes back, and the fields it would restore."""
        mine = await event_log.of_kind_since(
            conn,
            self.tenant_id,
            UNDOABLE_KINDS,
            since,
            subject_id=subject[1] if subject else None,
            actor=actor,
        )
        undone = await self._undone_since(conn, since)
        for event in mine:
            if event.id in undone or (subject is not None and event.subject_type != subject[0]):
                continue
            if version is not None and (event.after or {}).get("version") != version:
                continue
            if event.kind == "task.deleted":
                if event.before is not None:
                    return event, ()
                continue
            fields = _undoable_fields(event)
            if fields:
                return event, fields
        return None

    async def _undo_edit(self, conn: Connection, event: Event, fields: tuple[str, ...], *, actor: str) -> UndoneChange:
        assert event.before is not None
        assert event.after is not None
        later = await event_log.after(conn, self.tenant_id, event.subject_type, event.subject_id, event.id)
        by_others = next((e.actor for e in later if e.actor != actor), None)
        if by_others is not None:
            raise StaleUndo(event.subject_type, event.subject_id, by_others)
        current: Task | Plan
        if event.subject_type == "task":
            current = await self._task_row(conn, event.subject_id)
        else:
            current = await self._plan_row(conn, event.subject_id)
            if current.tier is Tier.MASTER and current.owner != actor:
                raise UndoNeedsLeader(current.id)
        now = snapshot(current)
        if TARGETS in fields and isinstance(current, Plan):
            now[TARGETS] = await self._targets_of(conn, current)
        if any(now.get(field) != event.after.get(field) for field in fields):
            raise StaleUndo(event.subject_type, event.subject_id, None)
        if isinstance(current, Task):
            was = task_in_snapshot(event.before)
            restored_task = replace(
                current,
                **{field: getattr(was, field) for field in fields},
                version=current.version + 1,
            )
            if "plan_id" in fields:
                home = await self._plan_row(conn, was.plan_id, Tier.TACTICAL)
                restored_task = replace(restored_task, master_id=home.master_id or home.id)
            require_due_inside(restored_task.due_on, await self._plan_row(conn, restored_task.plan_id))
            if not await task_rows.update_task(conn, restored_task, seen_version=current.version):
                raise StaleEdit("Task", current.id, current.version, None)
            await self._rehome_in_weeks(conn, current, restored_task)
            subject: Task | Plan = restored_task
        else:
            restored_plan = replace(current, **_plan_fields(event.before, fields), version=current.version + 1)
            if restored_plan.window != current.window:
                await self._check_window_change(conn, current, restored_plan.window)
            write = plan_rows.set_archived if "archived_at" in fields else plan_rows.update_plan  # one or the other
            written = await write(conn, restored_plan, seen_version=current.version)
            if not written:
                raise StaleEdit("Plan", current.id, current.version, None)
            subject = restored_plan
        after = snapshot(subject) | {UNDOES: event.id}
        if TARGETS in fields and isinstance(subject, Plan):
            await self._restore_targets(conn, subject, event.before.get(TARGETS), actor=actor)
            after[TARGETS] = await self._targets_of(conn, subject)
        await self._record_pictures(
            conn,
            actor=actor,
            kind=UNDO_KINDS[event.subject_type],
            subject=(event.subject_type, event.subject_id),
            before=now,
            after=after,
        )
        return UndoneChange(subject=subject, fields=fields, deleted=False, was_id=event.subject_id)

    async def _restore_targets(self, conn: Connection, plan: Plan, was: object, *, actor: str) -> None:
        """Set a plan's KPIs back to the targets (by name) an event kept of them."""
        if not isinstance(was, dict):
            return
        for metric in await kpi_rows.of_plan(conn, self.tenant_id, plan.id):
            target = was.get(metric.name)
            if isinstance(target, int | float) and target != metric.target:
                await self._write_target(conn, metric, float(target), actor=actor)

    async def edit_task(
        self,
        task_id: int,
        edit: Callable[[Task], Task],
        *,
        actor: str,
        expected_version: int | None = None,
    ) -> Task:
        """Read the task, apply `edit` to it and write it back if nobody wrote in between; retry otherwise.

        `edit` must be a pure function of the task it is given. With `expected_version` there is no retry.
        """
        for _attempt in range(1 if expected_version is not None else EDIT_ATTEMPTS):
            async with self._store.transaction() as conn:
                before = await self._task_row(conn, task_id)
                if expected_version is not None and before.version != expected_version:
                    raise StaleEdit("Task", task_id, expected_version, before.version)
                after = edit(before)
                self._check_tenant(after)
                if after.id != before.id or after.plan_id != before.plan_id:
                    raise InvalidValue(Field.TASK, after.id, Expected.SAME_TASK)
                after = replace(after, version=before.version + 1)
                if after.due_on != before.due_on:
                    require_due_inside(after.due_on, await self._plan_row(conn, before.plan_id))
                if await task_rows.update_task(conn, after, seen_version=before.version):
                    await self._rehome_in_weeks(conn, before, after)
                    kind = task_event_kind(before, after)
                    await self._record(conn, actor=actor, kind=kind, subject=after, before=before)
                    return after
            if expected_version is not None:
                raise StaleEdit("Task", task_id, expected_version, None)
        current = await self.get_task(task_id)
        raise StaleEdit("Task", task_id, current.version - 1, current.version)

    # ---- metrics -------------------------------------------------------------------------------------------

    async def _insert_metric(self, conn: Connection, plan: Plan, spec: MetricSpec, *, actor: str) -> Metric:
        require_metric_home(plan)
        spec.validate()
        kpi = None
        if plan.tier is Tier.TACTICAL and plan.master_id is not None:
            kpi = share_of(await kpi_rows.of_plan(conn, self.tenant_id, plan.master_id), spec.name)
        if kpi is not None:
            # A share of the master's KPI: its own target, the KPI's unit, direction and readings. A KPI going up is
            # judged on its gain inside the plan's window, which starts from nothing; a level (cost per lead) starts
            # where the KPI does unless told otherwise.
            spec = replace(
                spec,
                unit=spec.unit.strip() or kpi.unit,
                direction=kpi.direction,
                baseline=0.0 if counts_gain(kpi) else (spec.baseline or kpi.baseline),
            )
            spec.validate()
        metric = await kpi_rows.insert_metric(
            conn,
            self.tenant_id,
            plan_id=plan.id,
            name=clean_text(Field.METRIC_NAME, spec.name, limit=200),
            unit=spec.unit.strip(),
            direction=spec.resolved_direction(),
            baseline=spec.baseline,
            target=spec.target,
            tolerance=spec.tolerance,
            kpi_id=kpi.id if kpi is not None else None,
        )
        if metric is None:
            raise InvalidValue(Field.METRIC_NAME, spec.name, Expected.UNUSED_METRIC_NAME, plan=plan.id)
        await self._record(conn, actor=actor, kind="metric.created", subject=metric, before=None)
        if plan.tier is Tier.MASTER:
            # A KPI defined after its tactical plans tracked the name: theirs become shares of it, one set of readings.
            tacticals = [p.id for p in await plan_rows.children(conn, self.tenant_id, plan.id)]
            if tacticals:
                for share_id in await kpi_rows.link_shares(conn, metric, tacticals):
                    linked = await self._metric_row(conn, share_id)
                    await self._record(
                        conn, actor=actor, kind="metric.updated", subject=linked, before=replace(linked, kpi_id=None)
                    )
        return metric

    async def add_metric(self, plan_id: int, spec: MetricSpec, *, actor: str) -> Metric:
        """A new KPI on a master or tactical plan. Raises PlanNotFound or InvalidValue."""
        async with self._store.transaction() as conn:
            plan = await self._plan_row(conn, plan_id)
            return await self._insert_metric(conn, plan, spec, actor=actor)

    async def set_metric_target(self, metric_id: int, target: float, *, actor: str) -> Metric:
        """A KPI's new target (the baseline, unit and direction stay). Raises MetricNotFound or InvalidValue."""
        async with self._store.transaction() as conn:
            before = await kpi_rows.get(conn, self.tenant_id, metric_id)
            if before is None:
                raise MetricNotFound(metric_id)
            return await self._write_target(conn, before, target, actor=actor)

    async def list_metrics(self, plan_id: int) -> list[Metric]:
        """The KPIs defined on one plan."""
        async with self._store.read() as conn:
            await self._plan_row(conn, plan_id)
            return await kpi_rows.of_plan(conn, self.tenant_id, plan_id)

    async def get_metric(self, metric_id: int) -> Metric:
        """The metric with this id. Raises MetricNotFound."""
        async with self._store.read() as conn:
            return await self._metric_row(conn, metric_id)

    async def find_metric(self, name: str, *, plan_id: int | None = None, on: date | None = None) -> Metric:
        """A metric by name (case-insensitive): the one on plan `plan_id`, or else the KPI of that name.

        Without a plan, a tactical plan's share stands for its master plan's KPI (one KPI, whatever tiers exist);
        when several master plans define the name, the one whose window holds the day `on` is meant.
        Raises MetricNotFound listing the names that exist, or InvalidValue asking for a plan when still ambiguous.
        """
        async with self._store.read() as conn:
            rows = await kpi_rows.of_plan(conn, self.tenant_id, plan_id)
            matches = [m for m in rows if m.name.casefold() == name.strip().casefold()]
            if not matches:
                raise MetricNotFound(name, plan_id, tuple(sorted({m.name for m in rows})))
            if plan_id is None:
                by_id = {m.id: m for m in rows}
                kpis = sorted({kpi_id_of(m) for m in matches})
                matches = [by_id[k] if k in by_id else await self._metric_row(conn, k) for k in kpis]
                if len(matches) > 1 and on is not None:
                    homes = await plan_rows.by_id(conn, self.tenant_id, [m.plan_id for m in matches])
                    running = [m for m in matches if m.plan_id in homes and homes[m.plan_id].window.includes(on)]
                    matches = running or matches
        if len(matches) > 1:
            raise InvalidValue(Field.METRIC, name, Expected.PLAN_ID_TOO, plans=tuple(m.plan_id for m in matches))
        return matches[0]

    async def _metric_row(self, conn: Connection, metric_id: int) -> Metric:
        metric = await kpi_rows.get(conn, self.tenant_id, metric_id)
        if metric is None:
            raise MetricNotFound(metric_id)
        return metric

    async def record_reading(
        self,
        metric_id: int,
        value: float,
        *,
        at: datetime | None = None,
        source: str = "chat",
        actor: str,
        conn: Connection | None = None,
    ) -> MetricReading:
        """Store a reading of the KPI: of metric `metric_id`, or of the master plan's KPI when it is a share of one
        (one reading, seen at every tier). Idempotent by (KPI, time, source): the same reading twice is stored once;
        a different value for the same key corrects it. With `conn`, inside the caller's transaction. Raises
        MetricNotFound."""
        at = at or self._now()
        require_reading_value(value)
        if conn is not None:
            return await self._record_reading(conn, metric_id, value, at=at, source=source, actor=actor)
        async with self._store.transaction() as own:
            return await self._record_reading(own, metric_id, value, at=at, source=source, actor=actor)

    async def _record_reading(
        self, conn: Connection, metric_id: int, value: float, *, at: datetime, source: str, actor: str
    ) -> MetricReading:
        metric = await self._metric_row(conn, metric_id)
        if metric.kpi_id is not None:
            metric_id = (await self._metric_row(conn, metric.kpi_id)).id  # a share records on its master's KPI
        before = await kpi_rows.reading_at(conn, metric_id, at, source)
        if before is None:
            reading = await kpi_rows.insert_reading(
                conn, self.tenant_id, metric_id=metric_id, at=at, value=value, source=source
            )
            if reading is not None:
                await self._record(conn, actor=actor, kind="metric.reading", subject=reading, before=None)
                return reading
            # Another writer stored the same key meanwhile: this one is a correction of it, if anything.
            before = await kpi_rows.reading_at(conn, metric_id, at, source)
            assert before is not None
        if before.value == value:
            return before
        after = replace(before, value=value)
        await kpi_rows.correct_reading(conn, after)
        await self._record(conn, actor=actor, kind="metric.reading.corrected", subject=after, before=before)
        return after

    async def readings(self, metric_id: int, *, since: datetime | None = None) -> list[MetricReading]:
        """A metric's readings, oldest first."""
        async with self._store.read() as conn:
            return (await kpi_rows.readings(conn, self.tenant_id, [metric_id], since=since))[metric_id]

    async def metrics_of(self, plan_ids: Sequence[int]) -> list[Metric]:
        """The KPIs of several plans in one query, by plan and then as they were defined."""
        async with self._store.read() as conn:
            return await kpi_rows.of_plans(conn, self.tenant_id, plan_ids)

    async def readings_of(self, metric_ids: Sequence[int]) -> dict[int, list[MetricReading]]:
        """Several metrics' readings in one query, each metric's oldest first (an empty list for one without)."""
        async with self._store.read() as conn:
            return await kpi_rows.readings(conn, self.tenant_id, metric_ids)

    # ---- rollup --------------------------------------------------------------------------------------------

    async def rollup(self, plan_id: int, as_of: date | None = None) -> PlanRollup:
        """Progress and health of the master plan's tree containing `plan_id`, as of a day (today by default).

        Reads aggregates only (task counts per plan, the latest reading per metric), never every task, in one query
        whatever the size of the tree. Returns the rollup of the tree's root; use `.find(plan_id)` for a subtree.
        Raises PlanNotFound.
        """
        return (await self.owned_rollup(plan_id, as_of or self._now().date())).rollup

    @overload
    async def owned_rollup(self, plan_id: int, as_of: date, *, conn: Connection | None = None) -> OwnedRollup: ...

    @overload
    async def owned_rollup(
        self, plan_id: None, as_of: date, *, conn: Connection | None = None
    ) -> OwnedRollup | None: ...

    async def owned_rollup(
        self, plan_id: int | None, as_of: date, *, conn: Connection | None = None
    ) -> OwnedRollup | None:
        """`rollup(plan_id, as_of)` with its owners' names, in the same query. Without a plan id, that of the master
        plan a request naming none means (`active_plan`), or None when there is not exactly one. `conn`: a read the
        caller holds (the plan card reads its budgets in the same one). Raises PlanNotFound for a plan id."""
        async with self._store.reading(conn) as conn:
            if plan_id is None:
                master = active_plan(await plan_rows.masters(conn, self.tenant_id), as_of)
                if master is None:
                    return None
                plan_id = master.id
            facts, owner_names = await rollups.tree_facts(conn, self.tenant_id, plan_id, as_of)
        rollup = roll_up_tree(facts, as_of, self._store.rules)
        if rollup is None:
            raise PlanNotFound(plan_id)
        return OwnedRollup(rollup=rollup, owner_names=owner_names)

    # ---- events --------------------------------------------------------------------------------------------

    async def events(
        self, *, subject_type: str | None = None, subject_id: int | None = None, limit: int = 100
    ) -> list[Event]:
        """Recorded changes, newest first, optionally of one subject."""
        async with self._store.read() as conn:
            return await event_log.recent(
                conn, self.tenant_id, subject_type=subject_type, subject_id=subject_id, limit=limit
            )

    async def delete_plan(self, plan_id: int, *, actor: str) -> None:
        """Remove a plan with everything under it; the event keeps what it was."""
        async with self._store.transaction() as conn:
            plan = await self._plan_row(conn, plan_id)
            await plan_rows.delete_plan(conn, plan)
            await event_log.record(
                conn,
                tenant_id=self.tenant_id,
                at=self._now(),
                actor=actor,
                kind="plan.deleted",
                subject_type="plan",
                subject_id=plan.id,
                before=snapshot(plan),
                after=None,
            )
