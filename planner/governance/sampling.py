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

from planner.domain.governance import (
    REASON_KEY,
    Action,
    ActionKind,
    DecisionRecord,
    LogReason,
    Verdict,
    policy_reason_json,
)
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
        data: dict[str, object] = {
            "agent": request.agent,
            "max_tokens": request.max_tokens,
            "messages": len(request.messages),
        }
        rules = tuple(match.rule_id for match in decision.matched)
        if decision.verdict is not Verdict.GO:
            reasons = [policy_reason_json(reason) for reason in decision.reasons]
            declined = {**data, REASON_KEY: LogReason.SAMPLING_DECLINED.value, "reasons": reasons}
            await self._log(request, subject, "sampling.declined", decision.verdict.value, declined, rules)
            raise SamplingDeclined(policy=decision.verdict, reasons=tuple(decision.reasons))
        try:
            sampled = await self._sampler.sample(request)
        except SamplingDeclined as failed:
            failure = {**data, REASON_KEY: LogReason.SAMPLING_FAILED.value, "error": failed.reason}
            await self._log(request, subject, "sampling.failed", "failed", failure, rules)
            raise
        lent = {**data, REASON_KEY: LogReason.SAMPLING_LENT.value, "model": sampled.model}
        await self._log(request, subject, "sampling.lent", "go", lent, rules)
        return sampled

    async def _log(
        self,
        request: SamplingRequest,
        subject: str,
        action: str,
        verdict: str,
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
                rationale="",
                data={**data, "on_behalf_of": request.requested_by},
                rules=rules,
            )
        )
