"""What the bot says when the planner, an agent or the vault refuses: each error class rendered as the reply a person
reads, from the error's fields. The planner's own messages (`str(error)`) are plain facts for logs.

`describe` writes a chat reply (Markdown: what people, agents and the planner wrote is shown literally, the commands
the bot suggests as code); `describe_plain` writes the same words as plain text, for a terminal, a log an operator
reads or an HTTP answer. An error class without a renderer here falls back to its own message; a test keeps every
planner error class registered, so none reaches a person as developer text.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import singledispatch

from bot.cards.markdown import Markdown, inline_code, literal, literal_prose
from bot.cards.wording import money
from bot.text.gates import policy_reasons_text
from bot.text.messages import sentence_within
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
)
from planner.domain.drafts import DraftAlreadyDecided, DraftNotFound
from planner.domain.errors import (
    Dated,
    InvalidValue,
    InvalidWindow,
    MetricNotFound,
    NothingToUndo,
    PlannerError,
    PlanNotFound,
    StaleEdit,
    TaskNotFound,
    TenantMismatch,
    WindowConflict,
)
from planner.domain.ingestion import InvalidMetricEvent, UnitMismatch
from planner.domain.policy import PolicyInvalid
from planner.governance.gated_agent import CircuitOpen, DelegationHeld, DelegationStopped, StopCause
from planner.ports import (
    AgentConfigInvalid,
    AgentError,
    AgentNotReached,
    AgentTimeout,
    AgentUnavailable,
    QuestionCancelled,
    RehearsalUnsupported,
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
def _(error: OverAllocated, style: _Style) -> str:
    return (
        f"Allocating {money(error.asked, error.currency)} to P{error.plan_id} would take more than master plan "
        f"P{error.master_id}'s budget: {money(error.headroom, error.currency)} is left to allocate. Allocate at most "
        "that, lower another plan's allocation, or raise the budget."
    )


@_render.register
def _(error: BudgetBelowAllocations, style: _Style) -> str:
    return (
        f"P{error.master_id}'s tactical plans are allocated {money(error.allocated, error.currency)} already, more "
        f"than a budget of {money(error.asked, error.currency)}. Lower their allocations first, or set a budget of at "
        "least that."
    )


@_render.register
def _(error: NoBudget, style: _Style) -> str:
    master = error.master_id
    return f"Master plan P{master} has no budget yet. Set one first, for example: budget P{master} 250k USD."


@_render.register
def _(error: CurrencyMismatch, style: _Style) -> str:
    return (
        f"P{error.plan_id}'s budget is in {_repr(style, error.expected)}, not {_repr(style, error.given)}: give "
        "amounts in the budget's currency."
    )


@_render.register
def _(error: NotEnoughAllocated, style: _Style) -> str:
    return (
        f"P{error.plan_id} is allocated {money(error.allocated, error.currency)}, less than "
        f"{money(error.asked, error.currency)}: move at most what it has."
    )


@_render.register
def _(error: InvalidSpendEvent, style: _Style) -> str:
    return style.prose("The spend event is not valid: " + "; ".join(error.problems) + ".")


# ---- plans, tasks, metrics ---------------------------------------------------------------------------------------


@_render.register
def _(error: PlanNotFound, style: _Style) -> str:
    what = f"{error.tier} plan" if error.tier else "plan"
    return f"No {what} with id {error.plan_id}. List the plans to see their ids."


@_render.register
def _(error: TaskNotFound, style: _Style) -> str:
    return f"No task with id {error.task_id}. Show the plan to see its tasks' ids."


@_render.register
def _(error: NothingToUndo, style: _Style) -> str:
    what = f"task T{error.task_id}" if error.task_id is not None else "a task"
    return (
        f"There is no deletion of {what} from the last {error.minutes} minutes to undo; a deleted task can be "
        "brought back only that soon. Add it again instead."
    )


@_render.register
def _(error: MetricNotFound, style: _Style) -> str:
    where = f" on plan {error.plan_id}" if error.plan_id is not None else ""
    hint = f" Known metrics: {_names(style, error.known)}." if error.known else ""
    return f"No metric {_repr(style, error.metric)}{where}.{hint}"


@_render.register
def _(error: WindowConflict, style: _Style) -> str:
    start, end, parent = error.start.isoformat(), error.end.isoformat(), _dated(error.parent)
    problems = []
    if error.start < error.parent_start:
        problems.append(f"starts {start}, before {parent} starts {error.parent_start.isoformat()}")
    if error.end > error.parent_end:
        problems.append(f"ends {end}, after {parent} ends {error.parent_end.isoformat()}")
    detail = " and ".join(problems) or "lies outside it"
    return style.prose(
        f"The {_dated(error.what)} ({start} to {end}) {detail}. "
        f"Choose dates between {error.parent_start.isoformat()} and {error.parent_end.isoformat()}."
    )


def _dated(dated: Dated) -> str:
    """`tactical plan`, `master plan 1`, `due date of task 12`, `week 2026-W07`, `the new window of plan 3`."""
    if dated.kind == "due date" and dated.ref is not None:
        return f"due date of task {dated.ref}"
    if dated.kind == "new window":
        return f"the new window of plan {dated.ref}"
    return str(dated)


@_render.register
def _(error: InvalidWindow, style: _Style) -> str:
    return f"The window ends {error.end.isoformat()}, before it starts {error.start.isoformat()}."


@_render.register
def _(error: InvalidValue, style: _Style) -> str:
    value = _repr(style, error.value)
    return f"{style.prose(error.field)}: {value} is not valid; expected {style.prose(error.expected)}."


@_render.register
def _(error: TenantMismatch, style: _Style) -> str:
    return (
        f"This store serves tenant {_repr(style, error.expected)}, "
        f"but the object belongs to tenant {_repr(style, error.got)}."
    )


@_render.register
def _(error: StaleEdit, style: _Style) -> str:
    return (
        f"{error.kind} {error.object_id} changed while you were editing it (you had version "
        f"{error.expected_version}, it is now at version {error.actual_version}). Reload it and try again."
    )


@_render.register
def _(error: DraftNotFound, style: _Style) -> str:
    return f"No draft with id {error.draft_id}."


@_render.register
def _(error: DraftAlreadyDecided, style: _Style) -> str:
    return f"Draft {error.draft_id} was already {error.status}."


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
    return style.prose("invalid metric event: " + "; ".join(error.problems))


@_render.register
def _(error: InvalidContextEvent, style: _Style) -> str:
    return style.prose("invalid context event: " + "; ".join(error.problems))


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
def _(error: ContextSourceExists, style: _Style) -> str:
    return (
        f"A context source named {_repr(style, error.name)} is already registered. "
        "Choose another name, or rotate its secret."
    )


@_render.register
def _(error: PulledAgainstPolicy, style: _Style) -> str:
    return (
        f"policy does not let the bot call {style.quote(error.adapter)} {style.quote(error.capability)} on its own: "
        f"{_render(error.refusal, style)} Change the rule, or remove the feed and record the figure in chat."
    )


@_render.register
def _(error: FeedNotFound, style: _Style) -> str:
    return f"There is no metric feed {error.feed_id}. `cos metrics feeds --tenant T` lists them."


# ---- approvals ---------------------------------------------------------------------------------------------------


@_render.register
def _(error: ApprovalNotFound, style: _Style) -> str:
    return f"No approval request with id A{error.request_id}. Type `approvals` to see the ones waiting for you."


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
def _(error: ApprovalRefused, style: _Style) -> str:
    return style.prose(str(error))


@_render.register
def _(error: NotAuthenticated, style: _Style) -> str:
    ref = f"A{error.request_id}"
    return (
        f"{ref} can only be approved by a person signed in to Teams: press Approve on its card, "
        f"or type `approve {ref}` in your chat with me."
    )


@_render.register
def _(error: NotAPerson, style: _Style) -> str:
    return (
        f"{_repr(style, error.who)} is not a person: only a person can approve A{error.request_id}, "
        "never an agent or an LLM."
    )


@_render.register
def _(error: SelfApproval, style: _Style) -> str:
    return f"You asked for A{error.request_id}, so you cannot approve it: another approver has to."


@_render.register
def _(error: NotAnApprover, style: _Style) -> str:
    roles = " or ".join(style.quote(role) for role in error.roles)
    return (
        f"You are not an approver of A{error.request_id}: it went to the people holding the {roles} role "
        "when it was asked. An admin manages roles with `approvers`."
    )


@_render.register
def _(error: ApprovalExpired, style: _Style) -> str:
    return (
        f"A{error.request_id} expired at {error.expires_at:%Y-%m-%d %H:%M} UTC and can no longer be decided; "
        "whoever asked for it has to ask again."
    )


@_render.register
def _(error: AlreadyDecided, style: _Style) -> str:
    status = ApprovalStatus.APPROVED if error.status is ApprovalStatus.RESUMED else error.status
    return f"A{error.request_id} was already {status.value}: nothing more to do."


# ---- the decision log and the rules ------------------------------------------------------------------------------


@_render.register
def _(error: DecisionNotFound, style: _Style) -> str:
    return f"No decision {error.seq} in the log. `decisions` lists the latest ones with their numbers."


@_render.register
def _(error: NoDecisionKeys, style: _Style) -> str:
    tenant = f" of tenant {style.quote(error.tenant_id)}" if error.tenant_id else ""
    return (
        f"The decision log{tenant} is signed, and this process has no key to sign with: set COS_SECRET_KEYS (in "
        "local mode, keep the local key file) as the bot's other processes have it."
    )


@_render.register
def _(error: CheckpointUnreadable, style: _Style) -> str:
    return f"The decision log checkpoint cannot be trusted: {style.prose(error.reason)}."


@_render.register
def _(error: CheckpointInvalid, style: _Style) -> str:
    return (
        f"The decision log checkpoint {style.quote(str(error.path))} cannot be trusted: {style.prose(error.reason)}. "
        "Move it aside as evidence (do not delete it), run `cos decisions verify --checkpoints FILE` with a copy you "
        "trust if you keep one, then `cos decisions checkpoint` to start a new one."
    )


@_render.register
def _(error: CheckpointRefused, style: _Style) -> str:
    problems = style.prose("; ".join(error.problems))
    return (
        f"The decision log no longer extends its checkpoint {style.quote(str(error.path))} ({problems}): the "
        "checkpoint is kept as it is. Run `cos decisions verify` to see what changed."
    )


@_render.register
def _(error: PolicyInvalid, style: _Style) -> str:
    listing = "\n".join(f"- {problem}" for problem in error.problems)
    return style.prose(f"The rules were not loaded: {len(error.problems)} problem(s).\n{listing}")


# ---- delegation and agents ---------------------------------------------------------------------------------------


@_render.register
def _(error: DelegationNotFound, style: _Style) -> str:
    return f"No delegation with id {error.delegation_id}. Show the task to see its delegations."


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
def _(error: AdapterExists, style: _Style) -> str:
    return (
        f"An adapter named {_repr(style, error.name)} ({style.quote(error.kind)}) is already registered. "
        "Choose another name, or change that one's configuration instead."
    )


@_render.register
def _(error: AdapterDisabled, style: _Style) -> str:
    return (
        f"The adapter {_repr(style, error.name)} is disabled, so it takes no delegations. An admin can enable it "
        "again, or the task can be delegated to another adapter."
    )


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
    why = f" ({style.prose(error.reason)})" if error.reason else ""
    return (
        f"{style.quote(adapter)}'s tool {_repr(style, tool)} is held: its server changed its definition since an "
        f"admin enabled it{why}. An admin reads it again ({inline_code(f'adapter tools {adapter}')}) and enables it "
        f"if it is still wanted ({inline_code(f'adapter enable {adapter} {tool}')})."
    )


@_render.register
def _(error: InputInvalid, style: _Style) -> str:
    adapter = error.adapter
    return (
        f"The input for {style.quote(adapter)}'s {style.quote(error.capability)} does not fit what the tool takes: "
        f"{style.quote(error.field)}: {style.prose(error.problem)}. {inline_code(f'adapter tools {adapter}')} shows "
        "what each tool takes."
    )


@_render.register
def _(error: AgentError, style: _Style) -> str:
    return style.prose(str(error))


@_render.register(AgentUnavailable)
@_render.register(AgentNotReached)
@_render.register(AgentTimeout)
def _(error: AgentUnavailable, style: _Style) -> str:
    return f"agent {_repr(style, error.agent)} is unavailable: {style.prose(error.reason)}"


@_render.register
def _(error: QuestionCancelled, style: _Style) -> str:
    return f"cancelled by the person {_repr(style, error.agent)} asked (for a sign-in code or an answer)"


@_render.register
def _(error: RehearsalUnsupported, style: _Style) -> str:
    return (
        f"{_repr(style, error.agent)} cannot do a dry run: only a browser recipe knows which of its steps would "
        "change something. Try the adapter without --dry-run, on a task that may be done for real."
    )


@_render.register
def _(error: CircuitOpen, style: _Style) -> str:
    last = style.prose(error.circuit.last_error) if error.circuit.last_error else ""
    cause = f" (last error: {last})" if last else ""
    return f"{_repr(style, error.agent)} failed repeatedly and is left alone for a while{cause}"


@_render.register
def _(error: StoppedMidCall, style: _Style) -> str:
    return "the bot stopped while the agent had it: whether the agent did it is not known"


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


@_render.register
def _(error: VaultError, style: _Style) -> str:
    return style.prose(str(error))


@_render.register
def _(error: NoSecretKey, style: _Style) -> str:
    return (
        "no secret key is configured: set COS_SECRET_KEYS to a key made by "
        "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
    )


@_render.register
def _(error: BadSecretKey, style: _Style) -> str:
    return f"secret key #{error.position} in COS_SECRET_KEYS is not a valid Fernet key (32 url-safe base64 bytes)"


@_render.register
def _(error: UndecryptableSecret, style: _Style) -> str:
    return "a stored secret cannot be decrypted with any configured key (was its key removed too soon?)"


@_render.register
def _(error: PlannerError, style: _Style) -> str:
    return style.prose(str(error))
