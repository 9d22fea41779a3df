"""Sliding-window rate limits, for Teams' limits on what a bot may send.

Teams allows a bot about 7 messages a second per conversation (8 per 2 s, 60 per 30 s) and 50 requests a second
per tenant; going past them earns 429s. Pacing ourselves is cheaper than being throttled.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence

PER_CONVERSATION = ((7, 1.0), (8, 2.0), (60, 30.0))
PER_TENANT = ((50, 1.0),)


class SlidingWindowLimiter:
    """At most `limit` events per `period` seconds for each key, for every (limit, period) rule."""

    def __init__(self, rules: Sequence[tuple[int, float]], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rules = tuple(rules)
        self._clock = clock
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._longest = max(period for _limit, period in self.rules)

    def wait_time(self, key: str) -> float:
        """Seconds until an event for `key` fits every rule (0 when it fits now)."""
        now = self._clock()
        events = self._events[key]
        while events and events[0] <= now - self._longest:
            events.popleft()
        wait = 0.0
        for limit, period in self.rules:
            recent = [t for t in events if t > now - period]
            if len(recent) >= limit:
                wait = max(wait, recent[-limit] + period - now)
        return wait

    def record(self, key: str) -> None:
        self._events[key].append(self._clock())

    async def acquire(self, key: str) -> None:
        """Wait until an event for `key` fits, then count it."""
        # Pacing, not waiting for an event: the wait is exactly the time until the window has room.
        while (wait := self.wait_time(key)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)
        self.record(key)
