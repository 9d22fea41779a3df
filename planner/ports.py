"""What the planner needs from outside: a clock, vendor AI agents (what one offers, how a task is delegated to it),
and a recommender of next steps for KPIs.

Declared here, implemented in `adapters/` (one module per kind: `adapters/mcp.py`, `adapters/browser.py`).
The planner only ever sees this seam: an adapter converts its library's errors into the `AgentError`s below,
so callers never catch an `mcp`, `httpx` or `playwright` exception.

An agent's output is data. It is stored and shown, never executed as an instruction; any side effect it
leads to goes through the policy engine like any other action.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from planner.domain.delegations import DelegationStatus
from planner.domain.governance import PolicyReason, Verdict
from planner.domain.measurement import MeasurementReport, Recommendation

Clock = Callable[[], datetime]
"""Time, injected: the store and the services ask a clock instead of the system, so tests can set the hour."""


Explain = Callable[[BaseException], str]
"""How an error is written into a record a person reads later (a failed delegation's problem, a feed's last error):
the bot passes its words (bot/text/errors.py); without them an error's own plain message is kept."""


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Capability:
    """One thing an agent can do, e.g. `draft_email`, with the JSON schema of what it takes."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)
    definition: dict[str, Any] | None = None
    """The vendor's own definition of the tool behind it, in the vendor's protocol's words (MCP: `name`,
    `description`, `inputSchema`, `annotations`): what an admin enables and the registry pins. None when the
    capability is the admin's own (a browser recipe)."""


@dataclass(frozen=True, kw_only=True)
class DelegationRequest:
    """What is asked of the agent: which capability, with which input, for which task, and who asks.

    Who asks and what for are read by the policy gate in front of every agent (`planner/governance/gated_agent.py`), not
    sent to the agent.
    """

    capability: str
    input: dict[str, Any] = field(default_factory=dict)
    task_id: int | None = None
    timeout_seconds: float = 60.0
    """How long the agent may take before the delegation fails with `AgentTimeout`."""
    requested_by: str = ""
    """Who asks: the person who delegated, or `bot` for a call the bot makes on its own (a scheduled pull)."""
    delegation_id: int | None = None
    """The stored delegation this call carries out: a call a policy flags waits for a person's approval of it.
    None: nothing can wait (a pull), so a flag refuses the call."""
    subject: str = ""
    """What the call is about in the decision log when it carries out no delegation (`metric:3`)."""


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """Something kept with a delegation to show what the agent did: its raw answer, a screenshot…"""

    kind: str
    """`text`, `json` or `screenshot`."""
    media_type: str
    content: bytes
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class DelegationResult:
    """What came back: the output to show the task's owner, structured data if any, evidence and timings."""

    status: DelegationStatus
    output: str = ""
    data: dict[str, Any] | None = None
    evidence: tuple[Evidence, ...] = ()
    started_at: datetime
    finished_at: datetime
    error: str | None = None
    progress: tuple[str, ...] = ()
    """The steps the agent reported along the way (`2/3: scoring accounts`), oldest first, for the owner's card."""

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, kw_only=True)
class AgentHealth:
    """The result of a health check: whether the agent answers, and what it said or why not."""

    ok: bool
    detail: str = ""
    seconds: float = 0.0


class HumanChannel(Protocol):
    """How an agent reaches a person mid-delegation, relayed by the bot in Teams: it asks them something (a 2FA code),
    and tells them how far it got."""

    async def ask(self, question: str, *, timeout_seconds: float) -> str:
        """The person's answer.

        Raises:
            AgentTimeout: nobody answered within `timeout_seconds`.
            QuestionCancelled: the person said `cancel` instead of answering.
        """
        ...

    async def progressed(self, step: str) -> None:
        """The agent reported a step (`2/3: scoring accounts`, one plain line cut to length), to show as it arrives.

        Returns at once and raises nothing: showing it must never slow or fail the delegation. By default it is only
        kept with the result (`DelegationResult.progress`)."""
        return


@dataclass(frozen=True, kw_only=True)
class SamplingRequest:
    """An agent asking, mid-call, to use the bot's language model (MCP `sampling/createMessage`): text in, text out.

    Who asks and for which call are read by the gate in front of the model (`planner/governance/sampling.py`, one per
    tenant); the model sees only the messages and the agent's system prompt, and is given no tools."""

    agent: str
    """The adapter whose server asks."""
    messages: tuple[tuple[str, str], ...]
    """(`user` or `assistant`, text), oldest first."""
    system: str = ""
    max_tokens: int
    requested_by: str = ""
    """Who the call it came in was made for (the person who delegated), when the adapter knows."""
    delegation_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class Sampled:
    """What the model wrote for an agent, and which model it was."""

    text: str
    model: str
    truncated: bool = False
    """It stopped at `max_tokens`."""


class Sampler(Protocol):
    """The bot's language model, lent to an agent that asks (sampling). Its answer goes back to the agent as data:
    the model has no tools, so nothing it writes can change a plan or approve anything."""

    async def sample(self, request: SamplingRequest) -> Sampled:
        """What the model writes for `request`.

        Raises:
            SamplingDeclined: the gate refused it, or the model could not be used; the reason is the agent's to read.
        """
        ...


class SignInChannel(Protocol):
    """How an agent that acts as a person (an MCP server behind OAuth sign-in) has that person authorize it: a card
    in their 1:1 chat whose button opens the vendor's sign-in page, which sends them back to the bot's callback."""

    user_id: str
    """Whose grant the agent uses and keeps: the person the card goes to."""

    async def sign_in(self, agent: str, authorization_url: str, *, timeout_seconds: float) -> Mapping[str, str]:
        """The parameters the authorization server sent the person back with (`code`, `state`, maybe `iss`, or
        `error`), once the callback received them.

        Raises:
            AgentTimeout: the person did not finish signing in within `timeout_seconds`.
        """
        ...


_SIGNING_IN: contextvars.ContextVar[SignInChannel | None] = contextvars.ContextVar("signing_in", default=None)


@contextlib.contextmanager
def acting_for(channel: SignInChannel) -> Iterator[None]:
    """Calls made in this block act for `channel`'s person: an agent that acts as a person uses their grant, and asks
    them to sign in through `channel` when it has none. Set around a whole delegation run (the gate's tool check
    lists the tools as that person too)."""
    token = _SIGNING_IN.set(channel)
    try:
        yield
    finally:
        _SIGNING_IN.reset(token)


def signing_in() -> SignInChannel | None:
    """The channel of the person the current call acts for (see `acting_for`), or None: nobody can be asked."""
    return _SIGNING_IN.get()


class Recommender(Protocol):
    """Writes the recommended next step for each KPI of a measurement report."""

    async def recommend(self, report: MeasurementReport) -> list[Recommendation]:
        """One recommendation per forecast, in the report's order.

        Raises nothing: an implementation that relies on a remote model falls back to the rules'
        (`planner.domain.measurement.next_steps`, worded by the bot).
        """
        ...


class Agent(abc.ABC):
    """A vendor agent the planner can delegate to. Implementations live in `adapters/`, one module per kind."""

    kind: str
    name: str

    @abc.abstractmethod
    async def capabilities(self) -> list[Capability]:
        """What the agent can do.

        Raises:
            AgentUnavailable: the agent could not be reached.
        """

    async def capability(self, name: str) -> Capability | None:
        """The capability called `name` as the agent defines it now, or None when it has none of that name. An agent
        that keeps what it learnt when it connected answers from there (no round trip per call).

        Raises:
            AgentUnavailable: the agent could not be reached.
        """
        return next((capability for capability in await self.capabilities() if capability.name == name), None)

    @abc.abstractmethod
    async def delegate(self, request: DelegationRequest, *, human: HumanChannel | None = None) -> DelegationResult:
        """Do `request` and return its result (status `succeeded`, or `failed` when the agent said no).

        Raises:
            UnknownCapability: the agent has no such capability.
            AgentNotReached: the call provably never reached the agent (safe to send again).
            AgentTimeout: the agent took longer than `request.timeout_seconds` (it may have acted).
            AgentUnavailable: the agent failed mid-call (it may have acted).
        """

    @abc.abstractmethod
    async def health(self) -> AgentHealth:
        """Whether the agent answers now; never raises."""

    async def rehearse(self, request: DelegationRequest, *, human: HumanChannel | None = None) -> DelegationResult:
        """Go through `request` as far as it can go without changing anything at the agent (a dry run): the result
        says how far it got and what it would have done next.

        Raises:
            RehearsalUnsupported: the agent's kind cannot tell a read from a change.
            UnknownCapability, AgentNotReached, AgentTimeout, AgentUnavailable: as `delegate`.
        """
        raise RehearsalUnsupported(self.name, self.kind)

    async def close(self) -> None:  # noqa: B027 - most agents hold nothing open between calls
        """Release what the agent holds open (connections, browsers)."""


class AgentError(Exception):
    """Something went wrong talking to an agent."""


class AgentUnavailable(AgentError):
    """The agent could not be reached or failed mid-call: counts against its circuit breaker."""

    def __init__(self, agent: str, reason: str) -> None:
        self.agent = agent
        self.reason = reason
        super().__init__(f"agent {agent!r} is unavailable: {reason}")


class AgentNotReached(AgentUnavailable):
    """The call provably never left for the agent (the connection was refused, the session could not be opened):
    it may be sent again without repeating anything. Adapters raise it only when they know."""


class AgentTimeout(AgentUnavailable):
    """The agent did not finish in time."""

    def __init__(self, agent: str, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(agent, f"no answer within {seconds:g} s")


class QuestionCancelled(AgentError):
    """The person an agent asked (for a 2FA code) cancelled instead of answering: the agent stops and says so."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        super().__init__(f"the person asked for {agent!r} cancelled")


class SamplingDeclined(AgentError):
    """An agent's request to use the bot's model was not answered: `reason`, what the model's client said (empty when
    the policy declined it), or `policy`, the verdict that declined it (stop; or flag, which a call cannot wait for)
    with what the rules said (`reasons`). The adapter words it for the agent; the bot, for the admin."""

    def __init__(
        self, reason: str = "", *, policy: Verdict | None = None, reasons: tuple[PolicyReason, ...] = ()
    ) -> None:
        self.reason = reason
        self.policy = policy
        self.reasons = reasons
        super().__init__(reason or f"declined by policy ({policy.value if policy else 'unknown'})")


class RehearsalUnsupported(AgentError):
    """The agent cannot do a dry run: only a kind that knows which of its steps change something can."""

    def __init__(self, agent: str, kind: str) -> None:
        self.agent = agent
        super().__init__(f"agent {agent!r} cannot do a dry run: a {kind} agent cannot tell what would change something")


class UnknownCapability(AgentError, LookupError):
    """The agent has no such capability; the message lists the ones it has."""

    def __init__(self, agent: str, capability: str, known: list[str]) -> None:
        self.agent = agent
        self.capability = capability
        self.known = tuple(sorted(known))
        listing = ", ".join(self.known) or "none"
        super().__init__(f"agent {agent!r} cannot {capability!r}; it can: {listing}")


class AgentConfigInvalid(AgentError, ValueError):
    """An adapter's configuration is wrong; the message says which field and why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid adapter configuration: " + "; ".join(problems))
