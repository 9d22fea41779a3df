"""The gate in front of the bot's model when an agent asks to use it (MCP sampling).

`GatedSampler` describes each request as an `Action` of kind `sampling` (the agent as actor, on behalf of the person
whose call it came in, the adapter as agent) and asks the tenant's policy engine: go lends the model; stop declines
with the rules' reasons; a flag declines too, since a request made in the middle of a tool call cannot wait for a
person's approval. Every request is written to the decision log, lent or declined.

What the model writes goes back to the agent as data and nowhere else: the model is given no tools, so nothing an
agent asks it can change a plan, approve a request or reach a person.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from planner.domain.governance import Action, ActionKind, DecisionRecord, Verdict
from planner.ports import Sampled, Sampler, SamplingDeclined, SamplingRequest
from planner.services.policy import PolicyEngine

Record = Callable[[DecisionRecord], Awaitable[object]]


class GatedSampler(Sampler):
    """A tenant's sampler behind its policy gate, logging every request."""

    def __init__(self, sampler: Sampler, *, tenant_id: str, engine: PolicyEngine, record: Record) -> None:
        self._sampler = sampler
        self.tenant_id = tenant_id
        self._engine = engine
        self._record = record

    async def sample(self, request: SamplingRequest) -> Sampled:
        """The model's answer when the gate says go. Raises SamplingDeclined (stopped, flagged, or the model failed)."""
        subject = f"delegation:{request.delegation_id}" if request.delegation_id else f"adapter:{request.agent}"
        action = Action(
            tenant_id=self.tenant_id,
            kind=ActionKind.SAMPLING,
            actor=f"agent:{request.agent}",
            on_behalf_of=request.requested_by or None,
            agent=request.agent,
            name="sampling",
            subject=subject,
            attributes={"max_tokens": request.max_tokens},
        )
        decision = await self._engine.evaluate(action)
        data = {"agent": request.agent, "max_tokens": request.max_tokens, "messages": len(request.messages)}
        rules = tuple(match.rule_id for match in decision.matched)
        if decision.verdict is not Verdict.GO:
            reasons = "; ".join(decision.reasons)
            await self._log(request, subject, "sampling.declined", decision.verdict.value, reasons, data, rules)
            wait = " (it cannot wait for an approval mid-call)" if decision.verdict is Verdict.FLAG else ""
            raise SamplingDeclined(f"this bot's policy does not lend its model here{wait}: {reasons}")
        try:
            sampled = await self._sampler.sample(request)
        except SamplingDeclined as declined:
            await self._log(request, subject, "sampling.failed", "failed", declined.reason, data, rules)
            raise
        why = f"{request.agent} used the bot's model ({sampled.model}) for a call"
        await self._log(request, subject, "sampling.lent", "go", why, {**data, "model": sampled.model}, rules)
        return sampled

    async def _log(
        self,
        request: SamplingRequest,
        subject: str,
        action: str,
        verdict: str,
        rationale: str,
        data: dict[str, object],
        rules: tuple[str, ...],
    ) -> None:
        await self._record(
            DecisionRecord(
                tenant_id=self.tenant_id,
                actor=f"agent:{request.agent}",
                action=action,
                subject=subject,
                verdict=verdict,
                rationale=rationale,
                data={**data, "on_behalf_of": request.requested_by},
                rules=rules,
            )
        )
