"""An in-memory vendor agent with scripted behaviour, and the factory that registers it: fakes, not mocks.

Each call to `delegate` takes the next step of the agent's script (an empty script succeeds):
`succeed`, `fail` (the agent answers no), `unavailable` (the call never left: connection refused), `broken` (the
connection ended mid-call: it may have acted) and `timeout` (raised as a real adapter would),
`hang` (never answers: the runner's own timeout must cut it), `block` (waits until the test releases it),
`ask` (asks the person for a code, giving them `ask_seconds`, and keeps the answer in `answers`) and
`bug` (an adapter breaking its contract with a stray exception).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from planner.domain.delegations import DelegationStatus
from planner.ports import (
    Agent,
    AgentConfigInvalid,
    AgentHealth,
    AgentNotReached,
    AgentTimeout,
    AgentUnavailable,
    Capability,
    DelegationRequest,
    DelegationResult,
    Evidence,
    HumanChannel,
    UnknownCapability,
)
from tests.conftest import FakeClock


class ScriptedAgent(Agent):
    kind = "fake"

    def __init__(self, name: str, clock: FakeClock) -> None:
        self.name = name
        self._clock = clock
        self.script: list[str] = []
        self.calls: list[DelegationRequest] = []
        self.output = "Draft ready: subject 'Spring launch', 180 words."
        self.data: dict[str, Any] | None = {"subject": "Spring launch"}
        self.evidence: tuple[Evidence, ...] = ()
        self.takes = timedelta(0)
        """How long each call takes on the test's clock (the clock must have `advance`)."""
        self.healthy = True
        self.health_detail = "connection refused"
        """What its health check says when it is not healthy."""
        self.known = ["draft_email", "create_segment"]
        """The capabilities it offers."""
        self.closed = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.ask_seconds = 300.0
        self.answers: list[str] = []

    async def capabilities(self) -> list[Capability]:
        return [Capability(name=name) for name in self.known]

    async def delegate(self, request: DelegationRequest, *, human: HumanChannel | None = None) -> DelegationResult:
        self.calls.append(request)
        step = self.script.pop(0) if self.script else "succeed"
        known = [c.name for c in await self.capabilities()]
        if request.capability not in known:
            raise UnknownCapability(self.name, request.capability, known)
        started = self._clock()
        if self.takes:
            self._clock.advance(seconds=self.takes.total_seconds())
        if step == "unavailable":
            raise AgentNotReached(self.name, "connection refused")
        if step == "broken":
            raise AgentUnavailable(self.name, "the connection ended during the call")
        if step == "timeout":
            raise AgentTimeout(self.name, request.timeout_seconds)
        if step == "hang":
            await asyncio.Event().wait()
        if step == "block":
            self.entered.set()
            await self.release.wait()
        if step == "ask":
            if human is None:
                raise AssertionError("nobody to ask")
            self.answers.append(await human.ask("Your sign-in code?", timeout_seconds=self.ask_seconds))
        if step == "bug":
            raise KeyError("session")
        if step == "fail":
            return DelegationResult(
                status=DelegationStatus.FAILED,
                error="the segment criteria match nobody",
                started_at=started,
                finished_at=self._clock(),
            )
        return DelegationResult(
            status=DelegationStatus.SUCCEEDED,
            output=self.output,
            data=self.data,
            evidence=self.evidence,
            started_at=started,
            finished_at=self._clock(),
        )

    async def health(self) -> AgentHealth:
        return AgentHealth(ok=self.healthy, detail="" if self.healthy else self.health_detail)

    async def close(self) -> None:
        self.closed += 1


class FakeAgentFactory:
    """The `fake` kind: a URL, an optional token (a declared secret) and an optional client_secret (undeclared)."""

    secret_fields = frozenset({"token"})
    known = ("client_secret", "timeout", "token", "url")

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self.agents: dict[str, ScriptedAgent] = {}
        self.built: list[dict[str, Any]] = []

    def agent(self, name: str) -> ScriptedAgent:
        if name not in self.agents:
            self.agents[name] = ScriptedAgent(name, self._clock)
        return self.agents[name]

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        problems = [f"{k}: unknown setting; known: {', '.join(self.known)}" for k in config if k not in self.known]
        url = config.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.append("url: required, an http(s) address such as https://agent.example/mcp")
        token = config.get("token")
        if token is not None and (not isinstance(token, str) or len(token) < 8):
            # Careless on purpose: a kind that repeats the bad value, to check the registry masks it.
            problems.append(f"token: {token!r} is too short, at least 8 characters")
        if problems:
            raise AgentConfigInvalid(problems)
        return dict(config)

    def build(self, name: str, config: Mapping[str, Any]) -> Agent:
        self.built.append(dict(config))
        return self.agent(name)
