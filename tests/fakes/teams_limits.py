"""A Bot Connector on loopback that throttles like Teams: 429 past Teams' rate limits, and counts duplicates.

Teams allows a bot 7 messages a second per conversation (8 per 2 s, 60 per 30 s) and 50 requests a second per
tenant. This fake counts each request when it arrives, as the service would, and answers 429 with Retry-After to
one that would go past a limit; accepted messages are tallied by the outbox id the sender tags them with, so a
message delivered twice shows. The rules are written out here, not imported from `bot.ratelimit`: this is the
referee of that code, so a mistake there must not be copied here.

It can also hold sends open without answering (`hold`), to stand for requests in flight when a sender dies: a
held message counts as delivered, as it would be if Teams had taken it and only the answer was lost.

Run alone (`python -m tests.fakes.teams_limits`) it prints `{"url": ...}`, serves `GET /stats`, and stops when
its standard input closes or its lifetime runs out, so it never outlives whoever started it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.sender import OUTBOX_ID

TEAMS_PER_CONVERSATION = ((7, 1.0), (8, 2.0), (60, 30.0))
TEAMS_PER_TENANT = ((50, 1.0),)
LIFETIME_SECONDS = 900.0


class Windows:
    """Arrival times per key, and whether one more now would go past any (limit, period) rule."""

    def __init__(self, rules: Sequence[tuple[int, float]]) -> None:
        self.rules = tuple(rules)
        self._arrivals: dict[str, deque[float]] = defaultdict(deque)
        self._longest = max((period for _limit, period in self.rules), default=0.0)

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until one more arrival for `key` is allowed, or None if it is allowed now."""
        arrivals = self._arrivals[key]
        while arrivals and arrivals[0] <= now - self._longest:
            arrivals.popleft()
        wait = None
        for limit, period in self.rules:
            recent = [t for t in arrivals if t > now - period]
            if len(recent) >= limit:
                wait = max(wait or 0.0, recent[-limit] + period - now)
        return wait

    def count(self, key: str, now: float) -> None:
        self._arrivals[key].append(now)


class TeamsLimitsConnector:
    """A fake Bot Connector with Teams' throttling. Pass empty rules to switch a limit off."""

    def __init__(
        self,
        *,
        per_conversation: Sequence[tuple[int, float]] = TEAMS_PER_CONVERSATION,
        per_tenant: Sequence[tuple[int, float]] = TEAMS_PER_TENANT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conversations = Windows(per_conversation)
        self._tenants = Windows(per_tenant)
        self._clock = clock
        self.deliveries: Counter[int] = Counter()
        """Accepted messages per outbox id."""
        self.arrivals: list[tuple[str, int | None]] = []
        """(conversation, outbox id) of every accepted message, in the order they arrived."""
        self.untagged = 0
        self.throttled = 0
        self.max_held = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self._accept_before_holding: int | None = None
        self._gate = asyncio.Event()
        self._gate.set()
        self._held = 0
        self._changed = asyncio.Condition()
        self.server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/"))

    @property
    def accepted(self) -> int:
        return sum(self.deliveries.values()) + self.untagged

    @property
    def duplicates(self) -> int:
        """Messages accepted more than once: each extra delivery of an outbox id counts one."""
        return sum(n - 1 for n in self.deliveries.values() if n > 1)

    @property
    def held(self) -> int:
        """Sends waiting for an answer right now."""
        return self._held

    def stats(self) -> dict[str, Any]:
        span = (self.last_at - self.first_at) if self.first_at is not None and self.last_at is not None else 0.0
        return {
            "accepted": self.accepted,
            "distinct": len(self.deliveries),
            "duplicates": self.duplicates,
            "untagged": self.untagged,
            "throttled": self.throttled,
            "held": self.held,
            "max_held": self.max_held,
            "first_to_last_seconds": span,
            "accepted_per_second": (self.accepted - 1) / span if span > 0 else None,
        }

    async def start(self, host: str = "127.0.0.1") -> None:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._send)
        app.router.add_get("/stats", self._stats)
        self.server = TestServer(app, host=host)
        await self.server.start_server()

    async def close(self) -> None:
        self.release()
        if self.server is not None:
            await self.server.close()

    def hold(self, *, after: int = 0) -> None:
        """Accept `after` more sends, then keep every later one waiting for its answer until `release`."""
        self._accept_before_holding = after

    def release(self) -> None:
        """Answer the held sends, and hold no more."""
        self._accept_before_holding = None
        self._gate.set()

    async def wait_until(self, condition: Callable[[TeamsLimitsConnector], bool], within: float = 30.0) -> None:
        """Wait (bounded) until `condition(self)` holds; it is checked whenever a send arrives or is held."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: condition(self))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _send(self, request: web.Request) -> web.Response:
        now = self._clock()
        body = await request.json()
        conversation = request.match_info["conversation"]
        conversation_data = body.get("conversation") or {}
        channel_data = body.get("channelData") or {}
        tenant = conversation_data.get("tenantId") or (channel_data.get("tenant") or {}).get("id") or "tenant"
        waits = (self._conversations.retry_after(conversation, now), self._tenants.retry_after(tenant, now))
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            self.throttled += 1
            await self._notify()
            return web.json_response(
                {"error": {"code": "429", "message": "Too many requests"}},
                status=429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        self._conversations.count(conversation, now)
        self._tenants.count(tenant, now)
        outbox_id = channel_data.get(OUTBOX_ID)
        if outbox_id is None:
            self.untagged += 1
        else:
            self.deliveries[int(outbox_id)] += 1
        self.arrivals.append((conversation, outbox_id))
        self.first_at = now if self.first_at is None else self.first_at
        self.last_at = now
        if self._accept_before_holding is not None:
            if self._accept_before_holding > 0:
                self._accept_before_holding -= 1
            else:
                self._gate.clear()
        if not self._gate.is_set():
            self._held += 1
            self.max_held = max(self.max_held, self._held)
            await self._notify()
            try:
                await self._gate.wait()
            finally:
                self._held -= 1
        else:
            await self._notify()
        return web.json_response({"id": f"sent-{outbox_id}-{self.accepted}"})

    async def _stats(self, _request: web.Request) -> web.Response:
        return web.json_response(self.stats())


async def serve_until_stdin_closes(lifetime: float) -> None:
    connector = TeamsLimitsConnector()
    await connector.start()
    print(json.dumps({"url": connector.url}), flush=True)
    stdin = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    try:
        async with asyncio.timeout(lifetime):
            await stdin.read()
    except TimeoutError:
        pass
    finally:
        await connector.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lifetime", type=float, default=LIFETIME_SECONDS, help="stop after this many seconds")
    asyncio.run(serve_until_stdin_closes(parser.parse_args().lifetime))
