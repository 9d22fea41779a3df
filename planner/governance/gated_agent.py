"""The one way to an agent: every agent the registry hands out is a `GatedAgent`, never a bare one.

As pydantic-ai's `ApprovalRequiredToolset` wraps tools, `GatedAgent` wraps an agent: before a call reaches it, the
policy gate is asked (`planner/governance/guard.py`: the call described as an `Action` of kind `delegation`, with the
adapter, the capability, the input and who asks) and answers by raising or returning:

- stop: `DelegationStopped`, with the rules' reasons;
- flag: `DelegationHeld` once a person's approval of the delegation is asked for; a call that carries out no stored
  delegation (a metric feed pull) cannot wait for one, so it is stopped instead;
- go: the agent's circuit breaker is asked next. An open circuit refuses at once with `CircuitOpen` (the call
  provably never left, so it is an `AgentNotReached`), without touching the agent: only a health check
  (`Breakers.check_health`) lets calls through again, never somebody's call.

The call is cut at its timeout plus a grace (`AgentTimeout`); time spent waiting for a person's answer (a 2FA code the
agent asked for) does not count, since the person was told how long they have. What happened moves the circuit: a
call that did not reach the agent or got no answer (`AgentUnavailable`, timeouts and `AgentNotReached` included) is a
failure; any answer, a refusal or an unknown capability too, is a success. Delegations, metric feed pulls and any
caller to come pass the same gate and breaker because the registry gives out nothing else. `capabilities()` and
`health()` are reads and pass through.

For an adapter whose tools an admin enables one by one (an MCP server's), the registry adds a `ToolCheck`, asked after
the breaker: the tool must be enabled, defined by the server as when it was enabled, and the input must fit its
schema (planner/services/tools.py); otherwise `DelegationStopped`. Asking the server how it defines the tool now is
a call of the agent like another: one that cannot be made moves the circuit, and raises `AgentUnavailable`.

A caller that keeps a durable record of the call takes the two steps apart: `admit` asks the gate and the breaker
and gives a one-shot `Admission`, whose `call` calls the agent. A delegation runner admits while it holds the
delegation, records that it started, then calls (planner/services/delegation.py); `delegate` does both at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from planner.domain.circuits import Circuit, CircuitState
from planner.domain.delegations import Delegation
from planner.domain.errors import PlannerError
from planner.domain.governance import DestructiveTool, GateCategory, PolicyReason
from planner.ports import (
    Agent,
    AgentError,
    AgentHealth,
    AgentNotReached,
    AgentTimeout,
    AgentUnavailable,
    Capability,
    DelegationRequest,
    DelegationResult,
    HumanChannel,
    UnknownCapability,
)
from planner.services.breaker import Breakers

DEFAULT_GRACE = timedelta(seconds=5)
"""How much longer than its own timeout an agent gets before the call is cut (it should time out by itself)."""


class StopCause(StrEnum):
    """Why the gate stopped a call."""

    POLICY = "policy"
    """A rule forbids it."""
    CANNOT_WAIT = "cannot_wait"
    """It needs a person's approval, and only a delegation can wait for one."""
    ANSWERED = "answered"
    """Its approval request was rejected or expired: the answer stands."""
    NO_APPROVERS = "no_approvers"
    """It needs a person's approval, and nobody may give it (`problem`)."""
    TOOL = "tool"
    """The adapter's tool is off or held, or the input does not fit its schema (`problem`)."""


def _logged(reason: PolicyReason) -> str:
    """A reason as a log line shows it: a gate by its id, a destructive tool by its name (the bot words them)."""
    if isinstance(reason, GateCategory):
        return f"gate:{reason.value}"
    if isinstance(reason, DestructiveTool):
        return f"destructive_tool:{reason.agent}/{reason.capability}"
    return str(reason)


class DelegationStopped(PlannerError):
    """The gate stopped the call: `cause` says why, `reasons` what the matching rules said; `approval` (its ref) and
    `status` name the request that answered (ANSWERED), `problem` why nobody can be asked (NO_APPROVERS)."""

    def __init__(
        self,
        cause: StopCause,
        reasons: Sequence[PolicyReason],
        *,
        approval: str | None = None,
        status: str | None = None,
        problem: PlannerError | None = None,
    ) -> None:
        self.cause = cause
        self.reasons = tuple(reasons)
        self.approval = approval
        self.status = status
        self.problem = problem
        answered = f" ({approval} {status})" if approval else ""
        because = f" ({problem})" if problem is not None else ""
        super().__init__(f"stopped, {cause.value}{answered}{because}: {'; '.join(map(_logged, reasons))}")


class DelegationHeld(PlannerError):
    """The gate holds the call: its delegation waits for a person's approval (`approval_id`) before it may run;
    `reasons`: what the matching rules said."""

    def __init__(self, reasons: Sequence[PolicyReason], approval_id: int) -> None:
        self.reasons = tuple(reasons)
        self.approval_id = approval_id
        super().__init__(f"held for approval A{approval_id}: {'; '.join(map(_logged, reasons))}")


class CircuitOpen(AgentNotReached):
    """The agent's circuit is open: the call was refused without reaching the agent; a health check of the agent
    lets calls through again (`retry_at`: when the circuit's cool-down ends)."""

    def __init__(self, circuit: Circuit, retry_at: datetime | None) -> None:
        self.agent = circuit.adapter
        self.circuit = circuit
        self.retry_at = retry_at
        cause = f" (last error: {circuit.last_error})" if circuit.last_error else ""
        self.reason = f"circuit open{cause}"
        AgentError.__init__(self, f"agent {circuit.adapter!r}: {self.reason}")


@dataclass(frozen=True, kw_only=True)
class AgentCall:
    """A call of an agent as the gate sees it: the tenant, the adapter it goes through, and the request."""

    tenant_id: str
    adapter: str
    adapter_kind: str
    request: DelegationRequest

    @classmethod
    def of_delegation(cls, delegation: Delegation) -> AgentCall:
        """The agent call that carries out a stored delegation."""
        request = DelegationRequest(
            capability=delegation.capability,
            input=delegation.input,
            task_id=delegation.task_id,
            timeout_seconds=delegation.timeout_seconds,
            requested_by=delegation.actor,
            delegation_id=delegation.id,
        )
        return cls(
            tenant_id=delegation.tenant_id,
            adapter=delegation.adapter,
            adapter_kind=delegation.adapter_kind,
            request=request,
        )


class Gate(Protocol):
    """The policy gate's seam (`planner.governance.guard.PolicyGuard`), asked before every call of an agent."""

    async def clears(self, call: AgentCall) -> bool:
        """True when the call may simply go, with nothing to record or ask first. Reads only, so a caller may ask
        before it commits to anything (a delegation runner then claims and starts the delegation in one statement).
        """
        ...

    async def __call__(self, call: AgentCall) -> None:
        """Return to let the call go (having recorded why, when a rule spoke).

        Raises:
            DelegationStopped: it must not go.
            DelegationHeld: its delegation waits for the approval the gate asked for.
        """
        ...


class ToolCheck(Protocol):
    """What must hold of the tool a call goes to before it is called (`planner.services.tools.PinnedTools`)."""

    async def __call__(self, agent: Agent, request: DelegationRequest) -> None:
        """Return when `request` may go to `agent`'s tool.

        Raises:
            DelegationStopped: the tool is off or held, or the input does not fit it.
            AgentUnavailable: the agent could not be asked how it defines the tool.
        """
        ...


class GatedAgent(Agent):
    """An agent behind the policy gate and its circuit breaker: what `Registry.open` hands out."""

    def __init__(
        self,
        agent: Agent,
        *,
        tenant_id: str,
        adapter: str,
        kind: str,
        gate: Gate,
        breakers: Breakers,
        grace: timedelta = DEFAULT_GRACE,
        tools: ToolCheck | None = None,
    ) -> None:
        """`tools`: the check of the called tool, for an adapter whose tools are enabled one by one."""
        self._agent = agent
        self.tenant_id = tenant_id
        self.name = adapter
        self.kind = kind
        self._gate = gate
        self._breakers = breakers
        self._grace = grace.total_seconds()
        self._tools = tools

    async def capabilities(self) -> list[Capability]:
        return await self._agent.capabilities()

    async def capability(self, name: str) -> Capability | None:
        return await self._agent.capability(name)

    async def health(self) -> AgentHealth:
        return await self._agent.health()

    async def rehearse(self, request: DelegationRequest, *, human: HumanChannel | None = None) -> DelegationResult:
        """A dry run changes nothing at the agent: like `health`, it passes by the gate and the breaker."""
        return await self._agent.rehearse(request, human=human)

    async def close(self) -> None:
        await self._agent.close()

    async def delegate(self, request: DelegationRequest, *, human: HumanChannel | None = None) -> DelegationResult:
        """The gate, the breaker, then the agent.

        Raises what `admit` raises, and what `Agent.delegate` does (`AgentTimeout` once the timeout and the grace are
        over).
        """
        return await (await self.admit(request)).call(human=human)

    async def admit(self, request: DelegationRequest, *, circuit: Circuit | None = None) -> Admission:
        """Ask the gate, then the circuit breaker, whether `request` may reach the agent; the agent is not called.

        `circuit`: the adapter's circuit as the caller has just read it (not read again then).
        Raises:
            DelegationStopped, DelegationHeld: the gate's answer (see `Gate`).
            CircuitOpen: the agent's circuit is not closed.
            AgentUnavailable: the tool check could not ask the agent (the circuit has counted the failure).
        """
        await self._gate(
            AgentCall(tenant_id=self.tenant_id, adapter=self.name, adapter_kind=self.kind, request=request)
        )
        if circuit is None:
            circuit = await self._breakers.state(self.name)
        if circuit.state is not CircuitState.CLOSED:
            raise CircuitOpen(circuit, circuit.retry_at(self._breakers.settings))
        if self._tools is not None:
            try:
                await self._tools(self._agent, request)
            except AgentUnavailable as error:
                await self._breakers.failed(self.name, str(error))
                raise
        return Admission(self, request, circuit)

    async def _call(self, request: DelegationRequest, circuit: Circuit, human: HumanChannel | None) -> DelegationResult:
        try:
            try:
                async with asyncio.timeout(request.timeout_seconds + self._grace) as cut:
                    result = await self._agent.delegate(request, human=TimeOff(human, cut) if human else None)
            except TimeoutError:
                raise AgentTimeout(self.name, request.timeout_seconds) from None
        except UnknownCapability:
            await self._answered(circuit)  # it answered: the agent is there
            raise
        except AgentUnavailable as error:
            await self._breakers.failed(self.name, str(error))
            raise
        await self._answered(circuit)
        return result

    async def _answered(self, circuit: Circuit) -> None:
        if not circuit.clean:  # a clean circuit has nothing to forget: no write
            await self._breakers.succeeded(self.name)


class TimeOff(HumanChannel):
    """A human channel whose questions stop `deadline`'s clock: waiting for a person is not the agent's slowness."""

    def __init__(self, human: HumanChannel, deadline: asyncio.Timeout) -> None:
        self._human = human
        self._deadline = deadline

    async def ask(self, question: str, *, timeout_seconds: float) -> str:
        loop = asyncio.get_running_loop()
        planned = self._deadline.when()
        asked_at = loop.time()
        if planned is not None:
            self._deadline.reschedule(planned + timeout_seconds + 1)
        try:
            return await self._human.ask(question, timeout_seconds=timeout_seconds)
        finally:
            if planned is not None:
                self._deadline.reschedule(planned + (loop.time() - asked_at))

    async def progressed(self, step: str) -> None:
        await self._human.progressed(step)


class Admission:
    """A call the gate and the breaker let through: `call` calls the agent, once."""

    def __init__(self, agent: GatedAgent, request: DelegationRequest, circuit: Circuit) -> None:
        self._agent = agent
        self._request = request
        self._circuit = circuit
        self._used = False

    async def call(self, *, human: HumanChannel | None = None) -> DelegationResult:
        """Call the agent with the admitted request.

        Raises what `Agent.delegate` raises, `AgentTimeout` once the timeout and the grace are over, and
        RuntimeError when called a second time (admit the next call anew).
        """
        if self._used:
            raise RuntimeError("an admission lets one call through: admit the next call anew")
        self._used = True
        return await self._agent._call(self._request, self._circuit, human)
