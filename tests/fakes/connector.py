"""A Bot Connector on loopback: records what the bot sends, like Teams' service would receive it."""

from __future__ import annotations

import asyncio
import itertools
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Sent:
    method: str
    conversation_id: str
    activity_id: str | None
    body: dict[str, Any]
    authorization: str | None = None
    """The Authorization header the bot sent it with."""


@dataclass
class FakeConnector:
    """Implements the Bot Connector calls the bot makes: send, reply, update, create conversation, members."""

    sent: list[Sent] = field(default_factory=list)
    members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    """Answers to give instead of accepting the next sends: (status, headers), first first."""
    deleted: bool = False
    """Answer every update 404, as Teams does for a message its reader deleted."""
    without_ids: bool = False
    """Answer sends with no activity id, as a connector may: what was sent cannot be updated then."""
    roster_reads: int = 0
    """How many times a whole member list was read (a member is looked up by id instead)."""
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    server: TestServer | None = None
    ssl_context: ssl.SSLContext | None = None
    """Serve over TLS with this context (an authenticated bot only replies to https service URLs)."""

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/"))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._send)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._update)
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_get("/v3/conversations/{conversation}/members", self._members)
        app.router.add_get("/v3/conversations/{conversation}/members/{member}", self._member)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server(ssl=self.ssl_context)

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def _record(self, item: Sent) -> None:
        async with self._arrived:
            self.sent.append(item)
            self._arrived.notify_all()

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.failures:
            status, headers = self.failures.pop(0)
            return web.json_response(
                {"error": {"code": str(status), "message": "scripted"}}, status=status, headers=headers
            )
        activity_id = f"sent-{next(self._ids)}"
        authorization = request.headers.get("Authorization")
        await self._record(Sent("send", request.match_info["conversation"], activity_id, body, authorization))
        return web.json_response({} if self.without_ids else {"id": activity_id})

    async def _update(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.deleted:
            return web.json_response({"error": {"code": "NotFound", "message": "activity not found"}}, status=404)
        activity_id = request.match_info["activity"]
        await self._record(Sent("update", request.match_info["conversation"], activity_id, body))
        return web.json_response({"id": activity_id})

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        conversation_id = f"a:created-{next(self._ids)}"
        await self._record(Sent("create", conversation_id, None, body))
        return web.json_response({"id": conversation_id})

    async def _members(self, request: web.Request) -> web.Response:
        self.roster_reads += 1
        return web.json_response(self.members.get(request.match_info["conversation"], []))

    async def _member(self, request: web.Request) -> web.Response:
        wanted = request.match_info["member"]
        for member in self.members.get(request.match_info["conversation"], []):
            if wanted in (member.get("id"), member.get("aadObjectId")):
                return web.json_response(member)
        return web.json_response({"error": {"code": "MemberNotFoundInConversation", "message": "no"}}, status=404)

    async def wait_for(self, count: int, within: float = 10.0) -> list[Sent]:
        """Wait until `count` messages have arrived (bounded); return them all."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.sent) >= count)
        return list(self.sent)

    def texts(self) -> list[str]:
        return [s.body.get("text") or "" for s in self.sent if s.body.get("type") == "message"]

    def cards(self) -> list[dict[str, Any]]:
        return [
            a["content"]
            for s in self.sent
            for a in s.body.get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]
