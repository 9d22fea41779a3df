"""Sliding-window rate limits, for Teams' limits on what a bot may send.

Teams allows a bot about 7 messages a second per conversation (8 per 2 s, 60 per 30 s) and 50 requests a second
per tenant; going past them earns 429s. Pacing ourselves is cheaper than being throttled.

Teams counts requests as they arrive, and we cannot see when that is: only that it is after we began sending
and before the answer came back. So a send occupies its window from the moment it begins until `period` after
its answer; measured that way, however long the network takes, Teams never sees more than `limit` of our
requests within `period`. The margin this costs is one round trip per window, not a guessed constant.
"""

from __future__ import annotations

import asyncio
import math
import time
from bisect import bisect_right
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from operator import itemgetter

PER_CONVERSATION = ((7, 1.0), (8, 2.0), (60, 30.0))
PER_TENANT = ((50, 1.0),)
SWEEP_EVERY = 1_000


class SlidingWindowLimiter:
    """At most `limit` events per `period` seconds for each key, for every (limit, period) rule.

    An event is either instant (`record`) or lasts from `begin` to `end`, counting as "now" all the while.
    """

    def __init__(self, rules: Sequence[tuple[int, float]], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rules = tuple(rules)
        self._clock = clock
        self._ended: dict[str, list[float]] = defaultdict(list)
        self._in_flight: dict[str, int] = defaultdict(int)
        self._longest = max(period for _limit, period in self.rules)
        self._end_waiters: dict[str, list[asyncio.Future[None]]] = defaultdict(list)
        self._ends_since_sweep = 0

    def wait_time(self, key: str) -> float:
        """Seconds until an event for `key` fits every rule: 0 when it fits now, infinity while that depends
        on when an event in flight ends."""
        now = self._clock()
        horizon = now - self._longest
        ended = sorted(t for t in self._ended.get(key, ()) if t > horizon)
        if ended:
            self._ended[key] = ended
        else:
            self._ended.pop(key, None)
        in_flight = self._in_flight.get(key, 0)
        wait = 0.0
        for limit, period in self.rules:
            recent = ended[bisect_right(ended, now - period) :]
            over = len(recent) + in_flight - limit
            if over < 0:
                continue
            # The oldest `over + 1` events in the window must leave it; events in flight leave it last.
            if over >= len(recent):
                return math.inf
            wait = max(wait, recent[over] + period - now)
        return wait

    def record(self, key: str) -> None:
        """Count an instant event for `key`, now."""
        self._ended[key].append(self._clock())

    def begin(self, key: str) -> None:
        """Count an event for `key` that has begun and not ended yet."""
        self._in_flight[key] += 1

    def end(self, key: str) -> None:
        """The event `begin` counted has ended, now."""
        self._in_flight[key] -= 1
        if not self._in_flight[key]:
            del self._in_flight[key]
        self._ended[key].append(self._clock())
        self._ends_since_sweep += 1
        if self._ends_since_sweep >= SWEEP_EVERY:
            self._sweep()
        for waiter in self._end_waiters.pop(key, ()):
            if not waiter.done():
                waiter.set_result(None)

    def _sweep(self) -> None:
        """Forget keys with nothing in flight and nothing in any window (one message to each of 10,000 chats)."""
        self._ends_since_sweep = 0
        horizon = self._clock() - self._longest
        for key in [k for k, times in self._ended.items() if not times or max(times) <= horizon]:
            del self._ended[key]

    async def ended(self, key: str) -> None:
        """Return when an event in flight for `key` ends."""
        waiter = asyncio.get_running_loop().create_future()
        self._end_waiters[key].append(waiter)
        await waiter

    async def acquire(self, key: str) -> None:
        """Wait until an event for `key` fits, then count it (as instant)."""
        async with paced((self, key)):
            pass


@asynccontextmanager
async def paced(*slots: tuple[SlidingWindowLimiter, str]) -> AsyncIterator[None]:
    """Wait until an event fits every (limiter, key) at once, then count it in all of them until the block ends.

    All at once, not one after another: a slot taken in one limiter while waiting for another would be wasted.
    """
    while True:
        wait, limiter, key = max(((limiter.wait_time(key), limiter, key) for limiter, key in slots), key=itemgetter(0))
        if wait <= 0:
            break
        # Pacing, not waiting for an event: the wait is exactly the time until the window has room.
        if math.isinf(wait):
            await limiter.ended(key)
        else:
            await asyncio.sleep(wait)
    for limiter, key in slots:
        limiter.begin(key)
    try:
        yield
    finally:
        for limiter, key in slots:
            limiter.end(key)
