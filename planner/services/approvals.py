"""Human approval gates: an action that needs a person's yes waits, in the database, until it gets one.

Strategy changes, audience definitions, budget shifts, regulated claims, brand-critical creative and the use of
personal data always need a person (`GateCategory`), and so does whatever the policy engine flags. Each category
is approved by a role (`legal`, `finance`…; the mapping has defaults and each tenant can change it), and admins
say who holds which role (`Approvers`).

`Approvals.request` stores the action with the approvers it resolves at that moment and, in the same
transaction, one outbox message per approver (the bot turns it into an approval card). The request is decided
once: `decide` moves it from `pending` to `approved` or `rejected` with a compare-and-set, and only when the
decider is a person the bot authenticated in Teams, is one of the request's approvers, still holds one of its
roles, and is not the requester. Anything else is refused with an error rooted in PermissionError, logged, and
recorded as `refused`. An LLM, an agent's output or an unauthenticated caller has no way to set `authenticated`:
only the bot's Teams operations do, for the person whose activity they handle.

A request that nobody decided in time expires (`expire_due`, from the scheduler, or on the first click after
the deadline). An approved request is resumed once: `claim_resume` moves it to `resumed` with a compare-and-set,
so of two replicas handling the same approval only one runs the action. Everything lives in the database, so a
restart loses no request, no decision and no pending resumption (`awaiting_resume`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from planner.domain.errors import InvalidValue, PlannerError, TenantMismatch
from planner.domain.governance import Action, ActionKind, DecisionRecord, GateCategory, PolicyDecision, Verdict
from planner.ports import Clock
from planner.services.outbox import PENDING as OUTBOX_PENDING
from planner.services.outbox import MessageKind
from planner.store import Store, upsert
from planner.store.schema import approval_gates, approval_requests, approval_roles, firings, outbox

logger = logging.getLogger(__name__)

Record = Callable[[DecisionRecord], Awaitable[object]]
"""Where decisions are written (the decision log's `record`)."""

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
        super().__init__(
            f"No approval request with id A{request_id}. Type `approvals` to see the ones waiting for you."
        )


class NoApprovers(PlannerError, LookupError):
    """Nobody (other than the requester) holds a role that may approve the action."""

    def __init__(self, roles: Sequence[str]) -> None:
        self.roles = tuple(roles)
        listed = " or ".join(roles)
        super().__init__(
            f"Nobody but the requester holds the {listed} approver role, so nobody could approve this. "
            f"An admin assigns one with `approvers add {roles[0]} <@person>`."
        )


class UnknownGateCategory(PlannerError, LookupError):
    def __init__(self, category: str) -> None:
        super().__init__(f"There is no approval gate {category!r}. The gates are: {', '.join(GATES)}.")


class ApprovalRefused(PlannerError, PermissionError):
    """A decision that is not allowed; nothing was changed. The message says why and what to do instead."""

    def __init__(self, request_id: int, who: str, message: str) -> None:
        self.request_id = request_id
        self.who = who
        super().__init__(message)


class NotAuthenticated(ApprovalRefused):
    def __init__(self, request_id: int, who: str) -> None:
        super().__init__(
            request_id,
            who,
            f"A{request_id} can only be approved by a person signed in to Teams: press Approve on its card, "
            f"or type `approve A{request_id}` in your chat with me.",
        )


class NotAPerson(ApprovalRefused):
    def __init__(self, request_id: int, who: str) -> None:
        super().__init__(
            request_id,
            who,
            f"{who!r} is not a person: only a person can approve A{request_id}, never an agent or an LLM.",
        )


class SelfApproval(ApprovalRefused):
    def __init__(self, request_id: int, who: str) -> None:
        super().__init__(
            request_id, who, f"You asked for A{request_id}, so you cannot approve it: another approver has to."
        )


class NotAnApprover(ApprovalRefused):
    def __init__(self, request_id: int, who: str, roles: Sequence[str]) -> None:
        self.roles = tuple(roles)
        super().__init__(
            request_id,
            who,
            f"You are not an approver of A{request_id}: it went to the people holding the {' or '.join(roles)} role "
            f"when it was asked. An admin manages roles with `approvers`.",
        )


class ApprovalExpired(ApprovalRefused):
    def __init__(self, request_id: int, who: str, expires_at: datetime) -> None:
        self.expires_at = expires_at
        super().__init__(
            request_id,
            who,
            f"A{request_id} expired at {expires_at:%Y-%m-%d %H:%M} UTC and can no longer be decided; "
            f"whoever asked for it has to ask again.",
        )


class AlreadyDecided(ApprovalRefused):
    def __init__(self, request_id: int, who: str, status: ApprovalStatus, decided_by: str | None) -> None:
        self.status = status
        self.decided_by = decided_by
        shown = ApprovalStatus.APPROVED.value if status is ApprovalStatus.RESUMED else status.value
        super().__init__(request_id, who, f"A{request_id} was already {shown}: nothing more to do.")


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
    policy_reasons: tuple[str, ...] = ()
    """What the policy rules that flagged it said."""
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


def _json_object(field_name: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        return dict(json.loads(json.dumps(dict(value or {}))))
    except (TypeError, ValueError):
        raise InvalidValue(field_name, value, "an object of plain JSON values (text, numbers, lists…)") from None


def _resume_payload(resume: Mapping[str, Any]) -> dict[str, Any]:
    payload = _json_object("resume", resume)
    operation = payload.get("operation")
    if isinstance(operation, str) and operation and isinstance(payload.get("args", {}), dict):
        return payload
    held = payload.get("delegation", payload.get("outbox"))
    if isinstance(held, int) and not isinstance(held, bool) and len(payload) == 1:
        return payload
    raise InvalidValue(
        "resume",
        resume,
        'what to do once approved: {"operation": "<name>", "args": {...}}, {"delegation": <id>} or {"outbox": <id>}',
    )


def _action_json(action: Action) -> dict[str, Any]:
    return {
        "kind": action.kind.value,
        "actor": action.actor,
        "on_behalf_of": action.on_behalf_of,
        "agent": action.agent,
        "name": action.name,
        "subject": action.subject,
        "accounts": list(action.accounts),
        "attributes": _json_object("action attributes", action.attributes),
        "categories": [GateCategory(c).value for c in action.categories],
    }


def _action(tenant_id: str, data: Mapping[str, Any]) -> Action:
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


def _request(row: Row[Any]) -> ApprovalRequest:
    policy = row.policy or {}
    return ApprovalRequest(
        id=row.id,
        tenant_id=row.tenant_id,
        action=_action(row.tenant_id, row.action),
        requester=row.requester,
        reason=row.reason,
        policy_reasons=tuple(policy.get("reasons", ())),
        rules=tuple(policy.get("rules", ())),
        resume=dict(row.resume),
        roles=tuple(row.roles),
        approvers=tuple(row.approvers),
        leaders=tuple(policy.get("leaders", ())),
        status=ApprovalStatus(row.status),
        created_at=row.created_at,
        expires_at=row.expires_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        note=row.note,
        resumed_at=row.resumed_at,
    )


def _role(role: str) -> str:
    role = role.strip().lower()
    if not ROLE.match(role):
        raise InvalidValue("role", role, "a short lowercase name such as legal, finance or marketing-ops")
    return role


def gate_of(category: str) -> str:
    """The gate a category names (`Regulated claim` is `regulated_claim`). Raises UnknownGateCategory."""
    gate = category.strip().lower().replace("-", "_").replace(" ", "_")
    if gate not in GATES:
        raise UnknownGateCategory(category)
    return gate


async def _enqueue(
    conn: AsyncConnection,
    tenant_id: str,
    key: str,
    recipients: Iterable[str],
    kind: MessageKind,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """A firing and its outbox messages, written in the caller's transaction so they commit with the change."""
    people = list(dict.fromkeys(r for r in recipients if is_person(r)))
    if not people:
        return
    await conn.execute(insert(firings).values(tenant_id=tenant_id, key=key, fired_at=now))
    await conn.execute(
        insert(outbox),
        [
            dict(
                tenant_id=tenant_id,
                firing_key=key,
                recipient=person,
                kind=kind,
                payload=payload,
                status=OUTBOX_PENDING,
                not_before=now,
                attempts=0,
                created_at=now,
            )
            for person in people
        ],
    )


# ---- roles ---------------------------------------------------------------------------------------------------


class Approvers:
    """Who approves what in one tenant: users hold roles; each gate category is approved by a role."""

    def __init__(
        self, store: Store, tenant_id: str, *, clock: Clock | None = None, record: Record | None = None
    ) -> None:
        self._store = store
        self.tenant_id = tenant_id
        self._clock = clock or store.clock
        self._record = record

    async def _log(self, record: DecisionRecord) -> None:
        if self._record is not None:
            await self._record(record)

    async def _log_change(self, actor: str, action: str, subject: str, rationale: str, **data: str) -> None:
        """An admin's change of who approves what, in the decision log."""
        await self._log(
            DecisionRecord(
                tenant_id=self.tenant_id,
                actor=actor,
                action=action,
                subject=subject,
                verdict="done",
                rationale=rationale,
                data=dict(data),
            )
        )

    async def assign(self, role: str, user_id: str, *, actor: str) -> bool:
        """Give `user_id` the approver `role`; False if they held it already."""
        role = _role(role)
        if not is_person(user_id):
            raise InvalidValue("approver", user_id, "a person's user id (an agent or the bot cannot approve)")
        try:
            async with self._store.transaction() as conn:
                await conn.execute(
                    insert(approval_roles).values(
                        tenant_id=self.tenant_id,
                        role=role,
                        user_id=user_id,
                        assigned_by=actor,
                        assigned_at=self._clock(),
                    )
                )
        except IntegrityError:
            return False
        rationale = f"{user_id} may now approve what needs the {role} role."
        await self._log_change(actor, "approvers.assigned", f"role:{role}", rationale, role=role, user=user_id)
        return True

    async def unassign(self, role: str, user_id: str, *, actor: str) -> bool:
        """Take the approver `role` from `user_id`; False if they did not hold it."""
        role = _role(role)
        async with self._store.transaction() as conn:
            result = await conn.execute(
                delete(approval_roles).where(
                    approval_roles.c.tenant_id == self.tenant_id,
                    approval_roles.c.role == role,
                    approval_roles.c.user_id == user_id,
                )
            )
        if not result.rowcount:
            return False
        rationale = f"{user_id} no longer approves what needs the {role} role."
        await self._log_change(actor, "approvers.unassigned", f"role:{role}", rationale, role=role, user=user_id)
        return True

    async def holders(self) -> dict[str, tuple[str, ...]]:
        """Every role held in the tenant, to the user ids holding it."""
        async with self._store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(approval_roles.c.role, approval_roles.c.user_id)
                    .where(approval_roles.c.tenant_id == self.tenant_id)
                    .order_by(approval_roles.c.role, approval_roles.c.assigned_at, approval_roles.c.user_id)
                )
            ).all()
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row.role, []).append(row.user_id)
        return {role: tuple(users) for role, users in found.items()}

    async def roles_of(self, user_id: str) -> frozenset[str]:
        async with self._store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(approval_roles.c.role).where(
                        approval_roles.c.tenant_id == self.tenant_id, approval_roles.c.user_id == user_id
                    )
                )
            ).all()
        return frozenset(row.role for row in rows)

    async def gate_roles(self) -> dict[str, str]:
        """Each gate category to the role that approves it: the defaults, changed where the tenant changed them."""
        async with self._store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(approval_gates.c.category, approval_gates.c.role).where(
                        approval_gates.c.tenant_id == self.tenant_id
                    )
                )
            ).all()
        return dict(DEFAULT_GATE_ROLES) | {row.category: row.role for row in rows if row.category in GATES}

    async def map(self, category: str, role: str, *, actor: str) -> dict[str, str]:
        """Have `role` approve the gate `category` from now on (requests already asked keep their approvers)."""
        gate, role = gate_of(category), _role(role)
        now = self._clock()
        async with self._store.transaction() as conn:
            await upsert(
                conn,
                approval_gates,
                (approval_gates.c.tenant_id == self.tenant_id) & (approval_gates.c.category == gate),
                {"role": role, "updated_by": actor, "updated_at": now},
                dict(tenant_id=self.tenant_id, category=gate, role=role, updated_by=actor, updated_at=now),
            )
        rationale = f"The {role} role approves {gate.replace('_', ' ')} from now on."
        await self._log_change(actor, "approvers.mapped", f"gate:{gate}", rationale, category=gate, role=role)
        return await self.gate_roles()

    async def roles_for(self, categories: Iterable[str]) -> tuple[str, ...]:
        """The roles that approve these categories (the `flagged` gate's role when there are none)."""
        gates = await self.gate_roles()
        wanted = [gate_of(str(c)) for c in categories] or [FLAGGED]
        return tuple(dict.fromkeys(gates[gate] for gate in wanted))


# ---- requests ------------------------------------------------------------------------------------------------


async def tenants_with_expired(store: Store, at: datetime) -> list[str]:
    """Tenants holding pending requests whose time ran out by `at` (the scheduler expires them tenant by tenant)."""
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(approval_requests.c.tenant_id)
                .where(
                    approval_requests.c.status == ApprovalStatus.PENDING.value,
                    approval_requests.c.expires_at <= at,
                )
                .distinct()
            )
        ).all()
    return sorted(row.tenant_id for row in rows)


async def tenants_awaiting_resume(store: Store) -> list[str]:
    """Tenants with approved requests whose action nobody has taken up yet."""
    query = (
        select(approval_requests.c.tenant_id)
        .where(approval_requests.c.status == ApprovalStatus.APPROVED.value)
        .distinct()
    )
    async with store.engine.connect() as conn:
        return sorted((await conn.execute(query)).scalars())


class Approvals:
    """The approval requests of one tenant."""

    def __init__(
        self,
        store: Store,
        tenant_id: str,
        clock: Clock | None = None,
        record: Record | None = None,
        *,
        expires_in: timedelta = DEFAULT_EXPIRY,
        approvers: Approvers | None = None,
    ) -> None:
        self._store = store
        self.tenant_id = tenant_id
        self._clock = clock or store.clock
        self._record = record
        self.expires_in = _expiry(expires_in)
        self.approvers = approvers or Approvers(store, tenant_id, clock=self._clock, record=record)

    async def _log(self, record: DecisionRecord) -> None:
        if self._record is not None:
            await self._record(record)

    def _where(self, request_id: int, status: ApprovalStatus) -> Any:
        return (
            (approval_requests.c.id == request_id)
            & (approval_requests.c.tenant_id == self.tenant_id)
            & (approval_requests.c.status == status.value)
        )

    async def request(
        self,
        action: Action,
        *,
        requester: str,
        reason: str,
        resume: Mapping[str, Any],
        expires_in: timedelta | None = None,
        policy: PolicyDecision | None = None,
        leaders: Iterable[str] = (),
    ) -> ApprovalRequest:
        """Hold `action` until an approver decides; its approvers get a card (through the outbox) at once.

        `leaders` (the owners of the master plans a strategy change touches) may decide it too, besides the holders
        of the roles its categories name; a leader who asked the assistant may confirm what it proposed.

        Raises TenantMismatch (the action belongs to another tenant), InvalidValue (`resume` or the action's
        attributes are not plain JSON, or the expiry is out of range), NoApprovers (nobody but the requester
        holds a role that approves the action's categories).
        """
        if action.tenant_id != self.tenant_id:
            raise TenantMismatch(self.tenant_id, action.tenant_id)
        if not requester.strip():
            raise InvalidValue("requester", requester, "who asks: a user id, `agent:<adapter>`, `llm` or `bot`")
        payload = _resume_payload(resume)
        action_json = _action_json(action)
        lifetime = _expiry(expires_in) if expires_in is not None else self.expires_in
        roles = await self.approvers.roles_for(action.categories)
        holders = await self.approvers.holders()
        confirms = action.actor == "llm"
        leading = tuple(dict.fromkeys(u for u in leaders if is_person(u) and (confirms or u != requester)))
        approvers = tuple(
            dict.fromkeys([*leading, *(u for role in roles for u in holders.get(role, ()) if u != requester)])
        )
        if not approvers:
            raise NoApprovers(roles)
        policy_json = {
            "verdict": policy.verdict.value if policy else Verdict.FLAG.value,
            "reasons": policy.reasons if policy else [],
            "rules": [m.rule_id for m in policy.matched] if policy else [],
            "facts": list(policy.facts) if policy else [],
            "leaders": list(leading),
        }
        now = self._clock()
        reason = " ".join(reason.split())[:2000] or "needs a person's approval"
        async with self._store.transaction() as conn:
            request_id = (
                await conn.execute(
                    insert(approval_requests)
                    .values(
                        tenant_id=self.tenant_id,
                        action=action_json,
                        requester=requester,
                        reason=reason,
                        policy=policy_json,
                        resume=payload,
                        roles=list(roles),
                        approvers=list(approvers),
                        status=ApprovalStatus.PENDING.value,
                        created_at=now,
                        expires_at=now + lifetime,
                    )
                    .returning(approval_requests.c.id)
                )
            ).scalar_one()
            await _enqueue(
                conn,
                self.tenant_id,
                f"approval:{request_id}",
                approvers,
                MessageKind.APPROVAL_REQUEST,
                {"approval": request_id},
                now,
            )
        request = await self.get(request_id)
        # What the model asked for on someone's behalf is logged as the model's, naming that person.
        behalf = {"on_behalf_of": action.on_behalf_of} if action.on_behalf_of else {}
        await self._log(
            DecisionRecord(
                tenant_id=self.tenant_id,
                actor=action.actor if action.on_behalf_of else requester,
                action="approval.requested",
                subject=request.subject,
                verdict=Verdict.FLAG.value,
                rationale=reason,
                data={
                    "approval": request.id,
                    "action": action_json,
                    "roles": list(roles),
                    "approvers": list(approvers),
                    "expires_at": request.expires_at.isoformat(),
                    "policy_reasons": policy_json["reasons"],
                    "facts": policy_json["facts"],
                    **behalf,
                },
                rules=tuple(policy_json["rules"]),
                approval_id=request.id,
                at=now,
            )
        )
        return request

    async def get(self, request_id: int) -> ApprovalRequest:
        """Raises ApprovalNotFound (requests of other tenants are invisible)."""
        async with self._store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(approval_requests).where(
                        approval_requests.c.id == request_id, approval_requests.c.tenant_id == self.tenant_id
                    )
                )
            ).first()
        if row is None:
            raise ApprovalNotFound(request_id)
        return _request(row)

    async def pending(self, for_user: str | None = None) -> list[ApprovalRequest]:
        """Requests still waiting (and not expired), oldest first; only those `for_user` may decide, if given."""
        async with self._store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(approval_requests)
                    .where(
                        approval_requests.c.tenant_id == self.tenant_id,
                        approval_requests.c.status == ApprovalStatus.PENDING.value,
                        approval_requests.c.expires_at > self._clock(),
                    )
                    .order_by(approval_requests.c.id)
                )
            ).all()
        # A tenant has a handful of requests waiting at a time: the approvers are filtered here, not in SQL.
        requests = [_request(row) for row in rows]
        return [r for r in requests if for_user is None or for_user in r.approvers]

    async def for_delegation(self, delegation_id: int) -> ApprovalRequest | None:
        """The latest request holding delegation `delegation_id`, or None when none was asked for."""
        async with self._store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(approval_requests)
                    .where(
                        approval_requests.c.tenant_id == self.tenant_id,
                        approval_requests.c.resume["delegation"].as_integer() == delegation_id,
                    )
                    .order_by(approval_requests.c.id.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else _request(row)

    async def asked_by(self, requester: str) -> list[ApprovalRequest]:
        """Requests `requester` asked for that are still waiting."""
        return [r for r in await self.pending() if r.requester == requester]

    async def decide(
        self, request_id: int, *, approver: str, approve: bool, note: str = "", authenticated: bool
    ) -> ApprovalRequest:
        """Approve or reject a pending request, once.

        `authenticated` is True only when a person signed in to Teams acts (the bot's Teams operations set it);
        nothing else may set it.

        Raises ApprovalNotFound, or an ApprovalRefused (nothing changed): NotAuthenticated, NotAPerson,
        SelfApproval, NotAnApprover (these are logged and recorded as refused), ApprovalExpired, AlreadyDecided.
        """
        request = await self.get(request_id)
        try:
            await self._check_decider(request, approver, authenticated)
        except ApprovalRefused as refused:
            await self._refused(request, approver, refused)
            raise
        if request.status is ApprovalStatus.EXPIRED:
            raise ApprovalExpired(request.id, approver, request.expires_at)
        if request.status is not ApprovalStatus.PENDING:
            raise AlreadyDecided(request.id, approver, request.status, request.decided_by)
        now = self._clock()
        if now >= request.expires_at:
            await self._expire([request.id], now)
            raise ApprovalExpired(request.id, approver, request.expires_at)
        status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
        note = " ".join(note.split())[:2000]
        async with self._store.transaction() as conn:
            result = await conn.execute(
                update(approval_requests)
                .where(self._where(request.id, ApprovalStatus.PENDING), approval_requests.c.expires_at > now)
                .values(status=status.value, decided_by=approver, decided_at=now, note=note or None)
            )
            if result.rowcount == 1:
                await _enqueue(
                    conn,
                    self.tenant_id,
                    f"approval:{request.id}:decided",
                    [request.requester],
                    MessageKind.APPROVAL_DECIDED,
                    {"approval": request.id},
                    now,
                )
        decided = await self.get(request.id)
        if result.rowcount != 1:
            if decided.status in (ApprovalStatus.PENDING, ApprovalStatus.EXPIRED):
                raise ApprovalExpired(request.id, approver, request.expires_at)
            raise AlreadyDecided(request.id, approver, decided.status, decided.decided_by)
        await self._log(
            DecisionRecord(
                tenant_id=self.tenant_id,
                actor=approver,
                action="approval.granted" if approve else "approval.rejected",
                subject=decided.subject,
                verdict=status.value,
                rationale=note or f"{'Approved' if approve else 'Rejected'} by an approver in Teams.",
                data={"approval": decided.id, "action": decided.action.name, "roles": list(decided.roles)},
                rules=decided.rules,
                approval_id=decided.id,
                at=now,
            )
        )
        return decided

    async def _check_decider(self, request: ApprovalRequest, approver: str, authenticated: bool) -> None:
        if not authenticated:
            raise NotAuthenticated(request.id, approver)
        if not is_person(approver):
            raise NotAPerson(request.id, approver)
        leads = approver in request.leaders
        # The one exception to "never the requester": a leader confirming what the assistant proposed for them.
        if approver == request.requester and not (leads and request.action.actor == "llm"):
            raise SelfApproval(request.id, approver)
        # An approver named when it was asked who has since lost the role (left the team, revoked) may not decide.
        if approver not in request.approvers or not (
            leads or (await self.approvers.roles_of(approver)) & set(request.roles)
        ):
            raise NotAnApprover(request.id, approver, request.roles)

    async def _refused(self, request: ApprovalRequest, approver: str, refused: ApprovalRefused) -> None:
        logger.warning(
            "refused a decision on approval A%s of tenant %s by %r: %s",
            request.id,
            self.tenant_id,
            approver,
            type(refused).__name__,
        )
        await self._log(
            DecisionRecord(
                tenant_id=self.tenant_id,
                actor=approver or "unknown",
                action="approval.refused",
                subject=request.subject,
                verdict="refused",
                rationale=str(refused),
                data={"approval": request.id, "refusal": type(refused).__name__, "status": request.status.value},
                approval_id=request.id,
            )
        )

    async def expire_due(self, at: datetime | None = None) -> list[ApprovalRequest]:
        """Expire the pending requests whose time ran out by `at` (now by default); those it expired."""
        at = at or self._clock()
        async with self._store.engine.connect() as conn:
            ids = (
                (
                    await conn.execute(
                        select(approval_requests.c.id).where(
                            approval_requests.c.tenant_id == self.tenant_id,
                            approval_requests.c.status == ApprovalStatus.PENDING.value,
                            approval_requests.c.expires_at <= at,
                        )
                    )
                )
                .scalars()
                .all()
            )
        return await self._expire(list(ids), at)

    async def _expire(self, ids: Sequence[int], at: datetime) -> list[ApprovalRequest]:
        expired: list[ApprovalRequest] = []
        for request_id in ids:
            async with self._store.transaction() as conn:
                row = (
                    await conn.execute(
                        update(approval_requests)
                        .where(self._where(request_id, ApprovalStatus.PENDING), approval_requests.c.expires_at <= at)
                        .values(status=ApprovalStatus.EXPIRED.value, decided_at=at)
                        .returning(approval_requests)
                    )
                ).first()
                if row is None:
                    continue  # decided, or expired by another replica, meanwhile
                request = _request(row)
                await _enqueue(
                    conn,
                    self.tenant_id,
                    f"approval:{request_id}:decided",
                    [request.requester],
                    MessageKind.APPROVAL_DECIDED,
                    {"approval": request_id},
                    at,
                )
            expired.append(request)
            await self._log(
                DecisionRecord(
                    tenant_id=self.tenant_id,
                    actor="bot",
                    action="approval.expired",
                    subject=request.subject,
                    verdict=ApprovalStatus.EXPIRED.value,
                    rationale=f"Nobody decided by {request.expires_at:%Y-%m-%d %H:%M} UTC; the action was not taken.",
                    data={"approval": request.id, "action": request.action.name, "approvers": list(request.approvers)},
                    rules=request.rules,
                    approval_id=request.id,
                    at=at,
                )
            )
        return expired

    async def claim_resume(self, request_id: int) -> ApprovalRequest | None:
        """Take an approved request to run its action: the request, or None when it is not approved or was taken."""
        async with self._store.transaction() as conn:
            row = (
                await conn.execute(
                    update(approval_requests)
                    .where(self._where(request_id, ApprovalStatus.APPROVED))
                    .values(status=ApprovalStatus.RESUMED.value, resumed_at=self._clock())
                    .returning(approval_requests)
                )
            ).first()
        return None if row is None else _request(row)

    async def release_resume(self, request_id: int) -> bool:
        """Give a claimed request back (running its action failed before it changed anything), to be resumed again."""
        async with self._store.transaction() as conn:
            result = await conn.execute(
                update(approval_requests)
                .where(self._where(request_id, ApprovalStatus.RESUMED))
                .values(status=ApprovalStatus.APPROVED.value, resumed_at=None)
            )
        return bool(result.rowcount)

    async def awaiting_resume(self) -> list[ApprovalRequest]:
        """Approved requests whose action nobody has taken up yet (after a restart, the scheduler resumes them)."""
        async with self._store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(approval_requests)
                    .where(
                        approval_requests.c.tenant_id == self.tenant_id,
                        approval_requests.c.status == ApprovalStatus.APPROVED.value,
                    )
                    .order_by(approval_requests.c.decided_at, approval_requests.c.id)
                )
            ).all()
        return [_request(row) for row in rows]


def _expiry(expires_in: timedelta) -> timedelta:
    if not timedelta(0) < expires_in <= MAX_EXPIRY:
        raise InvalidValue("expiry", expires_in, f"a time after now, at most {MAX_EXPIRY.days} days")
    return expires_in
