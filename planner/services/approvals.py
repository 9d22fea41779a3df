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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from planner.domain.approvals import (
    DEFAULT_EXPIRY,
    FLAGGED,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalRefused,
    ApprovalRequest,
    ApprovalStatus,
    NoApprovers,
    check_decider,
    check_open,
    gate_of,
    gate_roles,
    is_person,
    lost_decision,
    valid_expiry,
    valid_role,
)
from planner.domain.errors import Expected, Field, InvalidValue, TenantMismatch
from planner.domain.governance import (
    REASON_KEY,
    Action,
    DecisionRecord,
    GateCategory,
    LogReason,
    PolicyDecision,
    Verdict,
    policy_reason_json,
)
from planner.domain.messages import Message, MessageKind
from planner.ports import Clock
from planner.store import Connection, Store
from planner.store import approvals as approval_store
from planner.store import outbox as outbox_store
from planner.store.approvals import RoleHeldAlready

logger = logging.getLogger(__name__)

Record = Callable[[DecisionRecord], Awaitable[object]]
"""Where decisions are written (the decision log's `record`)."""


def _json_object(field: Field, value: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        return dict(json.loads(json.dumps(dict(value or {}))))
    except (TypeError, ValueError):
        raise InvalidValue(field, value, Expected.JSON_OBJECT) from None


def _resume_payload(resume: Mapping[str, Any]) -> dict[str, Any]:
    payload = _json_object(Field.RESUME, resume)
    operation = payload.get("operation")
    if isinstance(operation, str) and operation and isinstance(payload.get("args", {}), dict):
        return payload
    held = payload.get("delegation", payload.get("outbox"))
    if isinstance(held, int) and not isinstance(held, bool) and len(payload) == 1:
        return payload
    raise InvalidValue(Field.RESUME, resume, Expected.RESUME)


def _action_json(action: Action) -> dict[str, Any]:
    return {
        "kind": action.kind.value,
        "actor": action.actor,
        "on_behalf_of": action.on_behalf_of,
        "agent": action.agent,
        "name": action.name,
        "subject": action.subject,
        "accounts": list(action.accounts),
        "attributes": _json_object(Field.ACTION_ATTRIBUTES, action.attributes),
        "categories": [GateCategory(c).value for c in action.categories],
    }


async def _enqueue(
    conn: Connection,
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
    await outbox_store.record_firing(conn, tenant_id, key, at=now)
    await outbox_store.queue(
        conn, tenant_id, key, [Message(recipient=person, kind=kind, payload=payload) for person in people], now=now
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

    async def _log_change(self, actor: str, action: str, subject: str, reason: LogReason, **data: str) -> None:
        """An admin's change of who approves what, in the decision log."""
        await self._log(
            DecisionRecord(
                tenant_id=self.tenant_id,
                actor=actor,
                action=action,
                subject=subject,
                verdict="done",
                data={REASON_KEY: reason.value, **data},
            )
        )

    async def assign(self, role: str, user_id: str, *, actor: str) -> bool:
        """Give `user_id` the approver `role`; False if they held it already."""
        role = valid_role(role)
        if not is_person(user_id):
            raise InvalidValue(Field.APPROVER, user_id, Expected.PERSON_ID)
        try:
            async with self._store.transaction() as conn:
                await approval_store.assign_role(
                    conn, self.tenant_id, role, user_id, assigned_by=actor, at=self._clock()
                )
        except RoleHeldAlready:
            return False
        reason = LogReason.APPROVER_ASSIGNED
        await self._log_change(actor, "approvers.assigned", f"role:{role}", reason, role=role, user=user_id)
        return True

    async def unassign(self, role: str, user_id: str, *, actor: str) -> bool:
        """Take the approver `role` from `user_id`; False if they did not hold it."""
        role = valid_role(role)
        async with self._store.transaction() as conn:
            unassigned = await approval_store.unassign_role(conn, self.tenant_id, role, user_id)
        if not unassigned:
            return False
        reason = LogReason.APPROVER_UNASSIGNED
        await self._log_change(actor, "approvers.unassigned", f"role:{role}", reason, role=role, user=user_id)
        return True

    async def holders(self) -> dict[str, tuple[str, ...]]:
        """Every role held in the tenant, to the user ids holding it."""
        async with self._store.read() as conn:
            return await approval_store.role_holders(conn, self.tenant_id)

    async def roles_of(self, user_id: str) -> frozenset[str]:
        async with self._store.read() as conn:
            return await approval_store.roles_of(conn, self.tenant_id, user_id)

    async def gate_roles(self) -> dict[str, str]:
        """Each gate category to the role that approves it: the defaults, changed where the tenant changed them."""
        async with self._store.read() as conn:
            changed = await approval_store.changed_gate_roles(conn, self.tenant_id)
        return gate_roles(changed)

    async def map(self, category: str, role: str, *, actor: str) -> dict[str, str]:
        """Have `role` approve the gate `category` from now on (requests already asked keep their approvers)."""
        gate, role = gate_of(category), valid_role(role)
        async with self._store.transaction() as conn:
            await approval_store.map_gate(conn, self.tenant_id, gate, role, updated_by=actor, at=self._clock())
        reason = LogReason.GATE_MAPPED
        await self._log_change(actor, "approvers.mapped", f"gate:{gate}", reason, category=gate, role=role)
        return await self.gate_roles()

    async def roles_for(self, categories: Iterable[str]) -> tuple[str, ...]:
        """The roles that approve these categories (the `flagged` gate's role when there are none)."""
        gates = await self.gate_roles()
        wanted = [gate_of(str(c)) for c in categories] or [FLAGGED]
        return tuple(dict.fromkeys(gates[gate] for gate in wanted))


# ---- requests ------------------------------------------------------------------------------------------------


async def tenants_with_expired(store: Store, at: datetime) -> list[str]:
    """Tenants holding pending requests whose time ran out by `at` (the scheduler expires them tenant by tenant)."""
    async with store.read() as conn:
        return await approval_store.tenants_with_expired(conn, at=at)


async def tenants_awaiting_resume(store: Store) -> list[str]:
    """Tenants with approved requests whose action nobody has taken up yet."""
    async with store.read() as conn:
        return await approval_store.tenants_awaiting_resume(conn)


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
        self.expires_in = valid_expiry(expires_in)
        self.approvers = approvers or Approvers(store, tenant_id, clock=self._clock, record=record)

    async def _log(self, record: DecisionRecord) -> None:
        if self._record is not None:
            await self._record(record)

    async def request(
        self,
        action: Action,
        *,
        requester: str,
        reason: str = "",
        resume: Mapping[str, Any],
        expires_in: timedelta | None = None,
        policy: PolicyDecision | None = None,
        leaders: Iterable[str] = (),
    ) -> ApprovalRequest:
        """Hold `action` until an approver decides; its approvers get a card (through the outbox) at once.

        `reason` is what the asker says, as they say it; none when the action says it all (the bot words it).

        `leaders` (the owners of the master plans a strategy change touches) may decide it too, besides the holders
        of the roles its categories name; a leader who asked the assistant may confirm what it proposed.

        Raises TenantMismatch (the action belongs to another tenant), InvalidValue (`resume` or the action's
        attributes are not plain JSON, or the expiry is out of range), NoApprovers (nobody but the requester
        holds a role that approves the action's categories).
        """
        if action.tenant_id != self.tenant_id:
            raise TenantMismatch(self.tenant_id, action.tenant_id)
        if policy is not None and policy.gates:  # the gates the rules put it under: their approvers decide it too
            action = replace(action, categories=tuple(dict.fromkeys((*action.categories, *policy.gates))))
        if not requester.strip():
            raise InvalidValue(Field.REQUESTER, requester, Expected.REQUESTER)
        payload = _resume_payload(resume)
        action_json = _action_json(action)
        lifetime = valid_expiry(expires_in) if expires_in is not None else self.expires_in
        roles = await self.approvers.roles_for(action.categories)
        holders = await self.approvers.holders()
        confirms = action.actor == "llm"
        leading = tuple(dict.fromkeys(u for u in leaders if is_person(u) and (confirms or u != requester)))
        approvers = tuple(
            dict.fromkeys([*leading, *(u for role in roles for u in holders.get(role, ()) if u != requester)])
        )
        if not approvers:
            raise NoApprovers(roles)
        policy_json: dict[str, Any] = {
            "verdict": policy.verdict.value if policy else Verdict.FLAG.value,
            "reasons": [policy_reason_json(reason) for reason in policy.reasons] if policy else [],
            "rules": [m.rule_id for m in policy.matched] if policy else [],
            "facts": list(policy.facts) if policy else [],
            "leaders": list(leading),
        }
        now = self._clock()
        reason = " ".join(reason.split())[:2000]
        async with self._store.transaction() as conn:
            request_id = await approval_store.insert_request(
                conn,
                self.tenant_id,
                action=action_json,
                requester=requester,
                reason=reason,
                policy=policy_json,
                resume=payload,
                roles=roles,
                approvers=approvers,
                created_at=now,
                expires_at=now + lifetime,
            )
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
                    REASON_KEY: LogReason.APPROVAL_REQUESTED.value,
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
        async with self._store.read() as conn:
            request = await approval_store.get_request(conn, self.tenant_id, request_id)
        if request is None:
            raise ApprovalNotFound(request_id)
        return request

    async def pending(self, for_user: str | None = None) -> list[ApprovalRequest]:
        """Requests still waiting (and not expired), oldest first; only those `for_user` may decide, if given."""
        async with self._store.read() as conn:
            requests = await approval_store.pending_requests(conn, self.tenant_id, now=self._clock())
        # A tenant has a handful of requests waiting at a time: the approvers are filtered here, not in SQL.
        return [r for r in requests if for_user is None or for_user in r.approvers]

    async def for_delegation(self, delegation_id: int) -> ApprovalRequest | None:
        """The latest request holding delegation `delegation_id`, or None when none was asked for."""
        async with self._store.read() as conn:
            return await approval_store.latest_for_delegation(conn, self.tenant_id, delegation_id)

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
            check_decider(request, approver, authenticated=authenticated, roles=await self.approvers.roles_of(approver))
        except ApprovalRefused as refused:
            await self._refused(request, approver, refused)
            raise
        check_open(request, approver)
        now = self._clock()
        if now >= request.expires_at:
            await self._expire([request.id], now)
            raise ApprovalExpired(request.id, approver, request.expires_at)
        status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
        note = " ".join(note.split())[:2000]
        async with self._store.transaction() as conn:
            decided_now = await approval_store.decide_request(
                conn, self.tenant_id, request.id, status, decided_by=approver, at=now, note=note or None
            )
            if decided_now:
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
        if not decided_now:
            raise lost_decision(request, approver, decided)
        await self._log(
            DecisionRecord(
                tenant_id=self.tenant_id,
                actor=approver,
                action="approval.granted" if approve else "approval.rejected",
                subject=decided.subject,
                verdict=status.value,
                rationale=note,  # the approver's own words, if any
                data={
                    REASON_KEY: LogReason.APPROVAL_DECIDED.value,
                    "approval": decided.id,
                    "action": decided.action.name,
                    "roles": list(decided.roles),
                },
                rules=decided.rules,
                approval_id=decided.id,
                at=now,
            )
        )
        return decided

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
                data={
                    REASON_KEY: LogReason.APPROVAL_REFUSED.value,
                    "approval": request.id,
                    "refusal": type(refused).__name__,
                    "status": request.status.value,
                    "roles": list(request.roles),
                },
                approval_id=request.id,
            )
        )

    async def due_to_expire(self, at: datetime) -> list[ApprovalRequest]:
        """The pending requests whose time runs out by `at` (what `expire_due(at)` would expire), oldest first."""
        async with self._store.read() as conn:
            ids = await approval_store.due_to_expire(conn, self.tenant_id, at=at)
        return [await self.get(request_id) for request_id in sorted(ids)]

    async def expire_due(self, at: datetime | None = None) -> list[ApprovalRequest]:
        """Expire the pending requests whose time ran out by `at` (now by default); those it expired."""
        at = at or self._clock()
        async with self._store.read() as conn:
            ids = await approval_store.due_to_expire(conn, self.tenant_id, at=at)
        return await self._expire(ids, at)

    async def _expire(self, ids: Sequence[int], at: datetime) -> list[ApprovalRequest]:
        expired: list[ApprovalRequest] = []
        for request_id in ids:
            async with self._store.transaction() as conn:
                request = await approval_store.expire_request(conn, self.tenant_id, request_id, at=at)
                if request is None:
                    continue  # decided, or expired by another replica, meanwhile
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
                    data={
                        REASON_KEY: LogReason.APPROVAL_EXPIRED.value,
                        "approval": request.id,
                        "action": request.action.name,
                        "approvers": list(request.approvers),
                        "expires_at": request.expires_at.isoformat(),
                    },
                    rules=request.rules,
                    approval_id=request.id,
                    at=at,
                )
            )
        return expired

    async def claim_resume(self, request_id: int) -> ApprovalRequest | None:
        """Take an approved request to run its action: the request, or None when it is not approved or was taken."""
        async with self._store.transaction() as conn:
            return await approval_store.claim_resume(conn, self.tenant_id, request_id, at=self._clock())

    async def release_resume(self, request_id: int) -> bool:
        """Give a claimed request back (running its action failed before it changed anything), to be resumed again."""
        async with self._store.transaction() as conn:
            return await approval_store.release_resume(conn, self.tenant_id, request_id)

    async def awaiting_resume(self) -> list[ApprovalRequest]:
        """Approved requests whose action nobody has taken up yet (after a restart, the scheduler resumes them)."""
        async with self._store.read() as conn:
            return await approval_store.awaiting_resume(conn, self.tenant_id)
