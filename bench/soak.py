"""Scale-out soak: three `cos serve` replicas on PostgreSQL behind a round-robin proxy, one killed every minute.

Everything runs on loopback. The bench makes a PostgreSQL database of its own (dropped afterwards), migrates it,
and starts three real replicas (`cos serve --host 127.0.0.1 --port P`, each a process group of its own, ticking
every `--tick-seconds`), a small round-robin HTTP proxy in front of them (a connection refused goes to the next
replica, as a load balancer's health check would; a replica that dies mid-request gets a 502), a fake Bot
Connector the replicas reply and send their nudges to, and the project's vendor agent (tests/adapters/
vendor_agent.py) as a streamable-HTTP MCP server the bot delegates to.

The load, for `--duration` seconds, as Teams would post it through the proxy (a 5xx or a dropped connection is
retried with the same activity id, as Teams retries):
- members' chat turns: `add task … due <yesterday|today|tomorrow|next week> for me`, `done T12`, `plan P2`,
  `my tasks`, `delegate T12 to vendor draft_email {…}`;
- card actions on the task cards the bot sent back: Done, Snooze 24 h, Blocked (Universal Action invokes);
- the replicas' own ticks: deadlines due yesterday, today and tomorrow fire nudges and the sender delivers them;
- approvals: the bench files approval requests (as a member asking for a held `add_task`) straight into the
  database; the leader approves or rejects most of them in Teams (`approve A3`), a third are left to expire
  after `--expiry-seconds`.
Every `--kill-every` seconds one replica (in turn) gets SIGKILL and is started again at once.

Afterwards (once the outbox is drained, bounded by the outbox lease, two minutes, plus a margin) it checks
the database and the connector and prints:
- plan edits lost: every edit the bot acknowledged (its reply arrived: `Task T12 added`, `T12 done`, a card
  update, `T12 delegated`, an approved `add_task`) must be in the database (goal 0);
- duplicate nudges: outbox messages (channelData.cosOutboxId) delivered more than once, split into those whose
  first copy arrived within a few seconds before a kill (a send in flight when its replica died: sent to Teams,
  not yet recorded) and the rest (goal 0);
- approvals stuck: approved but never resumed, resumed without their task, or still pending past their expiry
  although ticks ran (goal 0);
- the decision log: the tenant's hash chain verified (planner/services/decisions.py `verify`);
- replica 5xx answers (goal 0), turns never answered despite the retries, turns per second and latency (p50,
  p95, from the first post to the answer, retries included).

Usage: python bench/soak.py [--duration SECONDS] [--kill-every SECONDS] [--members N] [--tick-seconds N]
                            [--expiry-seconds N] [--database-url URL] [--keep-logs DIR]
`--duration 30` is a quick smoke (one kill). --database-url names the PostgreSQL server to make the scratch
database on (default postgresql+asyncpg://postgres@127.0.0.1:5432/test). The last line printed is one JSON
object with the figures; the exit status is 1 when a goal was missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import random
import re
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.delegation import vendor_agent
from bench.scratch import scratch_database
from bot.sender import LEASE, OUTBOX_ID
from planner.domain.approvals import ApprovalStatus
from planner.domain.decisions import DecisionKeys
from planner.domain.governance import Action, ActionKind, GateCategory
from planner.domain.messages import DEAD, PENDING, SENDING
from planner.services.approvals import Approvals
from planner.services.decisions import DecisionLog, verify
from planner.store import Store, create_engine
from planner.store.migrate import upgrade
from planner.store.schema import approval_requests, delegations, outbox, tasks
from planner.store.vault import Vault
from tests.fakes.connector import FakeConnector, Sent

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TENANT = "soak-tenant"
LEADER = "aad-soak-lead"
ADAPTER = "vendor"
REPLICAS = 3
PROXY_LOST = "X-Soak-Replica-Lost"
"""Header of the proxy's own 502: the replica died with the request (not the bot's answer)."""
ATTEMPTS = 4
RETRY_PAUSE = 0.5
REQUEST_TIMEOUT = 30.0
REPLY_WAIT = 3.0
"""How long a turn answered 200 waits for its reply at the connector (it is normally there already)."""
STARTUP_SECONDS = 60.0
START_ATTEMPTS = 3
STOP_SECONDS = 15.0
IN_FLIGHT_WINDOW = 5.0
"""A duplicate whose first copy arrived this close before a kill was a send in flight at the kill."""
DRAIN_MARGIN = 20.0
EXPIRY_BOUND = 60.0
"""After the load, how long the ticks get to expire every request whose time has run out."""
DAYTIME_ZONES = ("Europe/London", "America/New_York", "America/Los_Angeles", "Asia/Tokyo", "Asia/Kolkata")
MS = 1000
PR_SET_PDEATHSIG = 1


def quantile(values: list[float], percent: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def daytime_zone(now: datetime) -> str:
    """A time zone where it is working hours now, so nudges are not held for quiet hours."""
    for zone in DAYTIME_ZONES:
        if 9 <= now.astimezone(ZoneInfo(zone)).hour < 18:
            return zone
    return DAYTIME_ZONES[0]


def die_with_parent() -> None:
    """In a replica, before it runs: on Linux, SIGKILL it if the bench dies without cleaning up (killed itself)."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- the fake Teams service ----------------------------------------------------------------------------------


class Connector(FakeConnector):
    """The fake Bot Connector, also noting when each message arrived and which activity it answers."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived_at: list[float] = []
        self.replies: dict[str, list[dict[str, Any]]] = {}

    async def _record(self, item: Sent) -> None:
        async with self._arrived:
            self.sent.append(item)
            self.arrived_at.append(time.monotonic())
            if reply_to := item.body.get("replyToId"):
                self.replies.setdefault(str(reply_to), []).append(item.body)
            self._arrived.notify_all()

    async def replies_to(self, activity_id: str, within: float) -> list[dict[str, Any]]:
        """The bot's replies to one activity, once at least one has come (empty after `within` seconds)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within), self._arrived:
                await self._arrived.wait_for(lambda: activity_id in self.replies)
        return self.replies.get(activity_id, [])

    def outbox_deliveries(self) -> dict[int, list[float]]:
        """Outbox id → when each copy arrived."""
        found: dict[int, list[float]] = {}
        for sent, at in zip(self.sent, self.arrived_at, strict=True):
            channel_data = sent.body.get("channelData") or {}
            if isinstance(channel_data, dict) and OUTBOX_ID in channel_data:
                found.setdefault(int(channel_data[OUTBOX_ID]), []).append(at)
        return found


# ---- the replicas and the proxy ------------------------------------------------------------------------------


class Replica:
    """One `cos serve` process (a process group of its own), its port and its log."""

    def __init__(self, number: int, env: dict[str, str], logs: Path) -> None:
        self.number = number
        self.port = free_port()
        self.env = env
        self.log_path = logs / f"replica-{number}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, session: aiohttp.ClientSession) -> None:
        """Start it and wait until it answers /healthz; on another port if it exited at once (the machine is shared:
        the free port it was given may have been taken meanwhile)."""
        for attempt in range(START_ATTEMPTS):
            if await self._start_once(session):
                return
            if attempt < START_ATTEMPTS - 1:
                self.port = free_port()
        tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(
            f"replica {self.number} exited at start, {START_ATTEMPTS} times; its log ends:\n" + "\n".join(tail)
        )

    async def _start_once(self, session: aiohttp.ClientSession) -> bool:
        """True once it answers /healthz; False if it exited first."""
        executable = Path(sys.executable).with_name("cos")
        command = [str(executable)] if executable.exists() else [sys.executable, "-m", "bot.cli"]
        with self.log_path.open("ab") as log:
            log.write(f"\n---- start {self.starts + 1} at {datetime.now(UTC).isoformat()}\n".encode())
            self.process = await asyncio.create_subprocess_exec(
                *command,
                *("serve", "--host", "127.0.0.1", "--port", str(self.port)),
                env=self.env,
                cwd=self.env["COS_SOAK_CWD"],
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self.starts += 1
        async with asyncio.timeout(STARTUP_SECONDS):
            while True:
                if self.process.returncode is not None:
                    return False
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return True
                await asyncio.sleep(0.2)

    def _signal(self, signum: int) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    async def kill(self) -> None:
        """SIGKILL, no goodbye."""
        self._signal(signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_SECONDS):
                    await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not stopped in time."""
        self._signal(signal.SIGTERM)
        if self.process is not None:
            try:
                async with asyncio.timeout(STOP_SECONDS):
                    await self.process.wait()
            except TimeoutError:
                await self.kill()


class Proxy:
    """Round robin over the replicas; a refused connection tries the next one."""

    def __init__(self, replicas: list[Replica], session: aiohttp.ClientSession) -> None:
        self.replicas = replicas
        self.session = session
        self._next = itertools.count()
        self.refused = 0
        self.lost = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization")}
        first = next(self._next)
        for offset in range(len(self.replicas)):
            replica = self.replicas[(first + offset) % len(self.replicas)]
            try:
                async with self.session.request(
                    request.method, f"{replica.url}{request.path_qs}", data=body, headers=headers
                ) as answer:
                    content = await answer.read()
                    return web.Response(
                        status=answer.status, body=content, content_type=answer.content_type or "application/json"
                    )
            except aiohttp.ClientConnectorError:
                self.refused += 1  # nobody listening: the request never reached it, another replica may take it
            except (aiohttp.ClientError, TimeoutError):
                self.lost += 1
                return web.json_response({"error": "the replica went away"}, status=502, headers={PROXY_LOST: "1"})
        self.lost += 1
        return web.json_response({"error": "no replica is up"}, status=502, headers={PROXY_LOST: "1"})


# ---- the people ----------------------------------------------------------------------------------------------


@dataclass
class Turn:
    status: int | None
    """The final HTTP status, None when every attempt failed."""
    body: bytes
    seconds: float
    replies: list[dict[str, Any]]


@dataclass
class Figures:
    latencies: list[float] = field(default_factory=list)
    turns: int = 0
    answered: int = 0
    unanswered: int = 0
    """No answer after every retry, or answered but no reply ever came (a retry the bot had already taken)."""
    server_errors: int = 0
    server_error_samples: list[str] = field(default_factory=list)
    retries: int = 0
    kinds: Counter[str] = field(default_factory=Counter)


@dataclass
class Expected:
    """What the bot acknowledged; checked against the database at the end."""

    tasks: dict[int, str] = field(default_factory=dict)
    """Task id → its title, for every `Task T12 added` reply (or approved add_task)."""
    status: dict[int, str] = field(default_factory=dict)
    """Task id → the status its last acknowledged change set."""
    snoozed: set[int] = field(default_factory=set)
    delegated: set[int] = field(default_factory=set)
    approved: dict[int, str] = field(default_factory=dict)
    """Approval id → the title of the task its resumed add_task made."""
    rejected: set[int] = field(default_factory=set)
    uncertain: dict[int, str] = field(default_factory=dict)
    """Task id → the change (a status, `snoozed`) that got no acknowledgement: it may or may not have happened."""
    unconfirmed_adds: list[str] = field(default_factory=list)
    """Titles of `add task` turns that got no acknowledgement."""


CARD_CHANGES = {"Done": "done", "Snooze 24 h": "snoozed", "Mark blocked": "blocked"}
"""A task card's buttons and the change each makes."""
TASK_ADDED = re.compile(r"Task T(\d+) added to P(\d+)")


class Teams:
    """Posts activities through the proxy the way Teams does, retrying 5xx and dropped connections."""

    def __init__(self, proxy: Proxy, connector: Connector, session: aiohttp.ClientSession, zone: str) -> None:
        self.proxy = proxy
        self.connector = connector
        self.session = session
        self.zone = zone
        self.figures = Figures()
        self._ids = itertools.count(1)

    def activity(self, user: str, **fields: Any) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "type": "message",
            "id": f"soak-{next(self._ids)}-{uuid.uuid4().hex[:8]}",
            "channelId": "msteams",
            "serviceUrl": self.connector.url,
            "from": {"id": f"29:{user}", "aadObjectId": user, "name": user.removeprefix("aad-").replace("-", " ")},
            "recipient": {"id": "28:bot", "name": "Chief of Staff"},
            "conversation": {"id": f"a:personal-{user}", "conversationType": "personal", "tenantId": TENANT},
            "channelData": {"tenant": {"id": TENANT}},
            "localTimezone": self.zone,
        }
        activity.update(fields)
        return activity

    async def post(self, kind: str, activity: dict[str, Any], *, expect_reply: bool = True) -> Turn:
        figures = self.figures
        figures.turns += 1
        figures.kinds[kind] += 1
        began = time.perf_counter()
        status: int | None = None
        body = b""
        for attempt in range(ATTEMPTS):
            if attempt:
                figures.retries += 1
                await asyncio.sleep(RETRY_PAUSE)
            try:
                async with self.session.post(f"{self.proxy.url}/api/messages", json=activity) as response:
                    status, body = response.status, await response.read()
                    lost = PROXY_LOST in response.headers
            except (aiohttp.ClientError, TimeoutError):
                status, lost = None, True
            if status is not None and status < 500:
                break
            if status is not None and not lost:
                figures.server_errors += 1
                if len(figures.server_error_samples) < 5:
                    figures.server_error_samples.append(f"{kind}: {status} {body[:200]!r}")
        seconds = time.perf_counter() - began
        replies: list[dict[str, Any]] = []
        if status is not None and status < 500:
            figures.latencies.append(seconds)
            if expect_reply:
                replies = await self.connector.replies_to(activity["id"], REPLY_WAIT)
        answered = status is not None and status < 500 and (replies or not expect_reply)
        if answered:
            figures.answered += 1
        else:
            figures.unanswered += 1
        return Turn(status if status is not None and status < 500 else None, body, seconds, replies)

    async def say(self, kind: str, user: str, text: str) -> Turn:
        return await self.post(kind, self.activity(user, text=text))


def reply_text(turn: Turn) -> str:
    return " ".join(str(body.get("text") or "") for body in turn.replies)


def reply_cards(turn: Turn) -> list[dict[str, Any]]:
    return [
        attachment["content"]
        for body in turn.replies
        for attachment in body.get("attachments") or []
        if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive"
    ]


def card_actions(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A card's Action.Execute buttons by title, including those inside Action.ShowCard forms."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute" and isinstance(node.get("title"), str):
                found[node["title"]] = node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


@dataclass
class OpenTask:
    id: int
    actions: dict[str, dict[str, Any]]


class Member:
    """A team member: adds tasks, finishes or snoozes them by chat or by card, delegates some, reads the plan."""

    def __init__(self, user: str, teams: Teams, expected: Expected, plan: int, today: date, seed: int) -> None:
        self.user = user
        self.teams = teams
        self.expected = expected
        self.plan = plan
        self.today = today
        self.random = random.Random(seed)
        self.open: list[OpenTask] = []
        self.added = 0

    async def run(self, until: float) -> None:
        choices = ["add", "add", "add", "done", "card", "card", "delegate", "plan", "mine"]
        while time.monotonic() < until:
            choice = self.random.choice(choices)
            if choice in ("done", "card", "delegate") and not self.open:
                choice = "add"
            await getattr(self, f"_{choice}")()

    async def _add(self) -> None:
        self.added += 1
        title = f"{self.user} task {self.added} {uuid.uuid4().hex[:6]}"
        due = self.today + timedelta(days=self.random.choice((-1, 0, 1, 1, 7)))
        turn = await self.teams.say("add task", self.user, f"add task {title} to P{self.plan} due {due} for me")
        found = TASK_ADDED.search(reply_text(turn))
        if found is None:
            self.expected.unconfirmed_adds.append(title)
            return
        task_id = int(found.group(1))
        self.expected.tasks[task_id] = title
        self.expected.status[task_id] = "todo"
        actions = next((card_actions(card) for card in reply_cards(turn)), {})
        self.open.append(OpenTask(task_id, actions))

    def _take(self) -> OpenTask:
        return self.open.pop(self.random.randrange(len(self.open)))

    async def _done(self) -> None:
        task = self._take()
        turn = await self.teams.say("done", self.user, f"done T{task.id}")
        if f"T{task.id} done" in reply_text(turn):
            self.expected.status[task.id] = "done"
        else:
            self.expected.uncertain[task.id] = "done"

    async def _card(self) -> None:
        task = self._take()
        button = self.random.choice(list(CARD_CHANGES))
        action = task.actions.get(button)
        if action is None:
            raise RuntimeError(f"the card of T{task.id} has no `{button}` button: {sorted(task.actions)}")
        data = dict(action["data"])
        if button == "Mark blocked":
            data["reason"] = "waiting on legal"
        invoke = self.teams.activity(
            self.user,
            type="invoke",
            name="adaptiveCard/action",
            value={"action": {"type": "Action.Execute", "verb": action["verb"], "data": data}, "trigger": "manual"},
        )
        turn = await self.teams.post(f"card {CARD_CHANGES[button]}", invoke, expect_reply=False)
        answer = (json.loads(turn.body) if turn.status == 200 and turn.body else None) or {}
        card = json.dumps(answer.get("value") or {}) if answer.get("statusCode") == 200 else ""
        if not card or "changed since" in card:
            # A retry the bot had already taken answers with no card.
            self.expected.uncertain[task.id] = CARD_CHANGES[button]
        elif button == "Done":
            self.expected.status[task.id] = "done"
        elif button == "Mark blocked":
            self.expected.status[task.id] = "blocked"
        else:
            self.expected.snoozed.add(task.id)

    async def _delegate(self) -> None:
        task = self._take()
        payload = json.dumps({"audience": "CFOs", "topic": f"soak task {task.id}"})
        turn = await self.teams.say("delegate", self.user, f"delegate T{task.id} to {ADAPTER} draft_email {payload}")
        if f"T{task.id} delegated to" in reply_text(turn):
            self.expected.status[task.id] = "delegated"
            self.expected.delegated.add(task.id)
        else:
            self.expected.uncertain[task.id] = "delegated"

    async def _plan(self) -> None:
        await self.teams.say("plan", self.user, f"plan P{self.plan}")

    async def _mine(self) -> None:
        await self.teams.say("my tasks", self.user, "my tasks")


@dataclass
class Filed:
    id: int
    title: str
    expires: bool


class ApprovalLoad:
    """The bench files approval requests as a member; the leader decides most of them in Teams."""

    def __init__(self, store: Store, teams: Teams, expected: Expected, requester: str, plan: int, today: date) -> None:
        self.approvals = Approvals(store, TENANT, record=DecisionLog(store, TENANT).record)
        self.teams = teams
        self.expected = expected
        self.requester = requester
        self.plan = plan
        self.today = today
        self.waiting: list[Filed] = []
        self.filed = 0
        self.left_to_expire = 0
        self.random = random.Random(7)

    async def file(self, until: float, every: float, expiry: float) -> None:
        while time.monotonic() < until:
            self.filed += 1
            title = f"approved task {self.filed} {uuid.uuid4().hex[:6]}"
            expires = self.filed % 3 == 0
            args = {"title": title, "due": (self.today + timedelta(days=7)).isoformat(), "plan": f"P{self.plan}"}
            request = await self.approvals.request(
                Action(
                    tenant_id=TENANT,
                    kind=ActionKind.TOOL_CALL,
                    actor=self.requester,
                    name="add_task",
                    subject=f"plan:{self.plan}",
                    attributes={"operation": "add_task", "arguments": args},
                    categories=(GateCategory.STRATEGY,),
                ),
                requester=self.requester,
                reason="a task added to the plan needs the leader's yes (soak)",
                resume={"operation": "add_task", "args": args},
                expires_in=timedelta(seconds=expiry) if expires else None,
            )
            if expires:
                self.left_to_expire += 1
            else:
                self.waiting.append(Filed(request.id, title, expires))
            await asyncio.sleep(every)

    async def decide(self, until: float) -> None:
        """The leader: decides what waits (4 in 5 approved), otherwise reads the plan."""
        while time.monotonic() < until:
            if not self.waiting:
                await self.teams.say("plan", LEADER, f"plan P{self.plan}")
                await asyncio.sleep(0.5)
                continue
            filed = self.waiting.pop(0)
            approve = self.random.random() < 0.8
            verb = "approve" if approve else "reject"
            turn = await self.teams.say(verb, LEADER, f"{verb} A{filed.id}")
            said = reply_text(turn)
            if approve and (found := TASK_ADDED.search(said)):
                self.expected.approved[filed.id] = filed.title
                self.expected.tasks[int(found.group(1))] = filed.title
            elif not approve and f"A{filed.id} rejected" in said:
                self.expected.rejected.add(filed.id)


# ---- the run -------------------------------------------------------------------------------------------------


@dataclass
class Kill:
    at: float
    replica: int


async def chaos(replicas: list[Replica], session: aiohttp.ClientSession, until: float, every: float) -> list[Kill]:
    """Every `every` seconds one replica, in turn, is killed and started again."""
    kills: list[Kill] = []
    for number in itertools.count():
        moment = time.monotonic() + every
        if moment > until - 5:
            break
        await asyncio.sleep(moment - time.monotonic())
        replica = replicas[number % len(replicas)]
        await replica.kill()
        kills.append(Kill(time.monotonic(), replica.number))
        print(f"  killed replica {replica.number} at {len(kills)} (SIGKILL); starting it again", flush=True)
        await replica.start(session)
    return kills


async def say_or_fail(teams: Teams, user: str, text: str, expect: str) -> str:
    turn = await teams.say("setup", user, text)
    said = reply_text(turn) + json.dumps(reply_cards(turn))
    if expect not in said:
        raise RuntimeError(f"setup: `{text[:60]}` answered {turn.status}: {said[:300]}")
    return said


async def pending_outbox(store: Store) -> int:
    """Messages due and not yet sent (including those a killed replica still holds under its lease)."""
    async with store.engine.connect() as conn:
        return (
            await conn.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.status.in_((PENDING, SENDING)), outbox.c.not_before <= datetime.now(UTC))
            )
        ).scalar_one()


async def unfinished_delegations(store: Store) -> int:
    async with store.engine.connect() as conn:
        return (
            await conn.execute(
                select(func.count())
                .select_from(delegations)
                .where(delegations.c.status.in_(("queued", "running", "deferred")))
            )
        ).scalar_one()


async def drain(store: Store, bound: float) -> float:
    """Wait (bounded) until nothing due waits in the outbox and no delegation is unfinished; seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < bound:
        if await pending_outbox(store) == 0 and await unfinished_delegations(store) == 0:
            break
        await asyncio.sleep(1.0)
    return time.monotonic() - began


@dataclass
class EditCheck:
    lost: list[str]
    """Acknowledged edits the database does not have."""
    unconfirmed_made: int
    """Edits whose turn got no acknowledgement (a replica died with it; Teams' retry was taken as done) that
    the database has."""
    unconfirmed_dropped: int
    """Such edits the database does not have: the person's command was never carried out, and nobody said so."""


async def check_edits(store: Store, expected: Expected) -> EditCheck:
    """Acknowledged edits missing from the database; what became of the unacknowledged ones."""
    lost: list[str] = []
    async with store.engine.connect() as conn:
        rows = {
            row.id: row
            for row in await conn.execute(
                select(tasks.c.id, tasks.c.title, tasks.c.status, tasks.c.snoozed_until).where(
                    tasks.c.tenant_id == TENANT
                )
            )
        }
        delegated = {task_id for (task_id,) in await conn.execute(select(delegations.c.task_id).distinct())}
        titles = Counter(row.title for row in rows.values())
        requests = {
            row.id: row.status for row in await conn.execute(select(approval_requests.c.id, approval_requests.c.status))
        }
    for task_id, title in expected.tasks.items():
        if task_id not in rows or rows[task_id].title != title:
            lost.append(f"T{task_id} `{title}` acknowledged as added, not in the database")
    for task_id, status in expected.status.items():
        if task_id in expected.uncertain or task_id not in rows:
            continue
        if rows[task_id].status != status:
            lost.append(f"T{task_id} acknowledged as {status}, the database says {rows[task_id].status}")
    for task_id in expected.snoozed - expected.uncertain.keys():
        if task_id in rows and rows[task_id].snoozed_until is None:
            lost.append(f"T{task_id} acknowledged as snoozed, not snoozed in the database")
    for task_id in expected.delegated - delegated:
        lost.append(f"T{task_id} acknowledged as delegated, no delegation in the database")
    for approval_id, title in expected.approved.items():
        if requests.get(approval_id) != ApprovalStatus.RESUMED.value or titles[title] != 1:
            lost.append(f"A{approval_id} acknowledged as approved: {requests.get(approval_id)}, {titles[title]} tasks")
    for approval_id in expected.rejected:
        if requests.get(approval_id) != ApprovalStatus.REJECTED.value:
            lost.append(f"A{approval_id} acknowledged as rejected, the database says {requests.get(approval_id)}")
    made = sum(1 for title in expected.unconfirmed_adds if titles[title])
    for task_id, change in expected.uncertain.items():
        row = rows.get(task_id)
        if row is not None and (row.snoozed_until is not None if change == "snoozed" else row.status == change):
            made += 1
    unconfirmed = len(expected.unconfirmed_adds) + len(expected.uncertain)
    return EditCheck(lost=lost, unconfirmed_made=made, unconfirmed_dropped=unconfirmed - made)


async def pending_past(store: Store, moment: datetime) -> int:
    """Approval requests still pending whose time ran out by `moment`."""
    async with store.engine.connect() as conn:
        return (
            await conn.execute(
                select(func.count())
                .select_from(approval_requests)
                .where(
                    approval_requests.c.status == ApprovalStatus.PENDING.value, approval_requests.c.expires_at <= moment
                )
            )
        ).scalar_one()


async def wait_for_expiries(store: Store, bound: float) -> int:
    """Wait (bounded) until the ticks have expired every request whose time ran out by now; how many they left."""
    cutoff = datetime.now(UTC)
    began = time.monotonic()
    while True:
        left = await pending_past(store, cutoff)
        if not left or time.monotonic() - began >= bound:
            return left
        await asyncio.sleep(0.5)


async def check_approvals(store: Store, pending_past_expiry: int) -> dict[str, Any]:
    """Requests by status, how late the ticks expired them, and the stuck ones: decided but not resumed, resumed
    without their task, or (`pending_past_expiry`, counted by `wait_for_expiries`) expired but still pending
    although the ticks had a bounded while to expire them."""
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    approval_requests.c.status,
                    approval_requests.c.expires_at,
                    approval_requests.c.decided_at,
                    approval_requests.c.resume,
                ).where(approval_requests.c.tenant_id == TENANT)
            )
        ).all()
        titles = Counter(
            title for (title,) in await conn.execute(select(tasks.c.title).where(tasks.c.tenant_id == TENANT))
        )
    by_status = Counter(row.status for row in rows)
    not_resumed = by_status[ApprovalStatus.APPROVED.value]
    resumed_without_task = sum(
        1
        for row in rows
        if row.status == ApprovalStatus.RESUMED.value and titles[(row.resume.get("args") or {}).get("title")] != 1
    )
    lags = [
        (row.decided_at - row.expires_at).total_seconds() for row in rows if row.status == ApprovalStatus.EXPIRED.value
    ]
    return {
        "expiry_lag_p50_s": round(statistics.median(lags), 1) if lags else None,
        "expiry_lag_max_s": round(max(lags), 1) if lags else None,
        "filed": len(rows),
        **{status.value: by_status[status.value] for status in ApprovalStatus},
        "approved_not_resumed": not_resumed,
        "resumed_without_task": resumed_without_task,
        "pending_past_expiry": pending_past_expiry,
        "stuck": not_resumed + resumed_without_task + pending_past_expiry,
    }


def duplicates(connector: Connector, kills: list[Kill]) -> tuple[int, int, int, int]:
    """Messages delivered, extra copies in all, extra copies of sends in flight at a kill, the rest."""
    deliveries = connector.outbox_deliveries()
    extra = in_flight = 0
    for arrivals in deliveries.values():
        if len(arrivals) < 2:
            continue
        extra += len(arrivals) - 1
        if any(kill.at - IN_FLIGHT_WINDOW <= arrivals[0] <= kill.at for kill in kills):
            in_flight += len(arrivals) - 1
    return len(deliveries), extra, in_flight, extra - in_flight


def replica_env(url: str, options: argparse.Namespace, scratch: Path, secret_key: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "VIRTUAL_ENV", "PYTHONPATH")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(
        DATABASE_URL=url,
        COS_TICK_SECONDS=str(options.tick_seconds),
        COS_SECRET_KEYS=secret_key,
        COS_ADMINS=LEADER,
        # The vendor agent runs on loopback: the operator allows it, as for an on-premises vendor.
        COS_ADAPTER_ALLOWED_NETWORKS="127.0.0.1/32",
        COS_LOG_LEVEL="INFO",
        # Set empty so a .env file cannot turn on credentials or the model for the replicas.
        MICROSOFT_APP_ID="",
        MICROSOFT_APP_PASSWORD="",
        ANTHROPIC_API_KEY="",
        COS_ALLOWED_SERVICE_HOSTS="",
        COS_SOAK_CWD=str(scratch),
    )
    return env


async def soak(options: argparse.Namespace, url: str, logs: Path) -> dict[str, Any]:
    # One key for the replicas and this process: any of them opens the adapter's secrets and signs the decision log.
    secret_key = Vault.generate_key()
    store = Store(create_engine(url), decision_keys=DecisionKeys.from_vault(Vault([secret_key])))
    await upgrade(store.engine)  # once, before the replicas start (each would otherwise race to migrate)
    now = datetime.now(UTC)
    today = now.date()
    zone = daytime_zone(now)
    connector = Connector()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))
    replicas = [Replica(n + 1, replica_env(url, options, logs, secret_key), logs) for n in range(REPLICAS)]
    proxy = Proxy(replicas, session)
    try:
        async with vendor_agent(lifetime=options.duration + LEASE.total_seconds() + 300) as vendor:
            await connector.start()
            await asyncio.gather(*(replica.start(session) for replica in replicas))
            await proxy.start()
            teams = Teams(proxy, connector, session, zone)
            start, end = today - timedelta(days=30), today + timedelta(days=90)
            said = await say_or_fail(
                teams, LEADER, f"new plan Soak north star from {start} to {end} kpi SQLs 500", "Master plan P"
            )
            master = int(re.search(r"Master plan P(\d+)", said).group(1))  # type: ignore[union-attr]
            said = await say_or_fail(
                teams, LEADER, f"tactical Soak push from {start} to {end} in P{master}", "Tactical plan P"
            )
            plan = int(re.search(r"Tactical plan P(\d+)", said).group(1))  # type: ignore[union-attr]
            await say_or_fail(teams, LEADER, "triggers set budget 100", "100")
            config = json.dumps({"transport": "http", "url": vendor.url})
            await say_or_fail(teams, LEADER, f"adapter add mcp {ADAPTER} {config}", "registered")
            await say_or_fail(teams, LEADER, f"adapter enable {ADAPTER} draft_email", "is on")
            await Approvals(store, TENANT).approvers.assign("leader", LEADER, actor=LEADER)
            members = [f"aad-soak-member-{n + 1}" for n in range(options.members)]
            teams.figures = Figures()  # the setup turns are not measured

            expected = Expected()
            began = time.monotonic()
            until = began + options.duration
            people = [Member(user, teams, expected, plan, today, n) for n, user in enumerate(members)]
            approvals = ApprovalLoad(store, teams, expected, members[0], plan, today)
            print(
                f"soak: {REPLICAS} replicas, {len(members)} members and a leader in {zone}, "
                f"for {options.duration:.0f} s, a replica killed every {options.kill_every:.0f} s",
                flush=True,
            )
            load = asyncio.gather(
                *(person.run(until) for person in people),
                approvals.file(until, every=2.0, expiry=options.expiry_seconds),
                approvals.decide(until),
            )
            kills_task = asyncio.create_task(chaos(replicas, session, until, options.kill_every))
            try:
                async with asyncio.timeout(options.duration + REQUEST_TIMEOUT * ATTEMPTS + 60):
                    await load
                    kills = await kills_task
            finally:
                kills_task.cancel()
            loaded = time.monotonic() - began
            print(f"  load done after {loaded:.0f} s; draining the outbox and the delegations", flush=True)
            waited = await drain(store, LEASE.total_seconds() + DRAIN_MARGIN)
            left = await wait_for_expiries(store, EXPIRY_BOUND)
            approvals_figures = await check_approvals(store, left)
            undelivered = await pending_outbox(store)
            unfinished = await unfinished_delegations(store)
    finally:
        await proxy.close()
        await asyncio.gather(*(replica.stop() for replica in replicas), return_exceptions=True)
        await session.close()
        await connector.close()

    edit_check = await check_edits(store, expected)
    chain = await verify(store, TENANT)
    entries = chain.chains[0].entries if chain.chains else 0
    async with store.engine.connect() as conn:
        outbox_rows = (
            await conn.execute(select(outbox.c.kind, outbox.c.status).where(outbox.c.tenant_id == TENANT))
        ).all()
        outbox_kinds = Counter(row.kind for row in outbox_rows)
        outbox_status = Counter(row.status for row in outbox_rows)
        delegation_status = Counter(
            status
            for (status,) in await conn.execute(select(delegations.c.status).where(delegations.c.tenant_id == TENANT))
        )
    await store.close()
    delivered, extra, extra_in_flight, extra_beyond = duplicates(connector, kills)
    figures = teams.figures
    changed = sum(1 for status in expected.status.values() if status != "todo")
    edits = len(expected.tasks) + changed + len(expected.snoozed) + len(expected.approved) + len(expected.rejected)
    result: dict[str, Any] = {
        "benchmark": "soak",
        "database": "postgresql",
        "replicas": REPLICAS,
        "members": len(members),
        "duration_s": round(loaded, 1),
        "tick_seconds": options.tick_seconds,
        "kills": len(kills),
        "drain_s": round(waited, 1),
        "turns": figures.turns,
        "turns_answered": figures.answered,
        "turns_unanswered": figures.unanswered,
        "turns_by_kind": dict(sorted(figures.kinds.items())),
        "retries": figures.retries,
        "proxy_replica_lost": proxy.lost,
        "proxy_refused_then_rerouted": proxy.refused,
        "server_errors_5xx": figures.server_errors,
        "server_error_samples": figures.server_error_samples,
        "turns_per_s": round(figures.answered / loaded, 2),
        "p50_ms": round(statistics.median(figures.latencies) * MS, 1) if figures.latencies else None,
        "p95_ms": round(quantile(figures.latencies, 95) * MS, 1) if figures.latencies else None,
        "edits_acknowledged": edits,
        "edits_lost": len(edit_check.lost),
        "edits_lost_samples": edit_check.lost[:5],
        "edits_unacknowledged_made": edit_check.unconfirmed_made,
        "edits_unacknowledged_dropped": edit_check.unconfirmed_dropped,
        "outbox_messages_by_kind": dict(sorted(outbox_kinds.items())),
        "outbox_messages_delivered": delivered,
        "duplicate_nudges": extra,
        "duplicate_nudges_in_flight_at_kill": extra_in_flight,
        "duplicate_nudges_beyond_in_flight": extra_beyond,
        "outbox_due_undelivered_at_end": undelivered,
        "outbox_messages_by_status": dict(sorted(outbox_status.items())),
        "outbox_dead_letters": outbox_status[DEAD],
        "approvals": approvals_figures,
        "approvals_stuck": approvals_figures["stuck"],
        "delegations": dict(sorted(delegation_status.items())),
        "delegations_unfinished_at_end": unfinished,
        "decision_log_entries": entries,
        "decision_log_intact": chain.ok,
        "decision_log_break": str(chain.broken[0]) if chain.broken else None,
    }
    result["goals_met"] = (
        not edit_check.lost
        and extra_beyond == 0
        and approvals_figures["stuck"] == 0
        and chain.ok
        and figures.server_errors == 0
    )
    return result


async def main(options: argparse.Namespace) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        if options.keep_logs:
            logs = Path(options.keep_logs)  # made by the entry point
        else:
            logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cos-soak-")))
        async with scratch_database(options.database_url) as url:
            try:
                return await soak(options, url, logs)
            except BaseException:
                kept = f"the replicas' logs are in {logs}" if options.keep_logs else "--keep-logs DIR keeps their logs"
                print(f"the soak did not finish; {kept}", file=sys.stderr)
                raise


def report(result: dict[str, Any]) -> None:
    print(
        f"{result['turns']} turns in {result['duration_s']} s through the proxy to {result['replicas']} replicas, "
        f"{result['kills']} killed with SIGKILL: {result['turns_per_s']} answered turns/s, "
        f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms; {result['turns_unanswered']} never answered, "
        f"{result['retries']} retries, {result['server_errors_5xx']} 5xx from a replica"
    )
    print(
        f"plan edits: {result['edits_acknowledged']} acknowledged, {result['edits_lost']} lost (goal 0), "
        f"{result['edits_unacknowledged_made'] + result['edits_unacknowledged_dropped']} never acknowledged (a replica "
        f"died with the turn and the retry was taken as done): {result['edits_unacknowledged_made']} made anyway, "
        f"{result['edits_unacknowledged_dropped']} dropped"
    )
    print(
        f"outbox: {sum(result['outbox_messages_by_kind'].values())} messages written "
        f"({result['outbox_messages_by_status']}: pending ones wait for tomorrow, past the daily budget; sent ones "
        f"include those dropped at sending as their task was done meanwhile), "
        f"{result['outbox_messages_delivered']} delivered, "
        f"{result['duplicate_nudges']} extra copies: "
        f"{result['duplicate_nudges_in_flight_at_kill']} of sends in flight at a kill, "
        f"{result['duplicate_nudges_beyond_in_flight']} beyond (goal 0); "
        f"{result['outbox_due_undelivered_at_end']} due and undelivered at the end, "
        f"{result['outbox_dead_letters']} dead letters"
    )
    approvals = result["approvals"]
    print(
        f"approvals: {approvals['filed']} filed, {approvals['resumed']} approved and resumed, "
        f"{approvals['rejected']} rejected, {approvals['expired']} expired (by a tick "
        f"{approvals['expiry_lag_p50_s']} s after their time at the median, {approvals['expiry_lag_max_s']} s at "
        f"most), {approvals['pending']} pending; "
        f"stuck {result['approvals_stuck']} (goal 0)"
    )
    print(
        f"delegations {result['delegations']}; decision log: {result['decision_log_entries']} entries, "
        f"chain {'intact' if result['decision_log_intact'] else 'BROKEN: ' + str(result['decision_log_break'])}"
    )


def stop_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM cleans up like Ctrl-C: the replicas are stopped and the scratch database dropped."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load (30 for a quick smoke)")
    parser.add_argument(
        "--kill-every", type=float, help="seconds between kills (default 60, or half the duration if shorter)"
    )
    parser.add_argument("--members", type=int, default=6, help="members posting at once (besides the leader)")
    parser.add_argument("--tick-seconds", type=int, default=2, help="the replicas' COS_TICK_SECONDS")
    parser.add_argument("--expiry-seconds", type=float, default=10.0, help="lifetime of the approvals left to expire")
    parser.add_argument("--database-url", default=DEFAULT_SERVER, help="the PostgreSQL server for the scratch database")
    parser.add_argument("--keep-logs", help="keep the replicas' logs in this directory")
    options = parser.parse_args()
    if not options.database_url.startswith("postgresql"):
        parser.error("--database-url takes a PostgreSQL URL: the replicas share one database")
    if options.duration < 10 or options.members < 1 or options.tick_seconds < 1:
        parser.error("--duration must be at least 10, --members and --tick-seconds at least 1")
    options.kill_every = options.kill_every or min(60.0, options.duration / 2)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    if options.keep_logs:
        Path(options.keep_logs).mkdir(parents=True, exist_ok=True)
    result = asyncio.run(main(options))
    report(result)
    print(json.dumps(result))
    sys.exit(0 if result["goals_met"] else 1)
