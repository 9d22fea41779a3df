from __future__ import annotations

import asyncio
import math

import pytest

from bot.ratelimit import PER_CONVERSATION, PER_TENANT, SlidingWindowLimiter, paced


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


def test_a_send_counts_from_its_start_until_its_answer_comes_back() -> None:
    clock = Ticker()
    limiter = SlidingWindowLimiter(PER_TENANT, clock=clock)
    for _ in range(50):
        limiter.begin("tenant")
    assert limiter.wait_time("tenant") == math.inf  # full, and no telling yet when Teams saw them
    clock.now += 0.3  # the answers come back 0.3 s later
    for _ in range(50):
        limiter.end("tenant")
    clock.now += 0.9
    # A second after the answers, not after the sends began: the requests may have arrived as late as that.
    assert limiter.wait_time("tenant") == pytest.approx(0.1)
    clock.now += 0.1
    assert limiter.wait_time("tenant") == 0


async def test_paced_waits_for_room_in_every_limit_before_taking_a_slot_in_any() -> None:
    clock = Ticker()
    tenants = SlidingWindowLimiter(((1, 1.0),), clock=clock)
    conversations = SlidingWindowLimiter(((1, 1.0),), clock=clock)
    tenants.begin("tenant")  # another conversation's send, still in flight
    entered = asyncio.Event()

    async def send() -> None:
        async with paced((tenants, "tenant"), (conversations, "chat")):
            entered.set()

    sending = asyncio.create_task(send())
    await asyncio.sleep(0)  # let it reach its wait
    assert conversations.wait_time("chat") == 0  # waiting for the tenant took nothing from the conversation
    tenants.end("tenant")
    clock.now += 1.0
    await asyncio.wait_for(entered.wait(), timeout=5)
    await sending
    assert conversations.wait_time("chat") == pytest.approx(1.0)
    assert tenants.wait_time("tenant") == pytest.approx(1.0)
