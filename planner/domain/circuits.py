"""A circuit breaker, as rules: when a circuit opens, when it lets a probe through, what a probe's outcome does.

Closed: calls go through; consecutive failures to reach the agent are counted, and the circuit opens at the
threshold. Open: calls are refused until the cool-down has passed. Half-open: one probe is let through under a lease
(so a prober that dies does not wedge the circuit); its success closes the circuit, its failure opens it again.
Every transition is a pure function of a `Circuit`: `planner/services/breaker.py` stores and applies them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from planner.domain.errors import Expected, Field, InvalidValue


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, kw_only=True)
class BreakerSettings:
    """When a circuit opens and how long it stays open."""

    failure_threshold: int = 5
    """Consecutive failures that open the circuit."""
    cool_down: timedelta = timedelta(minutes=5)
    """How long an open circuit refuses calls before it lets one probe through."""
    probe_lease: timedelta = timedelta(minutes=5)
    """How long a probe may take before another one is allowed (its prober is presumed dead)."""

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise InvalidValue(Field.FAILURE_THRESHOLD, self.failure_threshold, Expected.WHOLE_NUMBER_AT_LEAST, low=1)
        if self.cool_down <= timedelta(0):
            raise InvalidValue(Field.COOL_DOWN, self.cool_down, Expected.POSITIVE_DURATION)
        if self.probe_lease <= timedelta(0):
            raise InvalidValue(Field.PROBE_LEASE, self.probe_lease, Expected.POSITIVE_DURATION)


@dataclass(frozen=True, kw_only=True)
class Circuit:
    """The breaker of one adapter; a circuit that never failed is closed."""

    adapter: str
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at: datetime | None = None
    probe_until: datetime | None = None
    last_error: str | None = None

    @property
    def clean(self) -> bool:
        """Closed with nothing to forget: a success leaves it as it is."""
        return self == Circuit(adapter=self.adapter)

    def retry_at(self, settings: BreakerSettings) -> datetime | None:
        """When a call may next go through (None: now)."""
        if self.state is CircuitState.OPEN and self.opened_at is not None:
            return self.opened_at + settings.cool_down
        if self.state is CircuitState.HALF_OPEN:
            return self.probe_until
        return None

    def allows(self, at: datetime, settings: BreakerSettings) -> bool:
        """Whether a call at `at` would be let through (as a normal call or as the probe); changes nothing."""
        retry_at = self.retry_at(settings)
        return retry_at is None or retry_at <= at

    def awaits_health_check(self, at: datetime, settings: BreakerSettings) -> bool:
        """Not closed, and past its cool-down at `at`: a health check of the agent decides whether calls go again."""
        return self.state is not CircuitState.CLOSED and self.allows(at, settings)

    def permit(self, at: datetime, settings: BreakerSettings) -> tuple[Circuit, Permit]:
        """The circuit after asking to call at `at`, and the answer."""
        if self.state is CircuitState.CLOSED:
            return self, Permit(allowed=True, circuit=self)
        if not self.allows(at, settings):
            return self, Permit(allowed=False, retry_at=self.retry_at(settings), circuit=self)
        probing = replace(self, state=CircuitState.HALF_OPEN, probe_until=at + settings.probe_lease)
        return probing, Permit(allowed=True, probe=True, circuit=probing)

    def after_failure(self, at: datetime, settings: BreakerSettings, error: str | None) -> Circuit:
        failures = self.failures + 1
        if self.state is CircuitState.HALF_OPEN or (
            self.state is CircuitState.CLOSED and failures >= settings.failure_threshold
        ):
            return replace(
                self, state=CircuitState.OPEN, failures=failures, opened_at=at, probe_until=None, last_error=error
            )
        # Open already (a call let through before it opened failed late): the cool-down runs from the opening.
        return replace(self, failures=failures, last_error=error)

    def after_unused_probe(self) -> Circuit:
        """The probe was granted but never made (a policy stopped the call): let another caller probe."""
        if self.state is CircuitState.HALF_OPEN:
            return replace(self, probe_until=None)
        return self


@dataclass(frozen=True, kw_only=True)
class Permit:
    """Whether a call may go through now; a probe's outcome decides the circuit."""

    allowed: bool
    probe: bool = False
    retry_at: datetime | None = None
    circuit: Circuit
