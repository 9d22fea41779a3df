"""Errors the planner raises. Each keeps what went wrong in fields and says it plainly in its message, for logs; the
words a person reads (and what to do instead) are the bot's, in bot/text/errors.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import Enum


class PlannerError(Exception):
    """Base of every error the planner raises on purpose."""


class PlanNotFound(PlannerError, LookupError):
    """No plan with this id exists for the tenant (plans of other tenants are invisible)."""

    def __init__(self, plan_id: int, tier: str | None = None) -> None:
        self.plan_id = plan_id
        self.tier = tier
        what = f"{tier} plan" if tier else "plan"
        super().__init__(f"{what} {plan_id} not found")


class TaskNotFound(PlannerError, LookupError):
    """No task with this id exists for the tenant."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id} not found")


class MetricNotFound(PlannerError, LookupError):
    """No metric with this name (or id) on the plan; `known`: the plan's metrics, when it was looked up by name."""

    def __init__(self, metric: str | int, plan_id: int | None = None, known: tuple[str, ...] = ()) -> None:
        self.metric = metric
        self.plan_id = plan_id
        self.known = tuple(known)
        where = f" on plan {plan_id}" if plan_id is not None else ""
        super().__init__(f"metric {metric!r} not found{where}")


@dataclass(frozen=True, kw_only=True)
class Dated:
    """What a window (or a date) belongs to, as WindowConflict names it: a plan of a tier (`ref`: its id, once it has
    one), a due date (`ref`: its task's id), an ISO week (`ref`: `2026-W07`), or a plan's new window (`ref`: its id)."""

    kind: str
    """`plan`, `due date`, `week` or `new window`."""
    tier: str | None = None
    ref: int | str | None = None

    def __str__(self) -> str:
        return " ".join(str(part) for part in (self.tier, self.kind, self.ref) if part is not None)


class WindowConflict(PlannerError, ValueError):
    """A child plan's window (or a task's due date) does not lie inside its parent's window."""

    def __init__(
        self, what: Dated, start: date, end: date, parent: Dated, parent_start: date, parent_end: date
    ) -> None:
        self.what, self.parent = what, parent
        self.start, self.end = start, end
        self.parent_start, self.parent_end = parent_start, parent_end
        super().__init__(
            f"{what} {start.isoformat()}..{end.isoformat()} lies outside {parent} "
            f"{parent_start.isoformat()}..{parent_end.isoformat()}"
        )


class InvalidWindow(PlannerError, ValueError):
    """A window whose end comes before its start."""

    def __init__(self, start: date, end: date) -> None:
        self.start, self.end = start, end
        super().__init__(f"window ends {end.isoformat()}, before it starts {start.isoformat()}")


class Expected(Enum):
    """The form a field should take, as InvalidValue names it: a code, and the names of the details (bounds, choices,
    dates) each raise passes along. The bot words each one from those details (bot/text/errors.py); a test keeps
    every member worded and every raise passing exactly the details its member names."""

    def __init__(self, code: str, *details: str) -> None:
        self.code = code
        self.details = details

    # text and names
    TEXT = ("text",)
    TEXT_AT_MOST = ("text_at_most", "limit")
    NAME_CHARACTERS = ("name_characters", "limit")
    ROLE_NAME = ("role_name",)
    PLAYBOOK_NAME = ("playbook_name",)
    METRIC_NAME = ("metric_name",)
    UNUSED_NAME = ("unused_name",)
    UNUSED_METRIC_NAME = ("unused_metric_name", "plan")
    ONE_OF = ("one_of", "choices")
    # numbers, amounts and durations
    WHOLE_NUMBER_FROM = ("whole_number_from", "low", "high")
    WHOLE_NUMBER_AT_LEAST = ("whole_number_at_least", "low")
    FINITE_NUMBER = ("finite_number",)
    FRACTION = ("fraction",)
    AT_LEAST_BASELINE = ("at_least_baseline", "baseline")
    AT_MOST_BASELINE = ("at_most_baseline", "baseline")
    NO_LESS_THAN_RECORDED = ("no_less_than_recorded", "recorded")
    MINUTES_AT_LEAST = ("minutes_at_least", "low")
    SECONDS_UP_TO = ("seconds_up_to", "most")
    POSITIVE_DURATION = ("positive_duration",)
    CURRENCY_CODE = ("currency_code",)
    AMOUNT = ("amount",)
    POSITIVE_AMOUNT = ("positive_amount",)
    AMOUNT_ZERO_OR_MORE = ("amount_zero_or_more",)
    AMOUNT_BELOW = ("amount_below", "most")
    # times and dates
    FUTURE_WITHIN_DAYS = ("future_within_days", "days")
    TIME_OF_DAY = ("time_of_day",)
    TIME_ZONE = ("time_zone",)
    TIME_WITH_ZONE = ("time_with_zone",)
    ISO_WEEK = ("iso_week",)
    DAY_ON_OR_BEFORE = ("day_on_or_before", "day")
    DAY_IN_WINDOW = ("day_in_window", "plan", "start", "end")
    # data
    JSON_OBJECT = ("json_object",)
    JSON_AT_MOST_BYTES = ("json_at_most_bytes", "limit")
    SOME_KEY = ("some_key",)
    TASK_SNAPSHOT = ("task_snapshot",)
    USER_MESSAGE_FIRST = ("user_message_first",)
    # who
    TEAMS_TENANT_ID = ("teams_tenant_id",)
    TEAMS_CONVERSATION_ID = ("teams_conversation_id",)
    TEAMS_USER_ID = ("teams_user_id",)
    PERSON_ID = ("person_id",)
    REQUESTER = ("requester",)
    RESUME = ("resume",)
    # plans, tasks, metrics and budgets
    PLAN_WITH_METRICS = ("plan_with_metrics",)
    TASK_HOME = ("task_home",)
    ARCHIVABLE_PLAN = ("archivable_plan",)
    WEEK_UNCHANGED = ("week_unchanged",)
    SAME_TASK = ("same_task",)
    PLAN_ID_TOO = ("plan_id_too", "plans")
    DIFFERENT_TACTICAL_PLANS = ("different_tactical_plans",)
    TACTICAL_PLANS_OF_ONE_MASTER = ("tactical_plans_of_one_master",)
    PLAN_WITH_BUDGET = ("plan_with_budget",)
    # delegation and feeds
    OPEN_TASK = ("open_task",)
    DELEGATION_OF_OPEN_TASK = ("delegation_of_open_task",)
    AGENT_CAPABILITY = ("agent_capability",)
    NEW_FEED = ("new_feed", "metric")
    FEED_ANSWER = ("feed_answer",)
    FEED_PART = ("feed_part", "part")
    FIELD_OF_DATA = ("field_of_data", "fields")


class Field(Enum):
    """The field InvalidValue names: a code, and the names of the details that say whose field it is (the metric of a
    tolerance). The bot words each one (bot/text/errors.py); a test keeps every member worded and every raise passing
    the details its member and its Expected member name."""

    def __init__(self, code: str, *details: str) -> None:
        self.code = code
        self.details = details

    # who and where
    TENANT_ID = ("tenant_id",)
    USER_ID = ("user_id",)
    CONVERSATION_ID = ("conversation_id",)
    CONVERSATION_KIND = ("conversation_kind",)
    ROLE = ("role",)
    EXPIRY = ("expiry",)
    # approval requests
    APPROVER = ("approver",)
    REQUESTER = ("requester",)
    RESUME = ("resume",)
    ACTION_ATTRIBUTES = ("action_attributes",)
    # plans, tasks and metrics
    PLAN = ("plan",)
    PLANS = ("plans",)
    TASK = ("task",)
    TASK_SNAPSHOT = ("task_snapshot",)
    TITLE = ("title",)
    OWNER = ("owner",)
    CONSTRAINT = ("constraint",)
    REASON = ("reason",)
    WINDOW = ("window",)
    WEEK = ("week",)
    CADENCE = ("cadence",)
    METRIC = ("metric",)
    METRIC_NAME = ("metric_name",)
    VALUE = ("value",)
    TOLERANCE = ("tolerance", "metric")
    TARGET = ("target", "metric")
    PLAYBOOK_NAME = ("playbook_name",)
    # money
    CURRENCY = ("currency",)
    AMOUNT = ("amount",)
    SPEND_DATE = ("spend_date",)
    # nudges and their settings
    TRIGGER = ("trigger",)
    SETTING = ("setting",)
    HOURS = ("hours",)
    DAYS = ("days",)
    NUDGES = ("nudges",)
    HOUR = ("hour",)
    TIME = ("time",)
    TIME_ZONE = ("time_zone",)
    # conversation memory
    MAX_TURNS = ("max_turns",)
    MAX_CHARS = ("max_chars",)
    SILENCE = ("silence",)
    MESSAGES = ("messages",)
    # agents, delegations and feeds
    ADAPTER = ("adapter",)
    ADAPTER_NAME = ("adapter_name",)
    ADAPTER_CONFIG = ("adapter_config",)
    CAPABILITY = ("capability",)
    INPUT = ("input",)
    TIMEOUT = ("timeout",)
    DELEGATION = ("delegation",)
    FAILURE_THRESHOLD = ("failure_threshold",)
    COOL_DOWN = ("cool_down",)
    PROBE_LEASE = ("probe_lease",)
    FEED = ("feed",)
    FEED_FIELD = ("feed_field",)
    FEED_ANSWER = ("feed_answer",)
    EVERY = ("every",)
    DATA_FIELD = ("data_field", "path")
    SPEND_TO_DATE = ("spend_to_date", "path")
    SOURCE_NAME = ("source_name",)
    # the decision log
    FORMAT = ("format",)
    DECISION_KEYS = ("decision_keys",)
    DECISION_DATA = ("decision_data",)
    DECISION_ACTOR = ("decision_actor",)
    DECISION_ACTION = ("decision_action",)
    DECISION_SUBJECT = ("decision_subject",)
    DECISION_VERDICT = ("decision_verdict",)
    DECISION_TIME = ("decision_time",)


class InvalidValue(PlannerError, ValueError):
    """A field has a value the planner cannot accept: the `field`, the `value`, the form it `expected` and the
    `details` both name (bounds, choices, dates; whose field it is)."""

    def __init__(self, field: Field, value: object, expected: Expected, /, **details: object) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        self.details = details
        shown = "".join(f" {name}={detail!r}" for name, detail in details.items())
        super().__init__(f"{field.code}: {value!r} is not valid; expected {expected.code}{shown}")


class TenantMismatch(PlannerError, PermissionError):
    """An object of one tenant was handed to a store scoped to another tenant."""

    def __init__(self, expected: str, got: str) -> None:
        self.expected, self.got = expected, got
        super().__init__(f"store of tenant {expected!r} was handed an object of tenant {got!r}")


class StaleEdit(PlannerError, RuntimeError):
    """The object changed since it was read; re-read it and apply the edit again."""

    def __init__(self, kind: str, object_id: int, expected_version: int, actual_version: int | None) -> None:
        self.kind = kind
        self.object_id = object_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(f"{kind} {object_id} is at version {actual_version}, not {expected_version}")


class NothingToUndo(PlannerError, LookupError):
    """No deletion of this task (or no deletion or edit by this person, when `task_id` is None) is recent enough to
    undo."""

    def __init__(self, task_id: int | None, minutes: int) -> None:
        self.task_id = task_id
        self.minutes = minutes
        what = f"deletion of task {task_id}" if task_id is not None else "deletion or edit"
        super().__init__(f"no {what} in the last {minutes} minutes")


class StaleUndo(PlannerError, RuntimeError):
    """Undoing an edit would overwrite a later change to the same object (by `changed_by`, when someone else made
    it): nothing is undone."""

    def __init__(self, kind: str, object_id: int, changed_by: str | None) -> None:
        self.kind = kind
        self.object_id = object_id
        self.changed_by = changed_by
        super().__init__(f"{kind} {object_id} changed since the edit (by {changed_by or 'a later change'})")


class UndoNeedsLeader(PlannerError, PermissionError):
    """A master plan's edit is undone by its leader only: its goals change through the strategy gate."""

    def __init__(self, plan_id: int) -> None:
        self.plan_id = plan_id
        super().__init__(f"only the leader of master plan {plan_id} undoes its edits")
