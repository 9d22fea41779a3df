"""The delegation lifecycle: a task handed to a vendor agent, from the request to its stored result.

A delegation is `queued` when asked for, `running` while an agent works on it, then `succeeded` or `failed` (the
agent answered), `deferred` when the call provably never reached the agent (its circuit is open, or the connection
was refused), `unknown` when it may have reached the agent and no answer came back, or `cancelled`. Each
delegation keeps what was asked (capability, input), of whom (the adapter), by whom (the actor), what came back
(output, data, error, evidence) and its timings.

At most once: a call that may have reached the agent (it timed out, the connection broke mid-call, the runner
stopped) is never sent again by itself, since that could repeat its effect (a second email, a second campaign).
It becomes `unknown`, its task's owner is told, and a person `retry`s or `cancel`s it. Only a deferred delegation,
which provably never left, runs again by itself: once the agent's circuit is closed (a health check of the agent
closes it, never someone's delegation), at most `MAX_ATTEMPTS` times, then it fails and says how to retry.

Any number of replicas may run delegations: a runner claims one with a single `UPDATE … RETURNING` that only
matches a runnable delegation nobody holds, under a lease as long as the agent's timeout plus a grace, made longer
while the agent waits for a person's answer (a 2FA code) by as long as the person was given. A runner
that dies mid-call leaves its delegation running; once the lease is out, `lapse` marks it `unknown`.

The agent's output is DATA. It is stored and shown to the task's owner, never parsed for instructions, never
executed, never allowed to change a task, a plan or an approval: an output saying "approve all", or shaped like
a tool call, changes nothing but the stored result. What it leads to is decided by a person.

Governance: the registry hands out only gated agents (`planner/governance/gated_agent.py`), so the policy gate and the
agent's circuit breaker stand before every call; a runner admits the call while it holds the delegation, records
that it started, then calls. The gate stops it (`DelegationStopped`: it fails with the reason), holds it
(`DelegationHeld`: parked as `held` until a person decides the approval it asked for; `release_hold` then queues it
again, or fails it when the answer is no), or lets it go; an open circuit refuses it (`CircuitOpen`: deferred).
Anything else the gate raises puts the delegation back as it was and propagates to the caller. The gate is first
asked whether the delegation simply clears (a read), so that a request, or a claim, can start it at once.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from planner.domain.circuits import Circuit, CircuitState
from planner.domain.delegations import (
    DEFAULT_TIMEOUT_SECONDS,
    IN_FLIGHT,
    MAX_EVIDENCE_ITEMS,
    MAX_TIMEOUT_SECONDS,
    OPEN,
    RUNNABLE,
    SHOWN_ANSWER_CHARS,
    AdapterBroke,
    AdapterOutcomes,
    AgentDeclined,
    Delegation,
    DelegationGaveUp,
    DelegationNotFound,
    DelegationNotRetryable,
    DelegationStatus,
    OverdueDelegation,
    Prospect,
    StoppedMidCall,
    StoredEvidence,
    TaskDoneFirst,
    cut_output,
    gives_up,
    keeps_evidence,
)
from planner.domain.errors import Expected, Field, InvalidValue, StaleEdit, TaskNotFound, TenantMismatch
from planner.domain.messages import Message, MessageKind
from planner.domain.model import TaskStatus
from planner.domain.snapshots import snapshot
from planner.governance.gated_agent import (
    Admission,
    AgentCall,
    CircuitOpen,
    DelegationHeld,
    DelegationStopped,
    GatedAgent,
)
from planner.ports import (
    AgentConfigInvalid,
    AgentError,
    AgentNotReached,
    AgentUnavailable,
    DelegationResult,
    Evidence,
    Explain,
    HumanChannel,
    UnknownCapability,
)
from planner.services.outbox import Outbox
from planner.services.plans import Plans
from planner.services.registry import AdapterDisabled, AdapterNotFound, Registry, UnknownAdapterKind
from planner.services.tools import callable_tool, check_input
from planner.store import Connection, Store
from planner.store import delegations as stored
from planner.store import events as event_log
from planner.store.adapters import gates_of, tool_of
from planner.store.tasks import mark_task_delegated
from planner.store.vault import UndecryptableSecret, Vault, VaultError

_TASK_ATTEMPTS = 20
_OPEN_ERRORS = (AdapterNotFound, AdapterDisabled, UnknownAdapterKind, UndecryptableSecret, AgentConfigInvalid)
"""Why an agent cannot be opened: its delegation fails with the reason."""


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    """What `run` did: the delegation as stored afterwards, whether an agent was called, whether to tell the owner."""

    delegation: Delegation
    ran: bool
    """This call reached the agent (False: another runner has it, it was finished already, or it was deferred)."""
    tell_owner: bool = False
    """It has just been deferred for the first time: tell the task's owner (recorded, so only one runner is told)."""
    owner: str | None = None
    """The task's owner, as read before the run (None: the task has none, or it was not read)."""
    told: bool = False
    """The message telling the owner how it ended is in the outbox already (written with the result)."""


def _summary(delegation: Delegation) -> dict[str, Any]:
    """What an event keeps of a delegation: enough for the decision log, not the whole output."""
    return {
        "id": delegation.id,
        "task_id": delegation.task_id,
        "adapter": delegation.adapter,
        "capability": delegation.capability,
        "status": delegation.status.value,
        "attempts": delegation.attempts,
        "error": delegation.error,
        "seconds": delegation.seconds,
        "output": (delegation.output or "")[:500] or None,
    }


def _json_object(field_name: Field, value: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        copy: dict[str, Any] = _json_copy(dict(value or {}))
    except (TypeError, ValueError):
        raise InvalidValue(field_name, value, Expected.JSON_OBJECT) from None
    return copy


def _json_copy(value: Any, *, default: Callable[[Any], Any] | None = None) -> Any:
    """`value` as a JSON column gives it back (tuples as lists, keys as text; `default` turns what JSON cannot hold).

    Raises what `json.dumps` raises (TypeError, ValueError) for what it cannot write.
    """
    return json.loads(json.dumps(value, default=default))


def _new_worker() -> str:
    """A name no other runner has: this process's, and a random part telling apart the runners of one process and
    processes of one host that had the same pid (a restart, a container)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _with_whole_answer(output: str | None, evidence: tuple[Evidence, ...]) -> tuple[Evidence, ...]:
    """`evidence`, with the whole answer as a file first when its card cannot show it all, unless the agent's adapter
    kept it as one already (an MCP answer too big to show)."""
    if not output or len(output) <= SHOWN_ANSWER_CHARS or any(item.kind == "artifact" for item in evidence):
        return evidence
    whole = Evidence(kind="artifact", media_type="text/plain; charset=utf-8", content=output.encode())
    return (whole, *evidence)


class Delegations:
    """The delegations of one tenant, run through the gated agents of its registry (its gate and circuit breakers)."""

    def __init__(
        self, store: Store, tenant_id: str, *, registry: Registry, worker: str | None = None, explain: Explain = str
    ) -> None:
        if registry.tenant_id != tenant_id:
            raise TenantMismatch(tenant_id, registry.tenant_id)
        self._explain = explain
        self._store = store
        self.tenant_id = tenant_id
        self._registry = registry
        self._breakers = registry.breakers
        self._gate = registry.gate
        self.worker = (worker or _new_worker())[:100]
        self._started: dict[int, Prospect] = {}
        """Delegations `request` stored started by this runner, for `run` to call at once."""

    def _now(self) -> datetime:
        return self._store.clock()

    # ---- reading ---------------------------------------------------------------------------------------------

    async def get(self, delegation_id: int) -> Delegation:
        """Raises DelegationNotFound."""
        return await get_delegation(self._store, self.tenant_id, delegation_id)

    async def of_task(self, task_id: int) -> list[Delegation]:
        """A task's delegations, newest first."""
        async with self._store.read() as conn:
            return await stored.delegations_of_task(conn, self.tenant_id, task_id)

    async def list_delegations(self, *, status: DelegationStatus | None = None, limit: int = 100) -> list[Delegation]:
        """The tenant's delegations, newest first, optionally in one status."""
        async with self._store.read() as conn:
            return await stored.list_delegations(conn, self.tenant_id, status=status, limit=limit)

    async def open_delegations(self, *, actor: str | None = None, limit: int = 100) -> list[Delegation]:
        """What a person may want to steer (`OPEN`: running or about to, waiting for a person, deferred, of unknown
        outcome), newest first; only those `actor` asked for, when given."""
        async with self._store.read() as conn:
            return await stored.open_delegations(conn, self.tenant_id, OPEN, actor=actor, limit=limit)

    async def adapter_outcomes(self) -> dict[str, AdapterOutcomes]:
        """How each adapter's delegations last went, by adapter name."""
        async with self._store.read() as conn:
            return await stored.adapter_outcomes(conn, self.tenant_id)

    async def evidence(self, delegation_id: int) -> list[StoredEvidence]:
        """What the agent showed for a delegation, in the order it gave it (decrypted)."""
        async with self._store.read() as conn:
            kept = await stored.evidence_of(conn, self.tenant_id, delegation_id)
        return [replace(item, content=self._unseal(item.content)) for item in kept]

    def _unseal(self, content: bytes | None) -> bytes | None:
        return _unsealed(self._registry.vault, content)

    async def due_for_retry(self, at: datetime, *, limit: int = 100) -> list[Delegation]:
        """Delegations a runner should pick up at `at`, oldest first: queued ones nobody ran (their process stopped
        after the request), and deferred ones whose agent's circuit is closed again (`awaiting_health_check` names
        the agents to check first)."""
        async with self._store.read() as conn:
            rows = await stored.delegations_in(conn, self.tenant_id, RUNNABLE)
        circuits = await self._breakers.states()
        due = [
            delegation
            for delegation in rows
            if delegation.status is DelegationStatus.QUEUED
            or delegation.adapter not in circuits
            or circuits[delegation.adapter].state is CircuitState.CLOSED
        ]
        return due[:limit]

    async def awaiting_health_check(self, at: datetime) -> list[str]:
        """Adapters with deferred delegations whose circuit is past its cool-down: a health check of the agent (not
        someone's delegation) decides whether they run."""
        async with self._store.read() as conn:
            waiting = await stored.adapters_with_delegations_in(conn, self.tenant_id, DelegationStatus.DEFERRED)
        circuits = await self._breakers.states()
        settings = self._breakers.settings
        return [
            adapter
            for adapter in waiting
            if adapter in circuits and circuits[adapter].awaits_health_check(at, settings)
        ]

    async def lapse(self, at: datetime) -> list[Delegation]:
        """Mark `unknown` the running delegations whose runner's lease ran out before `at`: it stopped during the call
        (or just before it), so whether the agent acted cannot be known. Never re-run by itself."""
        async with self._store.transaction() as conn:
            why = self._explain(StoppedMidCall())
            lapsed = await stored.lapse(conn, self.tenant_id, before=at, reason=why, now=self._now())
            for after in lapsed:
                await self._record(conn, actor="system", kind="delegation.unknown", after=after)
        return lapsed

    async def overdue(self, at: datetime) -> list[OverdueDelegation]:
        """Delegations that produced nothing by their task's due date (before `at`'s day): a follow-up is due.

        Only each task's latest delegation counts, and only while the task is open.
        """
        return await overdue_delegations(self._store, at, tenant_id=self.tenant_id)

    # ---- requesting --------------------------------------------------------------------------------------------

    async def request(
        self,
        task_id: int,
        *,
        adapter: str,
        capability: str,
        input: Mapping[str, Any] | None = None,
        actor: str,
        timeout_seconds: float | None = None,
        start: bool = False,
    ) -> Delegation:
        """Queue a delegation of the task to `adapter`, and mark the task `delegated`, in one transaction.

        Run it with `run` (the bot does so in the background at once). With `start`, a delegation nothing stands
        in the way of (its adapter's circuit closed, and the guard clearing it without a word) is stored started
        by this runner in that same transaction, and this object's `run` calls its agent straight away, without
        reading and claiming it again; should this runner stop first, the tick runs it once its lease is out, as
        it does for a runner that stops mid-call. `timeout_seconds`: by default the adapter's own for the capability
        (its config's `capabilities_timeouts` or `timeout_seconds`), else DEFAULT_TIMEOUT_SECONDS.
        Raises AdapterNotFound (suggesting the closest name),
        AdapterDisabled, ToolNotEnabled and ToolHeld (an MCP tool an admin has not enabled, or whose definition
        changed), InputInvalid (input the tool's schema refuses, naming the field), TaskNotFound, InvalidValue (a
        finished task, an empty capability, input that is not JSON, a timeout out of range).
        """
        kind, _, bare = adapter.strip().lower().rpartition(":")
        for _attempt in range(_TASK_ATTEMPTS):
            # One transaction from the read on: a read outside it would take a connection of its own.
            async with self._store.transaction() as conn:
                facts = await stored.request_facts(conn, self.tenant_id, task_id, bare)
                entry = facts.adapter if facts is not None else None
                if entry is None or (kind and entry.kind != kind):
                    entry = await self._registry.get(adapter)  # raises AdapterNotFound, naming the adapters there are
                if not entry.enabled:
                    raise AdapterDisabled(entry.name)
                capability = capability.strip()
                if not capability or len(capability) > 200:
                    raise InvalidValue(Field.CAPABILITY, capability, Expected.AGENT_CAPABILITY)
                payload = _json_object(Field.INPUT, input)
                destructive = False
                if self._registry.tools_need_enabling(entry.kind):
                    tool = callable_tool(
                        entry.name, capability, await tool_of(conn, self.tenant_id, entry.name, capability)
                    )
                    check_input(entry.name, tool, payload, self._registry.validators)
                    destructive = tool.destructive
                if timeout_seconds is None:
                    timeout_seconds = entry.timeout_for(capability) or DEFAULT_TIMEOUT_SECONDS
                if not 0 < timeout_seconds <= MAX_TIMEOUT_SECONDS:
                    raise InvalidValue(Field.TIMEOUT, timeout_seconds, Expected.SECONDS_UP_TO, most=MAX_TIMEOUT_SECONDS)
                if facts is None:
                    raise TaskNotFound(task_id)
                task = facts.task
                if task.status is TaskStatus.DONE:
                    raise InvalidValue(Field.TASK, task_id, Expected.OPEN_TASK)
                circuit = facts.circuit
                now = self._now().astimezone(UTC)  # as the store gives it back
                asked = Delegation(
                    id=0,
                    tenant_id=self.tenant_id,
                    task_id=task.id,
                    adapter=entry.name,
                    adapter_kind=entry.kind,
                    capability=capability,
                    input=payload,
                    timeout_seconds=float(timeout_seconds),
                    actor=actor,
                    status=DelegationStatus.QUEUED,
                    queued_at=now,
                    started_at=None,
                    attempts=0,
                )
                # A destructive tool's call, or a classified capability's, is flagged by the gate (its approval is
                # asked for by a runner).
                starting = start and circuit.state is CircuitState.CLOSED and not destructive
                if starting:
                    starting = not await gates_of(conn, self.tenant_id, entry.name, capability)
                if starting:
                    starting = await self._gate.clears(AgentCall.of_delegation(asked))
                lease_end: datetime | None = None
                if starting:
                    asked = replace(asked, status=DelegationStatus.RUNNING, started_at=now, attempts=1)
                    lease_end = self._lease_end(now, timeout_seconds)
                recorded = []
                if task.status is not TaskStatus.DELEGATED:
                    if not await mark_task_delegated(conn, self.tenant_id, task.id, seen_version=task.version):
                        continue  # the task changed since it was read: read it again
                    before = snapshot(task)
                    after = {**before, "status": TaskStatus.DELEGATED.value, "version": task.version + 1}
                    recorded.append(
                        event_log.entry(
                            tenant_id=self.tenant_id,
                            at=now,
                            actor=actor,
                            kind="task.status.delegated",
                            subject_type="task",
                            subject_id=task.id,
                            before=before,
                            after=after,
                        )
                    )
                # Only its id is new: the rest is what was just written.
                runner = self.worker if starting else None
                new_id = await stored.insert_delegation(conn, asked, leased_by=runner, lease_until=lease_end)
                delegation = replace(asked, id=new_id)
                recorded.append(
                    self._event(actor=actor, kind="delegation.queued", after=delegation, extra={"input": payload})
                )
                await event_log.record_all(conn, recorded)
            if starting:
                self._started[delegation.id] = Prospect(
                    delegation=delegation, adapter=entry, circuit=circuit, owner=task.owner
                )
            return delegation
        current = await Plans(self._store, self.tenant_id).get_task(task_id)
        raise StaleEdit("Task", task_id, current.version - 1, current.version)

    # ---- running -----------------------------------------------------------------------------------------------

    async def run(self, delegation_id: int, *, human: HumanChannel | None = None) -> RunOutcome:
        """Run a queued or deferred delegation through its agent, behind the agent's circuit breaker.

        Returns at once with `ran=False` if another runner holds it or it is finished. If the circuit is open, or
        the agent cannot be reached, it is deferred (see `RunOutcome.tell_owner`). An adapter that was removed,
        disabled or whose configuration broke fails it with the reason. Raises DelegationNotFound, and whatever
        the guard raises (the delegation is then put back as it was).
        """
        prospect = self._started.pop(delegation_id, None)
        if prospect is not None:
            outcome = await self._run_started(prospect, human)
        else:
            prospect = await self._prospect(delegation_id)
            outcome = await self._run(prospect, human)
        return replace(outcome, owner=prospect.owner)

    async def _run_started(self, prospect: Prospect, human: HumanChannel | None) -> RunOutcome:
        """Call the agent of a delegation `request` stored started by this runner."""
        assert prospect.adapter is not None
        started = prospect.delegation
        try:
            agent = await self._registry.open(prospect.adapter)
        except _OPEN_ERRORS as error:
            failed = self._explain(error)
            return await self._finish(started, DelegationStatus.FAILED, error=failed, ran=False, prospect=prospect)
        admitted = await self._admit(started, prospect, agent, circuit=prospect.circuit)
        if isinstance(admitted, RunOutcome):
            return admitted
        return await self._call(started, prospect, agent, admitted, human)

    async def _run(self, prospect: Prospect, human: HumanChannel | None) -> RunOutcome:
        current, entry = prospect.delegation, prospect.adapter
        if prospect.task_done and current.cancellable:
            # Its task was done meanwhile (by a person, or before a crash left this queued): what it would do is
            # no longer wanted.
            async with self._store.transaction() as conn:
                why = self._explain(TaskDoneFirst(current.id, current.task_id))
                cancelled = await self._cancel_in(conn, [current.id], actor="system", reason=why)
            return RunOutcome(delegation=cancelled[0] if cancelled else await self.get(current.id), ran=False)
        cleared = await self._gate.clears(AgentCall.of_delegation(current))
        if cleared and entry is not None and entry.enabled and prospect.circuit.state is CircuitState.CLOSED:
            # Nothing stands in the way of the call, so the claim starts it too: one statement. The agent is opened
            # first: one that cannot be opened fails the delegation unstarted (below).
            try:
                agent = await self._registry.open(entry)
            except _OPEN_ERRORS:
                pass
            else:
                started = await self._claim(current, start=True)
                if started is None:
                    await agent.close()
                    return RunOutcome(delegation=await self.get(current.id), ran=False)
                # Admitted as the gate and the circuit were just read (a rule or a circuit that changed since is
                # heard here, the attempt then counted as made).
                admitted = await self._admit(started, prospect, agent, circuit=prospect.circuit)
                if isinstance(admitted, RunOutcome):
                    return admitted
                return await self._call(started, prospect, agent, admitted, human)
        # Otherwise claim it first and decide then: only the runner holding it fails, defers or holds it.
        claimed = await self._claim(current, start=False)
        if claimed is None:
            return RunOutcome(delegation=await self.get(current.id), ran=False)
        if entry is None:
            try:
                entry = await self._registry.get(claimed.adapter)  # to name the adapters there are
            except AdapterNotFound as error:
                return await self._finish(
                    claimed, DelegationStatus.FAILED, error=self._explain(error), ran=False, prospect=prospect
                )
        prospect = replace(prospect, adapter=entry)
        if not entry.enabled:
            error_text = self._explain(AdapterDisabled(entry.name))
            return await self._finish(claimed, DelegationStatus.FAILED, error=error_text, ran=False, prospect=prospect)
        try:
            agent = await self._registry.open(entry)
        except _OPEN_ERRORS as error:
            failed = self._explain(error)
            return await self._finish(claimed, DelegationStatus.FAILED, error=failed, ran=False, prospect=prospect)
        admitted = await self._admit(claimed, prospect, agent)
        if isinstance(admitted, RunOutcome):
            return admitted
        return await self._call(await self._start(claimed), prospect, agent, admitted, human)

    async def _admit(
        self, held: Delegation, prospect: Prospect, agent: GatedAgent, *, circuit: Circuit | None = None
    ) -> Admission | RunOutcome:
        """Ask the gate and the circuit (through the gated agent) whether the delegation this runner holds may reach
        its agent: the admission to call it, or how the delegation ended up when it may not (the agent closed)."""
        try:
            return await agent.admit(AgentCall.of_delegation(held).request, circuit=circuit)
        except DelegationStopped as stopped:
            await agent.close()
            failed = self._explain(stopped)
            return await self._finish(held, DelegationStatus.FAILED, error=failed, ran=False, prospect=prospect)
        except DelegationHeld as hold:
            await agent.close()
            return await self._hold(held, reason=self._explain(hold), approval_id=hold.approval_id)
        except CircuitOpen as refused:
            # Only a health check of the agent closes its circuit again: no one's delegation is spent as the probe.
            await agent.close()
            return await self._defer(held, reason=self._explain(refused), retry_at=refused.retry_at, ran=False)
        except AgentUnavailable as unreachable:
            # Asking the server how it defines the tool failed: the tool was not called, so it may be sent later.
            await agent.close()
            retry_at = (await self._breakers.state(held.adapter)).retry_at(self._breakers.settings)
            return await self._defer(held, reason=self._explain(unreachable), retry_at=retry_at, ran=False)
        except BaseException:
            await agent.close()
            current = prospect.delegation
            await self._unclaim(held, current.status if current.runnable else DelegationStatus.QUEUED)
            raise

    async def _call(
        self,
        started: Delegation,
        prospect: Prospect,
        agent: GatedAgent,
        admitted: Admission,
        human: HumanChannel | None,
    ) -> RunOutcome:
        """Call the agent of a delegation this runner started; store (and tell the owner) what came of it.

        The gated agent cuts the call at its timeout and moves the circuit; this decides what becomes of the
        delegation."""
        adapter = started.adapter
        if human is not None:
            human = _LeaseKept(human, functools.partial(self._keep_lease, started))
        await self._store.people_first()  # a run in the background leaves the event loop to people's turns first
        try:
            result = await admitted.call(human=human)
        except UnknownCapability as error:
            return await self._finish(started, DelegationStatus.FAILED, error=self._explain(error), prospect=prospect)
        except AgentNotReached as error:
            if gives_up(started.attempts):
                gave_up = self._explain(DelegationGaveUp(started.id, started.attempts, error.reason))
                return await self._finish(started, DelegationStatus.FAILED, error=gave_up, prospect=prospect)
            retry_at = (await self._breakers.state(adapter)).retry_at(self._breakers.settings)
            return await self._defer(started, reason=self._explain(error), retry_at=retry_at, ran=True)
        except AgentUnavailable as error:
            # It may have reached the agent: sending it again could do it twice.
            return await self._unknown(started, reason=self._explain(error), prospect=prospect)
        except asyncio.CancelledError:
            # Stopping mid-call: the agent may have it. Whoever runs next must not send it again.
            stopped = self._explain(StoppedMidCall())
            await asyncio.shield(self._unknown(started, reason=stopped, prospect=prospect))
            raise
        except Exception as error:
            # The adapter broke its contract (its errors should be AgentErrors): fail visibly, then let it surface.
            detail = self._explain(AdapterBroke(started.adapter_kind, error))
            await self._finish(started, DelegationStatus.FAILED, error=detail, prospect=prospect)
            raise
        finally:
            await agent.close()
        return await self._finish_with(started, result, prospect)

    async def _prospect(self, delegation_id: int) -> Prospect:
        """What a runner needs to know before it claims the delegation, in one statement. Raises DelegationNotFound."""
        async with self._store.read() as conn:
            prospect = await stored.prospect(conn, self.tenant_id, delegation_id)
        if prospect is None:
            raise DelegationNotFound(delegation_id)
        return prospect

    async def _claim(self, current: Delegation, *, start: bool) -> Delegation | None:
        """Take the delegation for this runner, and with `start` start it too; None if it is taken or finished."""
        now = self._now()
        lease_end = self._lease_end(now, current.timeout_seconds)
        async with self._store.transaction() as conn:
            return await stored.claim(
                conn, self.tenant_id, current.id, runner=self.worker, now=now, lease_end=lease_end, start=start
            )

    async def _keep_lease(self, delegation: Delegation, waiting_seconds: float) -> None:
        """Hold the running delegation for its timeout from now, and `waiting_seconds` more (a person's answer)."""
        until = self._lease_end(self._now(), delegation.timeout_seconds) + timedelta(seconds=waiting_seconds)
        async with self._store.transaction() as conn:
            await stored.extend_lease(conn, self.tenant_id, delegation.id, runner=self.worker, until=until)

    def _lease_end(self, now: datetime, timeout_seconds: float) -> datetime:
        """How long a runner holds a delegation it starts: the agent's timeout and twice the grace the gated agent
        gives it before cutting the call."""
        return now + timedelta(seconds=timeout_seconds) + 2 * self._registry.grace

    async def _start(self, delegation: Delegation) -> Delegation:
        async with self._store.transaction() as conn:
            started = await stored.start(conn, self.tenant_id, delegation.id, runner=self.worker, now=self._now())
        return started if started is not None else delegation

    async def _let_go(self, conn: Connection, delegation: Delegation, **values: Any) -> Delegation | None:
        """Give up the lease this runner holds on `delegation`, writing `values` with it; None when the lease was
        lost to another runner meanwhile."""
        return await stored.let_go(conn, self.tenant_id, delegation.id, runner=self.worker, **values)

    async def _unknown(self, delegation: Delegation, *, reason: str, prospect: Prospect) -> RunOutcome:
        """The call may have reached the agent and no answer came: `unknown`, and its owner is told in the same
        transaction, once."""
        now = self._now()
        async with self._store.transaction() as conn:
            after = await self._let_go(
                conn,
                delegation,
                status=DelegationStatus.UNKNOWN.value,
                error=reason[:2000],
                owner_told_at=now,
            )
            if after is None:
                return RunOutcome(delegation=await self.get(delegation.id), ran=True)
            await self._record(conn, actor=self._agent_actor(after), kind="delegation.unknown", after=after)
            await self._tell_in(conn, after, prospect.owner)
        return RunOutcome(delegation=after, ran=True, told=True)

    # ---- a person steps in -------------------------------------------------------------------------------------

    async def retry(self, delegation_id: int, *, actor: str) -> Delegation:
        """Queue again a delegation of unknown outcome, or one that failed or was cancelled, as a person decided.

        Raises DelegationNotFound, DelegationNotRetryable (it is queued, running, held or succeeded), InvalidValue
        (its task is done).
        """
        async with self._store.transaction() as conn:
            current = await self._locked(conn, delegation_id)
            if not current.retryable:
                raise DelegationNotRetryable(delegation_id, current.status, "retried")
            if await stored.task_is_done(conn, current.task_id):
                raise InvalidValue(Field.DELEGATION, f"D{delegation_id}", Expected.DELEGATION_OF_OPEN_TASK)
            after = await stored.requeue(conn, self.tenant_id, delegation_id, was=current.status)
            if after is None:  # changed since it was read (it is locked on PostgreSQL; SQLite has one writer)
                raise DelegationNotRetryable(delegation_id, (await self._locked(conn, delegation_id)).status, "retried")
            await self._record(conn, actor=actor, kind="delegation.retried", after=after, extra={"was": current.status})
        return after

    async def cancel(self, delegation_id: int, *, actor: str, reason: str) -> Delegation:
        """Cancel a delegation no agent is working on (queued, deferred, held or of unknown outcome); `reason` is what
        its record says (the bot's words).

        Raises DelegationNotFound, DelegationNotRetryable (it is running or ended already).
        """
        async with self._store.transaction() as conn:
            current = await self._locked(conn, delegation_id)
            if not current.cancellable:
                raise DelegationNotRetryable(delegation_id, current.status, "cancelled")
            cancelled = await self._cancel_in(conn, [delegation_id], actor=actor, reason=reason)
        return cancelled[0]

    async def cancel_open_of_task(self, task_id: int, *, actor: str, reason: str) -> list[Delegation]:
        """Cancel the task's delegations that no agent is working on: the task was done (or is going away), so what
        they would do is no longer wanted. A queued one that slips past this is cancelled when a runner picks it up."""
        async with self._store.transaction() as conn:
            ids = await stored.cancellable_of_task(conn, self.tenant_id, task_id)
            return await self._cancel_in(conn, ids, actor=actor, reason=reason) if ids else []

    async def _cancel_in(self, conn: Connection, ids: Sequence[int], *, actor: str, reason: str) -> list[Delegation]:
        cancelled = await stored.cancel(conn, self.tenant_id, ids, reason=reason[:2000], now=self._now())
        for after in cancelled:
            await self._record(conn, actor=actor, kind="delegation.cancelled", after=after, extra={"reason": reason})
        return cancelled

    async def _locked(self, conn: Connection, delegation_id: int) -> Delegation:
        current = await stored.locked_delegation(conn, self.tenant_id, delegation_id)
        if current is None:
            raise DelegationNotFound(delegation_id)
        return current

    async def _unclaim(self, delegation: Delegation, status: DelegationStatus) -> None:
        async with self._store.transaction() as conn:
            await self._let_go(conn, delegation, status=status.value)

    async def _defer(self, delegation: Delegation, *, reason: str, retry_at: datetime | None, ran: bool) -> RunOutcome:
        now = self._now()
        # Only the runner holding the lease gets here, so "not told yet" is decided exactly once.
        tell_owner = delegation.owner_told_at is None
        async with self._store.transaction() as conn:
            after = await self._let_go(
                conn,
                delegation,
                status=DelegationStatus.DEFERRED.value,
                error=reason[:2000],
                retry_at=retry_at,
                deferred_at=delegation.deferred_at or now,
                owner_told_at=delegation.owner_told_at or now,
            )
            if after is None:
                return RunOutcome(delegation=await self.get(delegation.id), ran=ran)
            await self._record(conn, actor=self._agent_actor(after), kind="delegation.deferred", after=after)
        return RunOutcome(delegation=after, ran=ran, tell_owner=tell_owner)

    async def _hold(self, delegation: Delegation, *, reason: str, approval_id: int) -> RunOutcome:
        """Park the delegation until approval `approval_id` is decided; its owner is told (once per hold)."""
        async with self._store.transaction() as conn:
            after = await self._let_go(conn, delegation, status=DelegationStatus.HELD.value, error=reason[:2000])
            if after is None:
                return RunOutcome(delegation=await self.get(delegation.id), ran=False)
            approval = {"approval": approval_id}
            await self._record(conn, actor="policy", kind="delegation.held", after=after, extra=approval)
        return RunOutcome(delegation=after, ran=False, tell_owner=True)

    async def held(self) -> list[Delegation]:
        """The delegations waiting for a person's approval, oldest first."""
        async with self._store.read() as conn:
            return await stored.delegations_in(conn, self.tenant_id, (DelegationStatus.HELD,))

    async def release_hold(self, delegation_id: int, *, approved: bool, actor: str, reason: str) -> Delegation | None:
        """A held delegation's approval was decided: queue it to run (`approved`) or fail it with `reason`.

        Returns the delegation as stored afterwards, or None when it was not held (another replica released it).
        """
        now = self._now()
        status = DelegationStatus.QUEUED if approved else DelegationStatus.FAILED
        error = None if approved else reason[:4000]
        async with self._store.transaction() as conn:
            after = await stored.release_hold(conn, self.tenant_id, delegation_id, status=status, error=error, now=now)
            if after is None:
                return None
            kind = "delegation.approved" if approved else f"delegation.{DelegationStatus.FAILED.value}"
            await self._record(conn, actor=actor, kind=kind, after=after, extra={"reason": reason})
        return after

    async def _finish_with(self, delegation: Delegation, result: DelegationResult, prospect: Prospect) -> RunOutcome:
        """Store what the agent answered (its gated agent told the circuit that it answered)."""
        if result.status is DelegationStatus.SUCCEEDED:
            return await self._finish(
                delegation,
                DelegationStatus.SUCCEEDED,
                output=result.output,
                data=result.data,
                progress=result.progress,
                evidence=result.evidence,
                prospect=prospect,
            )
        error = self._explain(AgentDeclined(result.status, result.error))
        return await self._finish(
            delegation,
            DelegationStatus.FAILED,
            output=result.output,
            data=result.data,
            progress=result.progress,
            error=error,
            evidence=result.evidence,
            prospect=prospect,
        )

    async def _finish(
        self,
        delegation: Delegation,
        status: DelegationStatus,
        *,
        output: str | None = None,
        data: dict[str, Any] | None = None,
        progress: tuple[str, ...] = (),
        error: str | None = None,
        evidence: tuple[Evidence, ...] = (),
        ran: bool = True,
        prospect: Prospect | None = None,
    ) -> RunOutcome:
        """Store how the delegation ended. With the `prospect` the run began from, the message telling the task's
        owner goes to the outbox in the same transaction (`RunOutcome.told`)."""
        now = self._now().astimezone(UTC)  # as the store gives it back
        evidence = _with_whole_answer(output, evidence)
        output, output_cut = cut_output(output)
        stored_data = _json_copy(data, default=str) if data is not None else None
        # How long the agent took on the attempt that ended it; None when no agent call ended it.
        seconds = (now - delegation.started_at).total_seconds() if ran and delegation.started_at is not None else None
        async with self._store.transaction() as conn:
            failure = error[:4000] if error else None
            ended = await stored.finish(
                conn,
                self.tenant_id,
                delegation.id,
                runner=self.worker,
                status=status,
                output=output,
                output_cut=output_cut,
                data=stored_data,
                error=failure,
                now=now,
                seconds=seconds,
                progress=progress,
            )
            if not ended:
                # The lease was lost to another runner meanwhile: its result stands.
                return RunOutcome(delegation=await self.get(delegation.id), ran=ran)
            # Only the lease holder writes a delegation it holds, so it is as read, with what was just written.
            after = replace(
                delegation,
                status=status,
                output=output,
                output_cut=output_cut,
                data=stored_data,
                progress=progress,
                error=failure,
                finished_at=now,
                seconds=seconds,
                retry_at=None,
            )
            await self._keep_evidence(conn, after, evidence)
            await self._record(conn, actor=self._agent_actor(after), kind=f"delegation.{status.value}", after=after)
            if prospect is not None:
                await self._tell_in(conn, after, prospect.owner)
        return RunOutcome(delegation=after, ran=ran, told=prospect is not None)

    async def _tell_in(self, conn: Connection, delegation: Delegation, owner: str | None) -> None:
        """Put the message telling the task's owner (or, with no owner, who asked) how the delegation ended in the
        outbox, in the transaction that ended it (only the lease holder ends it, once)."""
        message = Message(
            recipient=owner or delegation.actor,
            kind=MessageKind.DELEGATION_RESULT,
            payload={"delegation": delegation.id},
        )
        key = f"{MessageKind.DELEGATION_RESULT}:{delegation.id}:{delegation.attempts}"
        await Outbox(self._store).queue_in(conn, self.tenant_id, key, [message])

    async def _keep_evidence(self, conn: Connection, delegation: Delegation, evidence: tuple[Evidence, ...]) -> None:
        kept = []
        for item in evidence[:MAX_EVIDENCE_ITEMS]:
            size = len(item.content)
            keep = keeps_evidence(size)  # one not kept says so by its size, with no content
            kept.append(
                StoredEvidence(
                    id=0,
                    delegation_id=delegation.id,
                    kind=item.kind[:32],
                    media_type=item.media_type[:100],
                    description=item.description.strip(),
                    size=size,
                    # Screenshots show the vendor's pages (customers, campaigns): sealed like the adapters' secrets.
                    content=self._registry.vault.encrypt(item.content) if keep else None,
                )
            )
        await stored.insert_evidence(conn, kept, tenant_id=self.tenant_id)

    @staticmethod
    def _agent_actor(delegation: Delegation) -> str:
        return f"{delegation.adapter_kind}:{delegation.adapter}"

    async def _record(
        self,
        conn: Connection,
        *,
        actor: str,
        kind: str,
        after: Delegation,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        await event_log.record_all(conn, [self._event(actor=actor, kind=kind, after=after, extra=extra)])

    def _event(
        self, *, actor: str, kind: str, after: Delegation, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return event_log.entry(
            tenant_id=self.tenant_id,
            at=self._now(),
            actor=actor,
            kind=kind,
            subject_type="delegation",
            subject_id=after.id,
            before=None,
            after={**_summary(after), **(extra or {})},
        )


class _LeaseKept(HumanChannel):
    """A human channel that keeps the runner's lease while a person is asked: the wait is the person's, and the
    delegation must not lapse into `unknown` meanwhile."""

    def __init__(self, human: HumanChannel, keep: Callable[[float], Awaitable[None]]) -> None:
        self._human = human
        self._keep = keep

    async def ask(self, question: str, *, timeout_seconds: float) -> str:
        await self._keep(timeout_seconds)
        try:
            answer = await self._human.ask(question, timeout_seconds=timeout_seconds)
        except AgentError:
            await self._keep(0)
            raise
        await self._keep(0)
        return answer

    async def progressed(self, step: str) -> None:
        await self._human.progressed(step)


async def overdue_delegations(store: Store, at: datetime, *, tenant_id: str | None = None) -> list[OverdueDelegation]:
    """Every tenant's (or one tenant's) overdue delegations: see `Delegations.overdue`."""
    async with store.read() as conn:
        return await stored.overdue_delegations(conn, at.date(), tenant_id=tenant_id)


async def tenants_with_delegations_to_run(store: Store) -> list[str]:
    """Tenants that have queued, deferred or running delegations: the scheduler builds `Delegations` for these."""
    async with store.read() as conn:
        return await stored.tenants_with_delegations_in(conn, IN_FLIGHT)


async def tenants_with_held_delegations(store: Store) -> list[str]:
    """Tenants with a delegation waiting for an approval (the scheduler settles those whose approval was decided)."""
    async with store.read() as conn:
        return await stored.tenants_with_delegations_in(conn, (DelegationStatus.HELD,))


async def get_delegation(store: Store, tenant_id: str, delegation_id: int) -> Delegation:
    """One delegation, read without an agent registry (to show it). Raises DelegationNotFound."""
    async with store.read() as conn:
        delegation = await stored.get_delegation(conn, tenant_id, delegation_id)
    if delegation is None:
        raise DelegationNotFound(delegation_id)
    return delegation


async def keep_live_card(store: Store, tenant_id: str, delegation_id: int, card: dict[str, Any] | None) -> None:
    """Keep where the card a person follows the delegation in lies, for its result to update (None: forget it)."""
    async with store.transaction(receipt=False) as conn:
        await stored.set_live_card(conn, tenant_id, delegation_id, card)


async def evidence_of(store: Store, tenant_id: str, delegation_id: int, vault: Vault | None) -> list[StoredEvidence]:
    """What the agent showed for a delegation, read without an agent registry (to show it), in the order it gave it,
    decrypted with `vault`; without one, only what was kept before evidence was encrypted at rest can be shown, so
    nothing is returned."""
    if vault is None:
        return []
    async with store.read() as conn:
        kept = await stored.evidence_of(conn, tenant_id, delegation_id)
    return [replace(item, content=_unsealed(vault, item.content)) for item in kept]


def _unsealed(vault: Vault, content: bytes | None) -> bytes | None:
    if content is None:
        return None
    try:
        return vault.decrypt(content)
    except VaultError:
        return content  # kept before evidence was encrypted at rest
