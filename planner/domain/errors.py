"""Errors the planner raises. Each says what went wrong and, where it can, what to do instead."""

from __future__ import annotations

from datetime import date


class PlannerError(Exception):
    """Base of every error the planner raises on purpose."""


class PlanNotFound(PlannerError, LookupError):
    """No plan with this id exists for the tenant (plans of other tenants are invisible)."""

    def __init__(self, plan_id: int, tier: str | None = None) -> None:
        self.plan_id = plan_id
        self.tier = tier
        what = f"{tier} plan" if tier else "plan"
        super().__init__(f"No {what} with id {plan_id}. List the plans to see their ids.")


class TaskNotFound(PlannerError, LookupError):
    """No task with this id exists for the tenant."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        super().__init__(f"No task with id {task_id}. Show the plan to see its tasks' ids.")


class MetricNotFound(PlannerError, LookupError):
    """No metric with this name (or id) on the plan."""

    def __init__(self, metric: str | int, plan_id: int | None = None, known: tuple[str, ...] = ()) -> None:
        self.metric = metric
        where = f" on plan {plan_id}" if plan_id is not None else ""
        hint = f" Known metrics: {', '.join(known)}." if known else ""
        super().__init__(f"No metric {metric!r}{where}.{hint}")


class WindowConflict(PlannerError, ValueError):
    """A child plan's window (or a task's due date) does not lie inside its parent's window."""

    def __init__(self, what: str, start: date, end: date, parent: str, parent_start: date, parent_end: date) -> None:
        self.start, self.end = start, end
        self.parent_start, self.parent_end = parent_start, parent_end
        problems = []
        if start < parent_start:
            problems.append(f"starts {start.isoformat()}, before {parent} starts {parent_start.isoformat()}")
        if end > parent_end:
            problems.append(f"ends {end.isoformat()}, after {parent} ends {parent_end.isoformat()}")
        detail = " and ".join(problems) or "lies outside it"
        super().__init__(
            f"The {what} ({start.isoformat()} to {end.isoformat()}) {detail}. "
            f"Choose dates between {parent_start.isoformat()} and {parent_end.isoformat()}."
        )


class InvalidWindow(PlannerError, ValueError):
    """A window whose end comes before its start."""

    def __init__(self, start: date, end: date) -> None:
        super().__init__(f"The window ends {end.isoformat()}, before it starts {start.isoformat()}.")


class InvalidValue(PlannerError, ValueError):
    """A field has a value the planner cannot accept; the message names the field and the accepted form."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        super().__init__(f"{field}: {value!r} is not valid; expected {expected}.")


class TenantMismatch(PlannerError, PermissionError):
    """An object of one tenant was handed to a store scoped to another tenant."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"This store serves tenant {expected!r}, but the object belongs to tenant {got!r}.")


class StaleEdit(PlannerError, RuntimeError):
    """The object changed since it was read; re-read it and apply the edit again."""

    def __init__(self, kind: str, object_id: int, expected_version: int, actual_version: int | None) -> None:
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"{kind} {object_id} changed while you were editing it (you had version {expected_version}, "
            f"it is now at version {actual_version}). Reload it and try again."
        )
