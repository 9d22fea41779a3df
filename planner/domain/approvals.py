"""Approval requests, as values, and the rules of deciding one.

A request waits (`pending`) until a person decides it (`approved` or `rejected`), or its time runs out
(`expired`); an approved request's action is handed over once (`resumed`). Only a person the bot authenticated in
Teams decides, never the requester (but a leader confirming what the assistant proposed on their behalf), and only
one of the request's approvers who still holds one of its roles, or leads a plan it touches (`check_decider`); a
request decides once, before it expires (`check_open`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from planner.domain.errors import Expected, Field, InvalidValue, PlannerError
from planner.domain.governance import Action, ActionKind, GateCategory, PolicyReason

FLAGGED = "flagged"
"""The gate of an action the policy engine flagged that falls under none of the six categories."""
GATES = (*(category.value for category in GateCategory), FLAGGED)
DEFAULT_GATE_ROLES: Mapping[str, str] = {
    GateCategory.STRATEGY.value: "leader",
    GateCategory.AUDIENCE.value: "marketing-ops",
    GateCategory.BUDGET.value: "finance",
    GateCategory.REGULATED_CLAIM.value: "legal",
    GateCategory.BRAND_CREATIVE.value: "brand",
    GateCategory.PERSONAL_DATA.value: "privacy",
    FLAGGED: "leader",
}
DEFAULT_EXPIRY = timedelta(hours=48)
MAX_EXPIRY = timedelta(days=90)
ROLE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
NOT_PEOPLE = frozenset({"llm", "bot", "policy", "system", "scheduler"})


def is_person(actor: str) -> bool:
    """True for a user id; False for the bot's own actors (`llm`, `bot`, `policy`) and agents (`agent:<name>`)."""
    actor = actor.strip()
    return bool(actor) and actor.lower() not in NOT_PEOPLE and not actor.lower().startswith("agent:")


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    RESUMED = "resumed"
    """Approved, and the approved action has been handed to whoever runs it (once)."""


# ---- errors --------------------------------------------------------------------------------------------------


class ApprovalNotFound(PlannerError, LookupError):
    def __init__(self, request_id: int) -> None:
        self.request_id = request_id
        super().__init__(f"approval request A{request_id} not found")


class NoApprovers(PlannerError, LookupError):
    """Nobody (other than the requester) holds a role that may approve the action."""

    def __init__(self, roles: Sequence[str]) -> None:
        self.roles = tuple(roles)
        super().__init__(f"nobody but the requester holds the {' or '.join(roles)} approver role")


class UnknownGateCategory(PlannerError, LookupError):
    def __init__(self, category: str) -> None:
        self.category = category
        super().__init__(f"unknown approval gate {category!r}")


class ApprovalRefused(PlannerError, PermissionError):
    """A decision that is not allowed; nothing was changed. Each subclass is one reason why."""

    def __init__(self, request_id: int, who: str, message: str) -> None:
        self.request_id = request_id
        self.who = who
        super().__init__(message)


class NotAuthenticated(ApprovalRefused):
    def __init__(self, request_id: int, who: str) -> None:
        super().__init__(
            request_id,
            who,
            f"A{request_id} can only be approved by a person signed in to Teams",
        )


class NotAPerson(ApprovalRefused):
    def __init__(self, request_id: int, who: str) -> None:
        super().__init__(
            request_id,
            who,
            f"{who!r} is not a person, so cannot approve A{request_id}",
        )


class SelfApproval(ApprovalRefused):
    def __init__(self, request_id: int, who: str) -> None:
        super().__init__(request_id, who, f"{who!r} asked for A{request_id}, so cannot approve it")


class NotAnApprover(ApprovalRefused):
    def __init__(self, request_id: int, who: str, roles: Sequence[str]) -> None:
        self.roles = tuple(roles)
        super().__init__(
            request_id,
            who,
            f"{who!r} is not an approver of A{request_id} (roles: {', '.join(roles)})",
        )


class ApprovalExpired(ApprovalRefused):
    def __init__(self, request_id: int, who: str, expires_at: datetime) -> None:
        self.expires_at = expires_at
        super().__init__(
            request_id,
            who,
            f"A{request_id} expired at {expires_at:%Y-%m-%d %H:%M} UTC",
        )


class AlreadyDecided(ApprovalRefused):
    def __init__(self, request_id: int, who: str, status: ApprovalStatus, decided_by: str | None) -> None:
        self.status = status
        self.decided_by = decided_by
        super().__init__(request_id, who, f"A{request_id} was already {status.value}")


# ---- values --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ApprovalRequest:
    """An action waiting for (or given) a person's decision."""

    id: int
    tenant_id: str
    action: Action
    requester: str
    """Who asked: a user id, or `agent:<adapter>`, `llm`, `bot` for what the bot itself was about to do."""
    reason: str
    policy_reasons: tuple[PolicyReason, ...] = ()
    """What the policy rules that flagged it said (the bot words a gate's reason)."""
    rules: tuple[str, ...] = ()
    """Ids of those rules."""
    resume: dict[str, Any]
    """What to do once approved: `{"operation": name, "args": {...}}` or `{"delegation": id}`."""
    roles: tuple[str, ...]
    approvers: tuple[str, ...]
    """User ids that may decide it, fixed when it was asked."""
    leaders: tuple[str, ...] = ()
    """Among them, the leaders (owners) of the master plans a strategy change touches: they decide it by leading
    those plans, with or without an approver role, and may confirm what the assistant proposed on their behalf."""
    status: ApprovalStatus
    created_at: datetime
    expires_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    note: str | None = None
    resumed_at: datetime | None = None

    @property
    def ref(self) -> str:
        return f"A{self.id}"

    @property
    def categories(self) -> tuple[GateCategory, ...]:
        return self.action.categories

    @property
    def approved(self) -> bool:
        return self.status in (ApprovalStatus.APPROVED, ApprovalStatus.RESUMED)

    @property
    def subject(self) -> str:
        """What the decision log files it under: the action's subject, or the request itself."""
        return self.action.subject or f"approval:{self.id}"


# ---- rules ---------------------------------------------------------------------------------------------------


def valid_role(role: str) -> str:
    """`role` as stored (lowercase). Raises InvalidValue for anything but a short lowercase name."""
    role = role.strip().lower()
    if not ROLE.match(role):
        raise InvalidValue(Field.ROLE, role, Expected.ROLE_NAME)
    return role


def gate_of(category: str) -> str:
    """The gate a category names (`Regulated claim` is `regulated_claim`). Raises UnknownGateCategory."""
    gate = category.strip().lower().replace("-", "_").replace(" ", "_")
    if gate not in GATES:
        raise UnknownGateCategory(category)
    return gate


def valid_expiry(expires_in: timedelta) -> timedelta:
    """`expires_in`, when it is a time after now within `MAX_EXPIRY`. Raises InvalidValue."""
    if not timedelta(0) < expires_in <= MAX_EXPIRY:
        raise InvalidValue(Field.EXPIRY, expires_in, Expected.FUTURE_WITHIN_DAYS, days=MAX_EXPIRY.days)
    return expires_in


def check_decider(request: ApprovalRequest, approver: str, *, authenticated: bool, roles: frozenset[str]) -> None:
    """Whether `approver`, holding `roles` now, may decide `request` at all.

    Raises NotAuthenticated, NotAPerson, SelfApproval or NotAnApprover.
    """
    if not authenticated:
        raise NotAuthenticated(request.id, approver)
    if not is_person(approver):
        raise NotAPerson(request.id, approver)
    leads = approver in request.leaders
    # The one exception to "never the requester": a leader confirming what the assistant proposed for them.
    if approver == request.requester and not (leads and request.action.actor == "llm"):
        raise SelfApproval(request.id, approver)
    # An approver named when it was asked who has since lost the role (left the team, revoked) may not decide.
    if approver not in request.approvers or not (leads or roles & set(request.roles)):
        raise NotAnApprover(request.id, approver, request.roles)


def check_open(request: ApprovalRequest, approver: str) -> None:
    """Whether `request` is still waiting for a decision. Raises ApprovalExpired or AlreadyDecided."""
    if request.status is ApprovalStatus.EXPIRED:
        raise ApprovalExpired(request.id, approver, request.expires_at)
    if request.status is not ApprovalStatus.PENDING:
        raise AlreadyDecided(request.id, approver, request.status, request.decided_by)


def lost_decision(request: ApprovalRequest, approver: str, now_stored: ApprovalRequest) -> ApprovalRefused:
    """Why deciding `request` changed nothing, from what is stored now: it expired, or someone decided first."""
    if now_stored.status in (ApprovalStatus.PENDING, ApprovalStatus.EXPIRED):
        return ApprovalExpired(request.id, approver, request.expires_at)
    return AlreadyDecided(request.id, approver, now_stored.status, now_stored.decided_by)


def gate_roles(changed: Mapping[str, str]) -> dict[str, str]:
    """Each gate to the role that approves it: the defaults, with a tenant's `changed` ones (unknown gates ignored)."""
    return dict(DEFAULT_GATE_ROLES) | {gate: role for gate, role in changed.items() if gate in GATES}


def action_from_json(tenant_id: str, data: Mapping[str, Any]) -> Action:
    """The action a request holds, from its stored JSON."""
    return Action(
        tenant_id=tenant_id,
        kind=ActionKind(data["kind"]),
        actor=data["actor"],
        on_behalf_of=data.get("on_behalf_of"),
        agent=data.get("agent"),
        name=data.get("name", ""),
        subject=data.get("subject", ""),
        accounts=tuple(data.get("accounts", ())),
        attributes=dict(data.get("attributes") or {}),
        categories=tuple(GateCategory(c) for c in data.get("categories", ())),
    )
