from __future__ import annotations

import pytest

from bot.ratelimit import PER_CONVERSATION, SlidingWindowLimiter


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_seven_a_second_then_the_eighth_waits_for_the_window() -> None:
    clock = Ticker()
    limiter = SlidingWindowLimiter(PER_CONVERSATION, clock=clock)
    for _ in range(7):
        assert limiter.wait_time("c") == 0
        limiter.record("c")
    assert limiter.wait_time("c") == pytest.approx(1.0)
    assert limiter.wait_time("other") == 0
    clock.now += 1.0
    assert limiter.wait_time("c") == 0
    limiter.record("c")  # the 8th within 2 s
    clock.now += 0.5
    assert limiter.wait_time("c") == pytest.approx(0.5)  # 8 per 2 s: wait for the first to age out


def test_sixty_per_thirty_seconds_holds_even_at_a_slow_pace() -> None:
    clock = Ticker()
    limiter = SlidingWindowLimiter(PER_CONVERSATION, clock=clock)
    for _ in range(60):
        while (wait := limiter.wait_time("c")) > 0:
            clock.now += wait
        limiter.record("c")
    started = clock.now
    assert limiter.wait_time("c") > 0
    while (wait := limiter.wait_time("c")) > 0:
        clock.now += wait
    assert clock.now - started <= 30.0
