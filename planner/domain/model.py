"""The plan model: master -> tactical -> weekly plans, tasks, KPI metrics and their readings.

Values are frozen dataclasses with keyword-only fields; the store hands them out and takes them back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from planner.domain.errors import Dated, Expected, Field, InvalidValue, InvalidWindow, WindowConflict


class Tier(enum.StrEnum):
    MASTER = "master"
    TACTICAL = "tactical"
    WEEKLY = "weekly"

    @property
    def child(self) -> Tier | None:
        return {Tier.MASTER: Tier.TACTICAL, Tier.TACTICAL: Tier.WEEKLY, Tier.WEEKLY: None}[self]


class TaskStatus(enum.StrEnum):
    TODO = "todo"
    DOING = "doing"
    DONE = "done"
    BLOCKED = "blocked"
    DELEGATED = "delegated"

    @property
    def is_open(self) -> bool:
        return self is not TaskStatus.DONE


class Direction(enum.StrEnum):
    """Which way a KPI should move: SQLs go up, cost per lead goes down."""

    UP = "up"
    DOWN = "down"


class Health(enum.StrEnum):
    """How a plan or a KPI is doing: on track / at risk / off track while its window runs, then final: met or missed.

    A final judgement is never "at risk": once the window has ended there is nothing left to catch up on.
    """

    ON_TRACK = "on track"
    AT_RISK = "at risk"
    OFF_TRACK = "off track"
    MET = "met"
    MISSED = "missed"

    @property
    def rank(self) -> int:
        return {Health.ON_TRACK: 0, Health.AT_RISK: 1, Health.OFF_TRACK: 2, Health.MET: 0, Health.MISSED: 2}[self]

    @property
    def is_final(self) -> bool:
        """Judged once the window has ended (met or missed)."""
        return self in (Health.MET, Health.MISSED)

    @property
    def needs_attention(self) -> bool:
        """Behind while there is still time to act: at risk or off track."""
        return self in (Health.AT_RISK, Health.OFF_TRACK)

    @staticmethod
    def worst(*values: Health) -> Health:
        return max(values, key=lambda h: h.rank, default=Health.ON_TRACK)


@dataclass(frozen=True, kw_only=True)
class Window:
    """An inclusive range of calendar days."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise InvalidWindow(self.start, self.end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def contains(self, other: Window) -> bool:
        return self.start <= other.start and other.end <= self.end

    def includes(self, day: date) -> bool:
        return self.start <= day <= self.end

    def elapsed_fraction(self, as_of: date) -> float:
        """Share of the window's days that have passed by the end of `as_of` (0 before it starts, 1 after)."""
        if as_of < self.start:
            return 0.0
        if as_of >= self.end:
            return 1.0
        return ((as_of - self.start).days + 1) / self.days

    def require_inside(self, parent: Window, *, what: Dated, parent_name: Dated) -> None:
        """Raise WindowConflict naming the conflicting dates unless this window lies inside `parent`."""
        if not parent.contains(self):
            raise WindowConflict(what, self.start, self.end, parent_name, parent.start, parent.end)


def iso_week_window(iso_week: str) -> Window:
    """The Monday-to-Sunday window of an ISO week written `YYYY-Www` (e.g. `2026-W47`)."""
    try:
        year_text, week_text = iso_week.upper().split("-W")
        monday = date.fromisocalendar(int(year_text), int(week_text), 1)
    except ValueError:
        raise InvalidValue(Field.WEEK, iso_week, Expected.ISO_WEEK) from None
    return Window(start=monday, end=monday + timedelta(days=6))


def iso_week_of(day: date) -> str:
    """The ISO week (`YYYY-Www`) a day falls in."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A plan of any tier. A master plan has no parent; a weekly plan covers exactly one ISO week."""

    id: int
    tenant_id: str
    tier: Tier
    parent_id: int | None
    master_id: int | None
    title: str
    owner: str
    window: Window
    constraints: tuple[str, ...] = ()
    iso_week: str | None = None
    created_at: datetime
    version: int = 1
    archived_at: datetime | None = None
    """When it was archived: hidden from lists and from the plan a request naming none means, kept for history."""


@dataclass(frozen=True, kw_only=True)
class Metric:
    """A KPI with a straight-line target: from `baseline` at the plan's start to `target` at its end.

    `tolerance` is the share of the expected progress a reading may fall behind before the metric drifts
    (0.1: ten percent behind pace is still on track). `kpi_id` links a tactical plan's metric to the master plan's
    KPI it is a share of: it has its own target, and the KPI's readings (see `planner.domain.kpis`).
    """

    id: int
    tenant_id: str
    plan_id: int
    name: str
    unit: str
    direction: Direction
    baseline: float
    target: float
    tolerance: float
    kpi_id: int | None = None
    version: int = 1


@dataclass(frozen=True, kw_only=True)
class MetricReading:
    id: int
    tenant_id: str
    metric_id: int
    at: datetime
    value: float
    source: str


@dataclass(frozen=True, kw_only=True)
class Task:
    """A piece of work in a tactical plan; weekly plans select the tasks of their week."""

    id: int
    tenant_id: str
    plan_id: int
    master_id: int
    title: str
    owner: str | None
    due_on: date
    status: TaskStatus = TaskStatus.TODO
    milestone: bool = False
    created_at: datetime
    started_at: datetime | None = None
    done_at: datetime | None = None
    snoozed_until: datetime | None = None
    blocked_reason: str | None = None
    version: int = 1

    def is_overdue(self, as_of: date) -> bool:
        return self.status.is_open and self.due_on < as_of


@dataclass(frozen=True, kw_only=True)
class WeeklyItem:
    """A task as it appears in one weekly plan; `carried_over` marks unfinished work from the week before."""

    task: Task
    carried_over: bool


@dataclass(frozen=True, kw_only=True)
class Event:
    """One recorded state change: who did what to which object, with its state before and after."""

    id: int
    tenant_id: str
    at: datetime
    actor: str
    kind: str
    subject_type: str
    subject_id: int
    before: dict[str, object] | None
    after: dict[str, object] | None


@dataclass(frozen=True, kw_only=True)
class MetricSpec:
    """What a caller gives to define a KPI on a plan."""

    name: str
    target: float
    unit: str = ""
    direction: Direction | None = None
    baseline: float = 0.0
    tolerance: float = 0.1

    def resolved_direction(self) -> Direction:
        if self.direction is not None:
            return self.direction
        return Direction.DOWN if self.target < self.baseline else Direction.UP

    def validate(self) -> None:
        if not self.name.strip():
            raise InvalidValue(Field.METRIC_NAME, self.name, Expected.METRIC_NAME)
        if not 0 <= self.tolerance < 1:
            raise InvalidValue(Field.TOLERANCE, self.tolerance, Expected.FRACTION, metric=self.name)
        direction = self.resolved_direction()
        if direction is Direction.UP and self.target < self.baseline:
            raise InvalidValue(
                Field.TARGET, self.target, Expected.AT_LEAST_BASELINE, baseline=self.baseline, metric=self.name
            )
        if direction is Direction.DOWN and self.target > self.baseline:
            raise InvalidValue(
                Field.TARGET, self.target, Expected.AT_MOST_BASELINE, baseline=self.baseline, metric=self.name
            )


@dataclass(frozen=True, kw_only=True)
class TaskChanges:
    """A partial edit of a task; fields left as None are unchanged."""

    title: str | None = None
    owner: str | None = None
    due_on: date | None = None
    status: TaskStatus | None = None
    milestone: bool | None = None
    clear_owner: bool = False
    blocked_reason: str | None = None
    snoozed_until: datetime | None = None
    plan_id: int | None = None
    """Move the task to this plan (a tactical plan, or a weekly plan standing for its tactical plan)."""
