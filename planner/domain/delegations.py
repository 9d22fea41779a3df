"""A delegation as a value, and its state machine: which statuses are final, what may run, be retried or cancelled.

A delegation is `queued` when asked for, `running` while an agent works on it, then `succeeded` or `failed` (the
agent answered), `deferred` when the call provably never reached the agent, `held` while a person's approval is
awaited, `unknown` when it may have reached the agent and no answer came back, or `cancelled`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from planner.domain.adapters import RegisteredAdapter
from planner.domain.circuits import Circuit
from planner.domain.errors import PlannerError


class DelegationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEFERRED = "deferred"
    """The agent's circuit is open: the delegation waits until the agent is back."""
    HELD = "held"
    """A policy flagged it: the delegation waits for a person's approval (see `planner/governance/guard.py`)."""
    UNKNOWN = "unknown"
    """The call may have reached the agent but no answer came back (the connection broke, it timed out, the runner
    stopped): never sent again by itself, since that could repeat its effect. A person retries or cancels it."""
    CANCELLED = "cancelled"
    """A person cancelled it, or its task was done or deleted, before an agent ran it."""


MAX_ATTEMPTS = 5
"""A deferred delegation is sent at most this many times by itself; then it fails, and a person may retry it."""
MAX_EVIDENCE_BYTES = 5 * 1024 * 1024
"""Evidence larger than this (a huge screenshot) is listed but its content is not kept."""
MAX_EVIDENCE_ITEMS = 20
MAX_OUTPUT_CHARS = 200_000
"""How much of an agent's answer a delegation keeps as its output (the whole answer is also kept as a file)."""
SHOWN_ANSWER_CHARS = 1_500
"""How much of an answer its card shows: a longer one is also kept whole as a file (up to `MAX_EVIDENCE_BYTES`),
which the card links to."""
MAX_TIMEOUT_SECONDS = 3600.0
DEFAULT_TIMEOUT_SECONDS = 60.0
"""How long a delegation's call may take when neither the request nor the adapter's config says."""

FINAL = frozenset({DelegationStatus.SUCCEEDED, DelegationStatus.FAILED, DelegationStatus.CANCELLED})
"""Statuses a delegation ends in."""
RUNNABLE = (DelegationStatus.QUEUED, DelegationStatus.DEFERRED)
"""Statuses a runner may claim a delegation in."""
IN_FLIGHT = (*RUNNABLE, DelegationStatus.RUNNING)
"""Statuses of a delegation a runner has yet to finish."""
CANCELLABLE = (*RUNNABLE, DelegationStatus.HELD, DelegationStatus.UNKNOWN)
OPEN = (*IN_FLIGHT, DelegationStatus.HELD, DelegationStatus.UNKNOWN)
"""Statuses of a delegation a person may want to steer: running or about to, waiting for a person, deferred, or of
unknown outcome."""
"""Statuses no agent is working in: a person (or a done task) may cancel the delegation."""
RETRYABLE = (DelegationStatus.UNKNOWN, DelegationStatus.FAILED, DelegationStatus.CANCELLED)
"""Statuses a person may queue a delegation again from."""


def gives_up(attempts: int) -> bool:
    """Whether a delegation whose call never reached its agent after `attempts` calls fails instead of waiting."""
    return attempts >= MAX_ATTEMPTS


def cut_output(output: str | None) -> tuple[str | None, bool]:
    """The agent's answer as kept (its first `MAX_OUTPUT_CHARS` characters), and whether it was longer."""
    if output is not None and len(output) > MAX_OUTPUT_CHARS:
        return output[:MAX_OUTPUT_CHARS], True
    return output, False


def keeps_evidence(size: int) -> bool:
    """Whether evidence of `size` bytes is kept with its content (larger evidence is only listed)."""
    return size <= MAX_EVIDENCE_BYTES


class DelegationNotFound(PlannerError, LookupError):
    def __init__(self, delegation_id: int) -> None:
        self.delegation_id = delegation_id
        super().__init__(f"delegation D{delegation_id} not found")


class StoppedMidCall(PlannerError):
    """Why a delegation whose runner stopped (or whose lease lapsed) while its agent had it is `unknown`. Not raised:
    it is what its record keeps."""

    def __init__(self) -> None:
        super().__init__("the runner stopped during the call")


class AgentDeclined(PlannerError):
    """The agent answered without a result: it failed (`reason`: its words, if any), or gave a status that is not
    one (`status`). Not raised: it is the failure its record keeps."""

    def __init__(self, status: DelegationStatus, reason: str | None) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"the agent answered {status.value}" + (f": {reason}" if reason else ""))


class AdapterBroke(PlannerError):
    """An adapter raised what its interface does not allow (its errors should be AgentErrors). Not raised: it is the
    failure its delegation's record keeps."""

    def __init__(self, kind: str, error: BaseException) -> None:
        self.kind = kind
        self.error = error
        super().__init__(f"the {kind} adapter raised {type(error).__name__}: {error}")


class DelegationGaveUp(PlannerError):
    """A delegation whose calls never reached its agent failed after `attempts` of them (`reason`: why the last did
    not); a person may retry it. Not raised: it is the failure its record keeps."""

    def __init__(self, delegation_id: int, attempts: int, reason: str) -> None:
        self.delegation_id = delegation_id
        self.attempts = attempts
        self.reason = reason
        super().__init__(f"delegation D{delegation_id} gave up after {attempts} attempts: {reason}")


class TaskDoneFirst(PlannerError):
    """The delegation's task was done before it ran, so what it would do is no longer wanted. Not raised: it is why
    its record says it was cancelled."""

    def __init__(self, delegation_id: int, task_id: int) -> None:
        self.delegation_id = delegation_id
        self.task_id = task_id
        super().__init__(f"task T{task_id} was done before delegation D{delegation_id} ran")


class DelegationNotRetryable(PlannerError, ValueError):
    """A person asked to retry or cancel a delegation in a state that does not allow it."""

    def __init__(self, delegation_id: int, status: DelegationStatus, action: str) -> None:
        self.delegation_id = delegation_id
        self.status = status
        self.action = action
        super().__init__(f"delegation D{delegation_id} cannot be {action}: it is {status.value}")


@dataclass(frozen=True, kw_only=True)
class Delegation:
    """A task handed to an agent: the request, the result once there is one, and the timings."""

    id: int
    tenant_id: str
    task_id: int
    adapter: str
    adapter_kind: str
    capability: str
    input: dict[str, Any]
    timeout_seconds: float
    actor: str
    """Who asked for it."""
    status: DelegationStatus
    output: str | None = None
    """What the agent answered: data to show, never an instruction to follow."""
    output_cut: bool = False
    """The answer was longer than `MAX_OUTPUT_CHARS`: `output` is its beginning."""
    data: dict[str, Any] | None = None
    progress: tuple[str, ...] = ()
    """The steps the agent reported along the way, oldest first (data, like the output)."""
    live_card: dict[str, Any] | None = None
    """Where the card its owner follows it in lies, as the bot wrote it (its result updates that card in place);
    None when nobody follows it."""
    error: str | None = None
    queued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seconds: float | None = None
    attempts: int = 0
    """How many times an agent was called for it."""
    deferred_at: datetime | None = None
    retry_at: datetime | None = None
    """When the agent's circuit may let it through again, while deferred."""
    owner_told_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINAL

    @property
    def runnable(self) -> bool:
        """A runner may claim it."""
        return self.status in RUNNABLE

    @property
    def cancellable(self) -> bool:
        return self.status in CANCELLABLE

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE


@dataclass(frozen=True, kw_only=True)
class StoredEvidence:
    """Evidence kept with a delegation; `content` is None when it was over the size limit."""

    id: int
    delegation_id: int
    kind: str
    media_type: str
    description: str
    size: int
    content: bytes | None


@dataclass(frozen=True, kw_only=True)
class OverdueDelegation:
    """A delegation that produced nothing by its task's due date: a follow-up is due."""

    delegation: Delegation
    task_title: str
    task_owner: str | None
    due_on: date


@dataclass(frozen=True, kw_only=True)
class Prospect:
    """What a runner reads before it claims a delegation."""

    delegation: Delegation
    adapter: RegisteredAdapter | None
    """None: the adapter was removed."""
    circuit: Circuit
    owner: str | None
    """The task's owner."""
    task_done: bool = False


@dataclass(frozen=True, kw_only=True)
class AdapterOutcomes:
    """How an adapter's delegations last went: when one last succeeded, and when one last failed and why."""

    adapter: str
    last_success: datetime | None = None
    last_failure: datetime | None = None
    last_error: str | None = None
