"""What the bot says when the planner, an agent or the vault refuses: each error class rendered as the reply a person
reads, from the error's fields. The planner's own messages (`str(error)`) are plain facts for logs. An error whose
reply is its fields in a sentence is one line of `SAID`; an error whose reply has choices to make has a renderer. The
field and the form an InvalidValue names are worded by `FIELDS` and `EXPECTED`.

`describe` writes a chat reply (Markdown: what people, agents and the planner wrote is shown literally, the commands
the bot suggests as code); `describe_plain` writes the same words as plain text, for a terminal, a log an operator
reads or an HTTP answer. An error class without a renderer here falls back to its own message; a test keeps every
planner error class registered, so none reaches a person as developer text.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import singledispatch
from typing import Any

from bot.cards.markdown import Markdown, inline_code, literal, literal_prose
from bot.cards.wording import RANGE_DASH, day_label, moment_label, plan_ref, window_ends, window_label
from bot.text.decisions import checkpoint_flaw_text
from bot.text.gates import policy_reasons_text
from bot.text.messages import sentence_within
from bot.text.numbers import money_in_cents, plain
from bot.text.problems import describe_problem, problem_message
from planner.domain.approvals import (
    GATES,
    AlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalRefused,
    ApprovalStatus,
    NoApprovers,
    NotAnApprover,
    NotAPerson,
    NotAuthenticated,
    SelfApproval,
    UnknownGateCategory,
)
from planner.domain.budgets import (
    BudgetBelowAllocations,
    CurrencyMismatch,
    InvalidSpendEvent,
    NoBudget,
    NotEnoughAllocated,
    OverAllocated,
)
from planner.domain.context import (
    ContextSourceExists,
    ContextSourceNotFound,
    InvalidContextEvent,
    ReplayedContextEvent,
    StaleContextEvent,
)
from planner.domain.decisions import CheckpointUnreadable, DecisionNotFound, NoDecisionKeys
from planner.domain.delegations import (
    AdapterBroke,
    AgentDeclined,
    DelegationGaveUp,
    DelegationNotFound,
    DelegationNotRetryable,
    DelegationStatus,
    StoppedMidCall,
    TaskDoneFirst,
)
from planner.domain.drafts import DraftAlreadyDecided, DraftNotFound
from planner.domain.errors import (
    Dated,
    Expected,
    Field,
    InvalidValue,
    InvalidWindow,
    MetricNotFound,
    NothingToUndo,
    PlannerError,
    PlanNotFound,
    StaleEdit,
    StaleUndo,
    TaskNotFound,
    TenantMismatch,
    UndoNeedsLeader,
    WindowConflict,
)
from planner.domain.governance import Verdict
from planner.domain.ingestion import InvalidMetricEvent, UnitMismatch
from planner.domain.policy import PolicyInvalid
from planner.domain.problems import ProblemCode
from planner.governance.gated_agent import CircuitOpen, DelegationHeld, DelegationStopped, StopCause
from planner.ports import (
    AgentConfigInvalid,
    AgentError,
    AgentNotReached,
    AgentTimeout,
    AgentUnavailable,
    QuestionCancelled,
    RehearsalUnsupported,
    SamplingDeclined,
    UnknownCapability,
)
from planner.services.budgets import ReplayedSpendEvent, StaleSpendEvent
from planner.services.decisions import CheckpointInvalid, CheckpointRefused
from planner.services.ingestion import FeedNotFound, PulledAgainstPolicy, ReplayedMetricEvent, StaleMetricEvent
from planner.services.playbooks import PlaybookNotFound
from planner.services.registry import (
    AdapterDisabled,
    AdapterExists,
    AdapterNotFound,
    ToolsNotSwitched,
    UnknownAdapterKind,
)
from planner.services.tools import InputInvalid, ToolHeld, ToolNotEnabled
from planner.store.vault import BadSecretKey, NoSecretKey, UndecryptableSecret, VaultError


@dataclass(frozen=True)
class _Style:
    quote: Callable[[str], str]
    """A value someone else wrote (a name, an id typed in chat), shown as it was written."""
    prose: Callable[[str], str]
    """Free text written outside bot/ (a policy rule's reason, an agent's problem), shown as it was written but for
    its `code spans` and `- ` list items."""


_CHAT = _Style(quote=literal, prose=literal_prose)
_PLAIN = _Style(quote=str, prose=str)


def describe(error: BaseException) -> Markdown:
    """The reply a person reads in Teams when `error` stopped what they asked."""
    return Markdown(_render(error, _CHAT))


def describe_plain(error: BaseException) -> str:
    """The same words as plain text: for the CLI, an operator's log, an HTTP answer, a stored delegation's problem."""
    return _render(error, _PLAIN)


def rendered_classes() -> frozenset[type]:
    """The error classes with a renderer of their own (not one inherited from a base class)."""
    return frozenset(cls for cls in _render.registry if cls is not object)


@singledispatch
def _render(error: BaseException, style: _Style) -> str:
    return style.prose(str(error))


def _repr(style: _Style, value: object) -> str:
    return style.quote(repr(value))


def _names(style: _Style, names: Iterable[str]) -> str:
    return ", ".join(style.quote(name) for name in names)


def _did_you_mean(style: _Style, name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" Did you mean {_repr(style, close[0])}?" if close else ""


def _known(style: _Style, what: str, known: Sequence[str]) -> str:
    return f"Known {what}: {_names(style, sorted(known))}." if known else f"No {what} are registered yet."


# ---- budgets -----------------------------------------------------------------------------------------------------


@_render.register
def _(error: InvalidSpendEvent, style: _Style) -> str:
    return style.prose("The spend event is not valid: " + "; ".join(map(describe_problem, error.problems)) + ".")


# ---- plans, tasks, metrics ---------------------------------------------------------------------------------------


@_render.register
def _(error: PlanNotFound, style: _Style) -> str:
    what = f"{error.tier} plan" if error.tier else "plan"
    return f"No {what} with id {error.plan_id}. List the plans to see their ids."


@_render.register
def _(error: NothingToUndo, style: _Style) -> str:
    if error.task_id is None:
        return (
            f"There is nothing of yours from the last {error.minutes} minutes to undo: `undo` takes back your last "
            "edit of a task or plan, an archive or a deletion, only that soon. Make the change again instead."
        )
    return (
        f"There is no deletion of task T{error.task_id} from the last {error.minutes} minutes to undo; a deleted task "
        "can be brought back only that soon. Add it again instead."
    )


@_render.register
def _(error: StaleUndo, style: _Style) -> str:
    ref = f"{'T' if error.kind == 'task' else 'P'}{error.object_id}"
    who = "someone else" if error.changed_by else "a later change"
    return (
        f"{ref} has changed since your edit ({who} changed it), so undoing would overwrite that: nothing was undone. "
        f"`why {ref}` shows what changed; edit it again if it still needs fixing."
    )


@_render.register
def _(error: UndoNeedsLeader, style: _Style) -> str:
    return (
        f"Only P{error.plan_id}'s leader can undo an edit of its goals: a master plan changes through the strategy "
        f"gate. Ask for the change back with `edit master P{error.plan_id} …`; it waits for their approval."
    )


@_render.register
def _(error: MetricNotFound, style: _Style) -> str:
    where = f" on plan {error.plan_id}" if error.plan_id is not None else ""
    hint = f" Known metrics: {_names(style, error.known)}." if error.known else ""
    return f"No metric {_repr(style, error.metric)}{where}.{hint}"


@_render.register
def _(error: WindowConflict, style: _Style) -> str:
    parent = _dated(error.parent)
    problems = []
    if error.start < error.parent_start:
        problems.append(f"starts {_day(error.start)}, before {parent} starts {_day(error.parent_start)}")
    if error.end > error.parent_end:
        problems.append(f"ends {_day(error.end)}, after {parent} ends {_day(error.parent_end)}")
    detail = " and ".join(problems) or "lies outside it"
    span = _day(error.start) if error.start == error.end else window_label(error.start, error.end)
    return style.prose(
        f"The {_dated(error.what)} ({span}) {detail}. "
        f"Choose dates within {window_label(error.parent_start, error.parent_end)}."
    )


def _day(day: date) -> str:
    """A day in an error, with its year: the reply may be read long after, and the window may span a new year."""
    return day_label(day, with_year=True)


def _dated(dated: Dated) -> str:
    """`tactical plan`, `master plan 1`, `due date of task 12`, `week 2026-W07`, `the new window of plan 3`."""
    if dated.kind == "due date" and dated.ref is not None:
        return f"due date of task {dated.ref}"
    if dated.kind == "new window":
        return f"the new window of plan {dated.ref}"
    return str(dated)


@_render.register
def _(error: InvalidValue, style: _Style) -> str:
    number = isinstance(error.value, int | float) and not isinstance(error.value, bool)
    value = _detail("value", error.value) if number else _repr(style, error.value)
    return f"{style.prose(field(error))}: {value} is not valid; expected {style.prose(expected(error))}."


FIELDS: dict[Field, str] = {
    Field.TENANT_ID: "tenant id",
    Field.USER_ID: "user id",
    Field.CONVERSATION_ID: "conversation id",
    Field.CONVERSATION_KIND: "conversation kind",
    Field.ROLE: "role",
    Field.EXPIRY: "expiry",
    Field.APPROVER: "approver",
    Field.REQUESTER: "requester",
    Field.RESUME: "what to do once approved",
    Field.ACTION_ATTRIBUTES: "the action's attributes",
    Field.PLAN: "plan",
    Field.PLANS: "plans",
    Field.TASK: "task",
    Field.TASK_SNAPSHOT: "task snapshot",
    Field.TITLE: "title",
    Field.OWNER: "owner",
    Field.CONSTRAINT: "constraint",
    Field.REASON: "reason",
    Field.WINDOW: "window",
    Field.WEEK: "week",
    Field.CADENCE: "cadence",
    Field.METRIC: "metric",
    Field.METRIC_NAME: "metric name",
    Field.VALUE: "value",
    Field.TOLERANCE: "tolerance of {metric}",
    Field.TARGET: "target of {metric}",
    Field.PLAYBOOK_NAME: "playbook name",
    Field.CURRENCY: "currency",
    Field.AMOUNT: "amount",
    Field.SPEND_DATE: "spend date",
    Field.TRIGGER: "trigger",
    Field.SETTING: "setting",
    Field.HOURS: "hours",
    Field.DAYS: "days",
    Field.NUDGES: "nudges",
    Field.HOUR: "hour",
    Field.TIME: "time",
    Field.TIME_ZONE: "time zone",
    Field.MAX_TURNS: "turns kept",
    Field.MAX_CHARS: "characters kept",
    Field.SILENCE: "silence",
    Field.MESSAGES: "messages",
    Field.ADAPTER: "adapter",
    Field.ADAPTER_NAME: "adapter name",
    Field.ADAPTER_CONFIG: "adapter configuration",
    Field.CAPABILITY: "capability",
    Field.INPUT: "input",
    Field.TIMEOUT: "timeout",
    Field.DELEGATION: "delegation",
    Field.FAILURE_THRESHOLD: "failure threshold",
    Field.COOL_DOWN: "cool-down",
    Field.PROBE_LEASE: "probe lease",
    Field.FEED: "feed",
    Field.FEED_FIELD: "feed field",
    Field.FEED_ANSWER: "feed answer",
    Field.EVERY: "every",
    Field.DATA_FIELD: "field {path} of the agent's data",
    Field.SPEND_TO_DATE: "spend to date ({path} of the agent's data)",
    Field.SOURCE_NAME: "source name",
    Field.FORMAT: "format",
    Field.DECISION_KEYS: "decision log keys",
    Field.DECISION_DATA: "the data of a decision",
    Field.DECISION_ACTOR: "who decided",
    Field.DECISION_ACTION: "what was decided",
    Field.DECISION_SUBJECT: "what a decision is about",
    Field.DECISION_VERDICT: "a decision's verdict",
    Field.DECISION_TIME: "when a decision was made",
}
"""What each field InvalidValue names reads as; `{detail}` is filled from the error's details (a test keeps every
member here, with exactly the details it names)."""


def field(error: InvalidValue) -> str:
    """The field `error` names, in the bot's words (plain text): `spend date`, `target of SQLs`."""
    return FIELDS[error.field].format_map(_shown(error))


EXPECTED: dict[Expected, str] = {
    Expected.TEXT: "some text",
    Expected.TEXT_AT_MOST: "some text of at most {limit} characters",
    Expected.NAME_CHARACTERS: "letters, digits, '-', '_' or '.', starting with a letter or digit ({limit} at most)",
    Expected.ROLE_NAME: "a short lowercase name such as legal, finance or marketing-ops",
    Expected.PLAYBOOK_NAME: "a short name such as `webinar launch`",
    Expected.METRIC_NAME: "a non-empty name such as SQLs",
    Expected.UNUSED_NAME: "a name not used yet",
    Expected.UNUSED_METRIC_NAME: "a name not yet used on {plan}",
    Expected.ONE_OF: "one of {choices}",
    Expected.WHOLE_NUMBER_FROM: "a whole number from {low} to {high}",
    Expected.WHOLE_NUMBER_AT_LEAST: "a whole number, {low} or more",
    Expected.FINITE_NUMBER: "a finite number",
    Expected.FRACTION: "a fraction from 0 to 1, e.g. 0.1",
    Expected.AT_LEAST_BASELINE: "at least the baseline {baseline} for a metric going up",
    Expected.NO_LESS_THAN_RECORDED: "no less than the {recorded} recorded from it",
    Expected.AT_MOST_BASELINE: "at most the baseline {baseline} for a metric going down",
    Expected.MINUTES_AT_LEAST: "at least {low} minutes",
    Expected.SECONDS_UP_TO: "a number of seconds above 0, {most} at most",
    Expected.POSITIVE_DURATION: "a positive duration, e.g. 5 minutes",
    Expected.CURRENCY_CODE: "a three-letter currency code such as USD, EUR or GBP",
    Expected.AMOUNT: "an amount such as 12,500 or 60k",
    Expected.POSITIVE_AMOUNT: "a positive amount",
    Expected.AMOUNT_ZERO_OR_MORE: "an amount of zero or more",
    Expected.AMOUNT_BELOW: "an amount below {most}",
    Expected.FUTURE_WITHIN_DAYS: "a time after now, at most {days} days",
    Expected.TIME_OF_DAY: "a time of day such as 20:00",
    Expected.TIME_ZONE: "an IANA time zone such as Europe/Paris",
    Expected.TIME_WITH_ZONE: "a time with its time zone",
    Expected.ISO_WEEK: "an ISO week such as 2026-W47",
    Expected.DAY_ON_OR_BEFORE: "a day on or before {day}",
    Expected.DAY_IN_WINDOW: f"a day inside {{plan}}'s window, {{start}} {RANGE_DASH} {{end}}",
    Expected.JSON_OBJECT: "an object of plain JSON values (text, numbers, lists…)",
    Expected.JSON_AT_MOST_BYTES: "at most {limit} bytes of JSON: keep references",
    Expected.SOME_KEY: "at least one key",
    Expected.TASK_SNAPSHOT: "a snapshot with its creation time",
    Expected.USER_MESSAGE_FIRST: "a user message first",
    Expected.TEAMS_TENANT_ID: "the Teams tenant id of the conversation",
    Expected.TEAMS_CONVERSATION_ID: "the Teams conversation id",
    Expected.TEAMS_USER_ID: "the AAD object id of a Teams user",
    Expected.PERSON_ID: "a person's user id (an agent or the bot cannot approve)",
    Expected.REQUESTER: "who asks: a user id, `agent:<adapter>`, `llm` or `bot`",
    Expected.RESUME: (
        'what to do once approved: `{{"operation": "<name>", "args": {{...}}}}`, `{{"delegation": <id>}}` or '
        '`{{"outbox": <id>}}`'
    ),
    Expected.PLAN_WITH_METRICS: "a master or tactical plan: weekly plans have no metrics of their own",
    Expected.TASK_HOME: "a tactical or weekly plan: tasks live under a tactical plan",
    Expected.ARCHIVABLE_PLAN: "a tactical or weekly plan: a master plan ends with its window",
    Expected.WEEK_UNCHANGED: "no change: a weekly plan always covers its ISO week",
    Expected.SAME_TASK: "the same task in the same plan",
    Expected.PLAN_ID_TOO: "the plan too, as in `in P1`: {plans} each have a KPI of that name",
    Expected.DIFFERENT_TACTICAL_PLANS: "two different tactical plans",
    Expected.TACTICAL_PLANS_OF_ONE_MASTER: "two tactical plans of one master plan",
    Expected.PLAN_WITH_BUDGET: "a master or tactical plan (spend is of the tactical plan)",
    Expected.OPEN_TASK: "an open task: this one is done already",
    Expected.DELEGATION_OF_OPEN_TASK: "a delegation of an open task: its task is done",
    Expected.AGENT_CAPABILITY: "the name of one of the agent's capabilities",
    Expected.NEW_FEED: "a feed not yet set up for {metric} (remove the old one)",
    Expected.FEED_ANSWER: "data with the metric's field",
    Expected.FEED_PART: "the {part} to read the metric from",
    Expected.FIELD_OF_DATA: "a field of the agent's data; it has {fields}",
}
"""What each form InvalidValue names reads as; `{detail}` is filled from the error's details (a test keeps every
member here, with exactly the details it names)."""

_PLAN_DETAILS = frozenset({"plan", "plans"})
"""Details that hold plan ids, shown as people type them (`P3`)."""
_MONEY_DETAILS = frozenset({"recorded"})
"""Details that hold an amount of money, shown to the cent (`12,500.50`)."""


def expected(error: InvalidValue) -> str:
    """The form `error`'s field should take, in the bot's words (plain text), its details filled in."""
    return EXPECTED[error.expected].format_map(_shown(error))


def _shown(error: InvalidValue) -> dict[str, str]:
    shown = {name: _detail(name, value) for name, value in error.details.items()}
    start, end = error.details.get("start"), error.details.get("end")
    if isinstance(start, date) and isinstance(end, date):  # a range of days, said as the cards say one
        shown["start"], shown["end"] = window_ends(start, end)
    return shown


def _detail(name: str, value: object) -> str:
    if isinstance(value, Field):
        return FIELDS[value]
    if isinstance(value, tuple | list | frozenset | set):
        return ", ".join(_detail(name, item) for item in value)
    if name in _PLAN_DETAILS and isinstance(value, int):
        return plan_ref(value)
    if name in _MONEY_DETAILS and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.2f}"
    if isinstance(value, datetime):
        return moment_label(value)
    if isinstance(value, date):
        return _day(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    # A bound a person must meet, so a fraction keeps the decimals it was given (a baseline of 0.125, not 0.1).
    return plain(value, decimals=6)


@_render.register
def _(error: PlaybookNotFound, style: _Style) -> str:
    listing = _names(style, sorted(error.known)) or "none yet"
    return f"There is no playbook named {_repr(style, error.name)}; saved playbooks: {listing}."


# ---- metrics from connected systems ------------------------------------------------------------------------------


@_render.register
def _(error: UnitMismatch, style: _Style) -> str:
    expected = style.quote(error.metric.unit) if error.metric.unit else "no unit (or the metric's name)"
    name = style.quote(error.metric.name)
    return f"{name} is counted in {expected}, not {_repr(style, error.unit)}: send it in {expected}."


@_render.register
def _(error: InvalidMetricEvent, style: _Style) -> str:
    return style.prose("invalid metric event: " + "; ".join(map(describe_problem, error.problems)))


@_render.register
def _(error: InvalidContextEvent, style: _Style) -> str:
    return style.prose("invalid context event: " + "; ".join(map(describe_problem, error.problems)))


def _stale(error: StaleContextEvent, style: _Style, earlier: str) -> str:
    ids = _names(style, map(repr, error.event_ids))
    return (
        f"event(s) {ids}: `{error.sent}` is more than {error.skew_minutes} minutes from the bot's clock "
        f"({error.now.isoformat()}). Send events as they happen, with the time they are sent, and keep the sender's "
        f"clock in sync; {earlier}."
    )


@_render.register
def _(error: StaleContextEvent, style: _Style) -> str:
    return _stale(error, style, "give an earlier time as `observed_at`")


@_render.register
def _(error: StaleMetricEvent, style: _Style) -> str:
    return _stale(error, style, "`at` may be any earlier time")


@_render.register
def _(error: StaleSpendEvent, style: _Style) -> str:
    return _stale(error, style, "`on` may be any earlier day")


@_render.register(ReplayedContextEvent)
@_render.register(ReplayedMetricEvent)
@_render.register(ReplayedSpendEvent)
def _(error: ReplayedContextEvent, style: _Style) -> str:
    return (
        f"source {_repr(style, error.source)} already posted event id(s) {_names(style, map(repr, error.event_ids))}: "
        "each event id is accepted once, so nothing of this post was stored. Give every event a new id."
    )


@_render.register
def _(error: ContextSourceNotFound, style: _Style) -> str:
    listing = f" Known sources: {_names(style, error.known)}." if error.known else " No sources are registered yet."
    hint = _did_you_mean(style, error.name, error.known)
    return f"There is no context source named {_repr(style, error.name)}.{hint}{listing}"


@_render.register
def _(error: PulledAgainstPolicy, style: _Style) -> str:
    return (
        f"policy does not let the bot call {style.quote(error.adapter)} {style.quote(error.capability)} on its own: "
        f"{_render(error.refusal, style)} Change the rule, or remove the feed and record the figure in chat."
    )


# ---- approvals ---------------------------------------------------------------------------------------------------


@_render.register
def _(error: NoApprovers, style: _Style) -> str:
    listed = " or ".join(style.quote(role) for role in error.roles)
    return (
        f"Nobody but the requester holds the {listed} approver role, so nobody could approve this. "
        f"An admin assigns one with `approvers add {error.roles[0]} <@person>`."
    )


@_render.register
def _(error: UnknownGateCategory, style: _Style) -> str:
    return f"There is no approval gate {_repr(style, error.category)}. The gates are: {', '.join(GATES)}."


@_render.register
def _(error: NotAnApprover, style: _Style) -> str:
    roles = " or ".join(style.quote(role) for role in error.roles)
    return (
        f"You are not an approver of A{error.request_id}: it went to the people holding the {roles} role "
        "when it was asked. An admin manages roles with `approvers`."
    )


@_render.register
def _(error: AlreadyDecided, style: _Style) -> str:
    status = ApprovalStatus.APPROVED if error.status is ApprovalStatus.RESUMED else error.status
    return f"A{error.request_id} was already {status.value}: nothing more to do."


# ---- the decision log and the rules ------------------------------------------------------------------------------


@_render.register
def _(error: NoDecisionKeys, style: _Style) -> str:
    tenant = f" of tenant {style.quote(error.tenant_id)}" if error.tenant_id else ""
    return (
        f"The decision log{tenant} is signed, and this process has no key to sign with: set COS_SECRET_KEYS (in "
        "local mode, keep the local key file) as the bot's other processes have it."
    )


@_render.register
def _(error: CheckpointUnreadable, style: _Style) -> str:
    return (
        f"The decision log checkpoint cannot be trusted: {style.prose(checkpoint_flaw_text(error.why, error.details))}."
    )


@_render.register
def _(error: CheckpointInvalid, style: _Style) -> str:
    return (
        f"The decision log checkpoint {style.quote(str(error.path))} cannot be trusted: "
        f"{style.prose(checkpoint_flaw_text(error.why, error.details))}. Move it aside as evidence (do not delete it), "
        "run `cos decisions verify --checkpoints FILE` with a copy you trust if you keep one, then "
        "`cos decisions checkpoint` to start a new one."
    )


@_render.register
def _(error: CheckpointRefused, style: _Style) -> str:
    problems = style.prose("; ".join(f"tenant {p.path}: {problem_message(p)}" for p in error.problems))
    return (
        f"The decision log no longer extends its checkpoint {style.quote(str(error.path))} ({problems}): the "
        "checkpoint is kept as it is. Run `cos decisions verify` to see what changed."
    )


@_render.register
def _(error: PolicyInvalid, style: _Style) -> str:
    listing = "\n".join(f"- {describe_problem(problem)}" for problem in error.problems)
    return style.prose(f"The rules were not loaded: {len(error.problems)} problem(s).\n{listing}")


# ---- delegation and agents ---------------------------------------------------------------------------------------


@_render.register
def _(error: DelegationNotRetryable, style: _Style) -> str:
    if error.status is DelegationStatus.RUNNING:
        why = "its agent is working on it now; wait for its answer"
    elif error.status is DelegationStatus.SUCCEEDED:
        why = "it succeeded already"
    else:
        why = f"it is {error.status.value}"
    return f"Delegation D{error.delegation_id} cannot be {error.action}: {why}."


@_render.register
def _(error: DelegationStopped, style: _Style) -> str:
    reasons = style.prose(policy_reasons_text(error.reasons))
    if error.cause is StopCause.POLICY:
        return f"Stopped by policy: {reasons}."
    if error.cause is StopCause.ANSWERED:
        return f"{error.approval} was {error.status}: {reasons}."
    if error.cause is StopCause.TOOL and error.problem is not None:
        return _render(error.problem, style)
    if error.cause is StopCause.NO_APPROVERS and error.problem is not None:
        return f"It needs a person's approval ({reasons}), but {sentence_within(_render(error.problem, style))}"
    return (
        f"It needs a person's approval ({reasons}), and only a delegation can wait for one: delegate it to a task "
        "instead."
    )


@_render.register
def _(error: SamplingDeclined, style: _Style) -> str:
    if error.policy is None:
        return f"an agent's request to use the bot's model was declined: {style.prose(error.reason)}"
    wait = " (it needs a person's approval, which a call cannot wait for)" if error.policy is Verdict.FLAG else ""
    said = policy_reasons_text(error.reasons)
    return f"an agent's request to use the bot's model was declined by the policy{wait}" + (
        f": {style.prose(said)}" if said else ""
    )


@_render.register
def _(error: DelegationHeld, style: _Style) -> str:
    return f"Waiting for approval A{error.approval_id}: {style.prose(policy_reasons_text(error.reasons))}."


@_render.register
def _(error: UnknownAdapterKind, style: _Style) -> str:
    hint = _did_you_mean(style, error.kind, error.known)
    return f"There is no adapter kind {_repr(style, error.kind)}.{hint} {_known(style, 'kinds', error.known)}"


@_render.register
def _(error: AdapterNotFound, style: _Style) -> str:
    hint = _did_you_mean(style, error.name, error.known)
    return f"There is no adapter named {_repr(style, error.name)}.{hint} {_known(style, 'adapters', error.known)}"


@_render.register
def _(error: ToolsNotSwitched, style: _Style) -> str:
    name = error.name
    return (
        f"{style.quote(name)} is a {style.quote(error.kind)} adapter: its capabilities are its configuration's own "
        f"and need no enabling one by one. {inline_code(f'adapter enable {name}')} and "
        f"{inline_code(f'adapter disable {name}')} switch the whole adapter."
    )


@_render.register
def _(error: ToolNotEnabled, style: _Style) -> str:
    adapter, tool = error.adapter, error.capability
    return (
        f"{style.quote(adapter)}'s tool {_repr(style, tool)} is off: a tool of an MCP server is called only once an "
        f"admin has read its definition and enabled it ({inline_code(f'adapter tools {adapter}')}, then "
        f"{inline_code(f'adapter enable {adapter} {tool}')})."
    )


@_render.register
def _(error: ToolHeld, style: _Style) -> str:
    adapter, tool = error.adapter, error.capability
    # Tools held before the fields were kept by name say `changed: <fields>`.
    fields = (error.reason or "").removeprefix("changed").removeprefix(": ")
    why = f" (changed: {style.prose(fields)})" if fields else ""
    return (
        f"{style.quote(adapter)}'s tool {_repr(style, tool)} is held: its server changed its definition since an "
        f"admin enabled it{why}. An admin reads it again ({inline_code(f'adapter tools {adapter}')}) and enables it "
        f"if it is still wanted ({inline_code(f'adapter enable {adapter} {tool}')})."
    )


@_render.register
def _(error: InputInvalid, style: _Style) -> str:
    adapter, tool = style.quote(error.adapter), style.quote(error.capability)
    if error.problem.code in (ProblemCode.SCHEMA_UNREADABLE, ProblemCode.SCHEMA_UNUSABLE):
        return (
            f"{adapter}'s tool {tool} cannot be called: {style.prose(problem_message(error.problem))}. Its server "
            "has to fix the tool's definition."
        )
    return (
        f"The input for {adapter}'s {tool} does not fit what the tool takes: {style.quote(error.field)}: "
        f"{style.prose(problem_message(error.problem))}. {inline_code(f'adapter tools {error.adapter}')} shows what "
        "each tool takes."
    )


@_render.register
def _(error: CircuitOpen, style: _Style) -> str:
    last = style.prose(error.circuit.last_error) if error.circuit.last_error else ""
    cause = f" (last error: {last})" if last else ""
    return f"{_repr(style, error.agent)} failed repeatedly and is left alone for a while{cause}"


@_render.register
def _(error: AgentDeclined, style: _Style) -> str:
    if error.status is not DelegationStatus.FAILED:
        return f"the agent answered with status {_repr(style, error.status.value)}, which is not a result"
    return style.prose(error.reason) if error.reason else "the agent declined without saying why"


@_render.register
def _(error: AdapterBroke, style: _Style) -> str:
    return style.prose(f"the {error.kind} adapter failed unexpectedly: {type(error.error).__name__}: {error.error}")


@_render.register
def _(error: DelegationGaveUp, style: _Style) -> str:
    return (
        f"{style.prose(error.reason)}; gave up after {error.attempts} attempts "
        f"(retry D{error.delegation_id} to try again)"
    )


@_render.register
def _(error: UnknownCapability, style: _Style) -> str:
    listing = _names(style, sorted(error.known)) or "none"
    return f"agent {_repr(style, error.agent)} cannot {_repr(style, error.capability)}; it can: {listing}"


@_render.register
def _(error: AgentConfigInvalid, style: _Style) -> str:
    return style.prose("invalid adapter configuration: " + "; ".join(error.problems))


# ---- secrets -----------------------------------------------------------------------------------------------------


@_render.register(PlannerError)
@_render.register(ApprovalRefused)
@_render.register(AgentError)
@_render.register(VaultError)
def _(error: PlannerError, style: _Style) -> str:
    return style.prose(str(error))


SAID: dict[type[BaseException], str] = {
    # budgets
    OverAllocated: (
        "Allocating {asked!m} to P{plan_id} would take more than master plan P{master_id}'s budget: {headroom!m} is "
        "left to allocate. Allocate at most that, lower another plan's allocation, or raise the budget."
    ),
    BudgetBelowAllocations: (
        "P{master_id}'s tactical plans are allocated {allocated!m} already, more than a budget of {asked!m}. Lower "
        "their allocations first, or set a budget of at least that."
    ),
    NoBudget: "Master plan P{master_id} has no budget yet. Set one first, for example: budget P{master_id} 250k USD.",
    CurrencyMismatch: "P{plan_id}'s budget is in {expected!r}, not {given!r}: give amounts in the budget's currency.",
    NotEnoughAllocated: "P{plan_id} is allocated {allocated!m}, less than {asked!m}: move at most what it has.",
    # plans, tasks, drafts
    TaskNotFound: "No task with id {task_id}. Show the plan to see its tasks' ids.",
    InvalidWindow: "The window ends {end!d}, before it starts {start!d}.",
    TenantMismatch: "This store serves tenant {expected!r}, but the object belongs to tenant {got!r}.",
    StaleEdit: (
        "{kind} {object_id} changed while you were editing it (you had version {expected_version}, it is now at "
        "version {actual_version}). Reload it and try again."
    ),
    DraftNotFound: "No draft with id {draft_id}.",
    DraftAlreadyDecided: "Draft {draft_id} was already {status}.",
    # metrics and context from connected systems
    ContextSourceExists: (
        "A context source named {name!r} is already registered. Choose another name, or rotate its secret."
    ),
    FeedNotFound: "There is no metric feed {feed_id}. `cos metrics feeds --tenant T` lists them.",
    # approvals
    ApprovalNotFound: "No approval request with id A{request_id}. Type `approvals` to see the ones waiting for you.",
    NotAuthenticated: (
        "A{request_id} can only be approved by a person signed in to Teams: press Approve on its card, or type "
        "`approve A{request_id}` in your chat with me."
    ),
    NotAPerson: "{who!r} is not a person: only a person can approve A{request_id}, never an agent or an LLM.",
    SelfApproval: "You asked for A{request_id}, so you cannot approve it: another approver has to.",
    ApprovalExpired: (
        "A{request_id} expired at {expires_at:%Y-%m-%d %H:%M} UTC and can no longer be decided; whoever asked for it "
        "has to ask again."
    ),
    # the decision log
    DecisionNotFound: "No decision {seq} in the log. `decisions` lists the latest ones with their numbers.",
    # delegation and agents
    TaskDoneFirst: "Not run: its task T{task_id} was done first, so it was no longer needed.",
    DelegationNotFound: "No delegation with id {delegation_id}. Show the task to see its delegations.",
    AdapterExists: (
        "An adapter named {name!r} ({kind!q}) is already registered. Choose another name, or change that one's "
        "configuration instead."
    ),
    AdapterDisabled: (
        "The adapter {name!r} is disabled, so it takes no delegations. An admin can enable it again, or the task can "
        "be delegated to another adapter."
    ),
    AgentUnavailable: "agent {agent!r} is unavailable: {reason!p}",
    AgentNotReached: "agent {agent!r} is unavailable: {reason!p}",
    AgentTimeout: "agent {agent!r} is unavailable: {reason!p}",
    QuestionCancelled: "cancelled by the person {agent!r} asked (for a sign-in code or an answer)",
    RehearsalUnsupported: (
        "{agent!r} cannot do a dry run: only a browser recipe knows which of its steps would change something. Try "
        "the adapter without --dry-run, on a task that may be done for real."
    ),
    StoppedMidCall: "the bot stopped while the agent had it: whether the agent did it is not known",
    # secrets
    NoSecretKey: (
        "no secret key is configured: set COS_SECRET_KEYS to a key made by "
        "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
    ),
    BadSecretKey: "secret key #{position} in COS_SECRET_KEYS is not a valid Fernet key (32 url-safe base64 bytes)",
    UndecryptableSecret: "a stored secret cannot be decrypted with any configured key (was its key removed too soon?)",
}
"""What the bot says for each error whose reply is its fields in a sentence: `{field}` as it is, `{field!r}` a value
someone typed (quoted, as written), `{field!q}` a name shown as written, `{field!p}` free text someone else wrote,
`{field!m}` an amount in the error's currency, `{field!d}` a day as the cards write it (`Mon 7 Dec 2026`). An error
whose reply needs more than that has a renderer above."""


class _Said(string.Formatter):
    """Fills a template of SAID from one error's fields, in one style."""

    def __init__(self, error: BaseException, style: _Style) -> None:
        self.error, self.style = error, style

    def get_value(self, key: int | str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        return getattr(self.error, str(key))

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion == "r":
            return _repr(self.style, value)
        if conversion == "q":
            return self.style.quote(str(value))
        if conversion == "p":
            return self.style.prose(str(value))
        if conversion == "m":
            return money_in_cents(value, self.error.currency)  # type: ignore[attr-defined]
        if conversion == "d":
            return _day(value)
        return super().convert_field(value, conversion)


def _said(template: str) -> Callable[[BaseException, _Style], str]:
    return lambda error, style: _Said(error, style).format(template)


for _error_class, _template in SAID.items():
    _render.register(_error_class, _said(_template))
