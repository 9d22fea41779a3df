"""A vendor marketing tool with only a web UI, served on loopback for the browser adapter's tests.

It signs a user in with a username and password, then asks a 6-digit code (2FA); a signed-in user can create a
campaign brief and sees its id and summary. Switches make it fail (500), serve broken pages, or hang, and some
pages try to reach another origin: the same app listening on 127.0.0.2, which records every request it gets.
"""

from __future__ import annotations

import asyncio
import html
import secrets
import socket
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

from aiohttp import web

from planner.ports import HumanChannel

SESSION_COOKIE = "vendor_session"
USERNAME = "marketing-ops@brand.example"
PASSWORD = "correct-horse-battery-staple"
CODE = "482913"
"""The account and the 2FA code the browser tests and bench/browser_memory.py start a `WebVendor` with."""


@dataclass
class _Session:
    token: str
    verified: bool


def _page(title: str, body: str) -> web.Response:
    return web.Response(
        text=f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>{body}</body></html>",
        content_type="text/html",
    )


def _bind_pair() -> tuple[socket.socket, socket.socket]:
    """Two listening sockets on one port: 127.0.0.1 (the vendor) and 127.0.0.2 (another origin)."""
    for _ in range(20):
        first = socket.socket()
        first.bind(("127.0.0.1", 0))
        port = first.getsockname()[1]
        second = socket.socket()
        try:
            second.bind(("127.0.0.2", port))
        except OSError:
            first.close()
            second.close()
            continue
        return first, second
    raise RuntimeError("no port is free on both 127.0.0.1 and 127.0.0.2")


class WebVendor:
    """The vendor's web app; `logins` counts completed sign-ins (password and code)."""

    def __init__(self, *, username: str, password: str, code: str = "123456", two_factor: bool = True) -> None:
        self.username = username
        self.password = password
        self.code = code
        self.two_factor = two_factor
        self.failing = False
        """Every page answers 500."""
        self.broken = False
        """Pages answer 200 with a page that has none of the expected elements."""
        self.logins = 0
        self.code_prompts = 0
        self.requests: list[tuple[str, str]] = []
        """(host, path) of every request, on both addresses."""
        self.session_tokens: list[str] = []
        self._sessions: dict[str, _Session] = {}
        self._next_brief = 1001
        self._release = asyncio.Event()
        self._requested = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def foreign_url(self) -> str:
        """Another origin (another address, same port) that the adapter must never reach."""
        return f"http://127.0.0.2:{self.port}"

    @property
    def foreign_requests(self) -> list[str]:
        return [path for host, path in self.requests if host.startswith("127.0.0.2")]

    async def wait_for_requests(self, path: str, count: int, *, within: float) -> None:
        """Until `count` requests for `path` have come in, however many return."""
        async with asyncio.timeout(within), self._requested:
            await self._requested.wait_for(lambda: sum(p == path for _, p in self.requests) >= count)

    def release_slow_pages(self) -> None:
        """Answer the `/slow` requests waiting, and every one after."""
        self._release.set()

    def hold_slow_pages(self) -> None:
        """Hold the `/slow` requests from now on, until released."""
        self._release.clear()

    def expire_sessions(self) -> None:
        """Forget every session, as a vendor does when its sessions time out."""
        self._sessions.clear()

    async def start(self) -> WebVendor:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/", self._home)
        app.router.add_get("/login", self._login_form)
        app.router.add_post("/login", self._login)
        app.router.add_get("/2fa", self._code_form)
        app.router.add_post("/2fa", self._verify)
        app.router.add_get("/app", self._dashboard)
        app.router.add_get("/briefs/new", self._new_brief)
        app.router.add_post("/briefs", self._create_brief)
        app.router.add_get("/briefs/{brief_id}", self._brief)
        app.router.add_get("/pulls-foreign", self._pulls_foreign)
        app.router.add_get("/leave", self._leave)
        app.router.add_get("/redirect-away", self._redirect_away)
        app.router.add_get("/slow", self._slow)
        app.router.add_route("*", "/{anything:.*}", self._anything)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        vendor_socket, foreign_socket = _bind_pair()
        self.port = vendor_socket.getsockname()[1]
        await web.SockSite(self._runner, vendor_socket).start()
        await web.SockSite(self._runner, foreign_socket).start()
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WebVendor:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()

    @web.middleware
    async def _record(self, request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
        self.requests.append((request.host, request.path))
        async with self._requested:
            self._requested.notify_all()
        if request.host.startswith("127.0.0.2"):
            return web.Response(text="another origin")
        if self.failing:
            return web.Response(status=500, text="Internal Server Error")
        if self.broken and request.path not in ("/favicon.ico",):
            return _page("Oops", "<p>Something went wrong.<div")
        return await handler(request)

    def _session(self, request: web.Request) -> _Session | None:
        return self._sessions.get(request.cookies.get(SESSION_COOKIE, ""))

    def _signed_in(self, request: web.Request) -> bool:
        session = self._session(request)
        return session is not None and session.verified

    def _to_login(self, request: web.Request) -> web.HTTPFound:
        return web.HTTPFound(f"/login?next={request.path_qs}")

    async def _home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/app")

    async def _login_form(self, request: web.Request, error: str = "") -> web.StreamResponse:
        next_path = html.escape(request.query.get("next", "/app"))
        message = f'<p class="error">{html.escape(error)}</p>' if error else ""
        return _page(
            "Sign in",
            f'<h1>Sign in to Vendor Marketing</h1>{message}<form id="login-form" method="post" action="/login">'
            f'<input type="hidden" name="next" value="{next_path}">'
            '<label>Username <input id="username" name="username"></label>'
            '<label>Password <input id="password" name="password" type="password"></label>'
            '<button id="sign-in" type="submit">Sign in</button></form>',
        )

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        next_path = str(form.get("next", "/app"))
        if not next_path.startswith("/"):
            next_path = "/app"
        if form.get("username") != self.username or form.get("password") != self.password:
            return await self._login_form(request, "Wrong username or password.")
        token = secrets.token_urlsafe(24)
        self.session_tokens.append(token)
        self._sessions[token] = _Session(token=token, verified=not self.two_factor)
        if self.two_factor:
            answer = web.HTTPFound(f"/2fa?next={next_path}")
        else:
            self.logins += 1
            answer = web.HTTPFound(next_path)
        answer.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax")
        return answer

    async def _code_form(self, request: web.Request, error: str = "") -> web.StreamResponse:
        if self._session(request) is None:
            raise self._to_login(request)
        self.code_prompts += 1
        next_path = html.escape(request.query.get("next", "/app"))
        message = f'<p class="error">{html.escape(error)}</p>' if error else ""
        return _page(
            "Verify",
            f"<h1>Enter the 6-digit code from your authenticator app</h1>{message}"
            f'<form id="code-form" method="post" action="/2fa?next={next_path}">'
            '<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code">'
            '<button id="verify" type="submit">Verify</button></form>',
        )

    async def _verify(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        if session is None:
            raise self._to_login(request)
        form = await request.post()
        if form.get("code") != self.code:
            return await self._code_form(request, "That code is not right.")
        session.verified = True
        self.logins += 1
        next_path = request.query.get("next", "/app")
        raise web.HTTPFound(next_path if next_path.startswith("/") else "/app")

    async def _dashboard(self, request: web.Request) -> web.StreamResponse:
        if not self._signed_in(request):
            raise self._to_login(request)
        return _page(
            "Dashboard",
            '<h1 id="dashboard">Campaigns</h1><a id="new-brief" href="/briefs/new">New brief</a>'
            "<script>localStorage.setItem('vendor-theme', 'dark')</script>",
        )

    async def _new_brief(self, request: web.Request) -> web.StreamResponse:
        if not self._signed_in(request):
            raise self._to_login(request)
        name = html.escape(request.query.get("name", ""), quote=True)
        return _page(
            "New brief",
            '<h1>Create campaign brief</h1><form id="brief-form" method="post" action="/briefs">'
            f'<label>Name <input id="brief-name" name="name" value="{name}"></label>'
            '<label>Audience <input id="audience" name="audience"></label>'
            '<button id="create" type="submit">Create brief</button></form>',
        )

    async def _create_brief(self, request: web.Request) -> web.StreamResponse:
        if not self._signed_in(request):
            raise self._to_login(request)
        form = await request.post()
        brief_id = f"BR-{self._next_brief}"
        self._next_brief += 1
        raise web.HTTPFound(
            f"/briefs/{brief_id}?name={_q(str(form.get('name', '')))}&audience={_q(str(form.get('audience', '')))}"
        )

    async def _brief(self, request: web.Request) -> web.StreamResponse:
        if not self._signed_in(request):
            raise self._to_login(request)
        brief_id = html.escape(request.match_info["brief_id"])
        name = html.escape(request.query.get("name", ""))
        audience = html.escape(request.query.get("audience", ""))
        return _page(
            "Brief created",
            f'<h1>Brief created</h1><p>Id: <span id="brief-id">{brief_id}</span></p>'
            f'<p id="summary">Brief &quot;{name}&quot; for {audience}</p>',
        )

    async def _pulls_foreign(self, request: web.Request) -> web.StreamResponse:
        if not self._signed_in(request):
            raise self._to_login(request)
        foreign = self.foreign_url
        return _page(
            "Reports",
            f'<img src="{foreign}/pixel.png"><script src="http://evil.example/track.js"></script>'
            f'<iframe src="{foreign}/frame"></iframe>'
            f'<script>fetch("{foreign}/beacon", {{mode: "no-cors"}}).catch(() => {{}});'
            f'new WebSocket("{foreign.replace("http", "ws")}/live")</script>'
            '<p id="ready">Reports ready</p>',
        )

    async def _leave(self, request: web.Request) -> web.StreamResponse:
        if not self._signed_in(request):
            raise self._to_login(request)
        return _page("Leave", f'<a id="away" href="{self.foreign_url}/phish">Continue</a>')

    async def _redirect_away(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{self.foreign_url}/phish")

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        await self._release.wait()
        return _page("Slow", "<p>finally</p>")

    async def _anything(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=404, text="not found")


def _q(value: str) -> str:
    return quote(value, safe="")


class AnsweringPerson(HumanChannel):
    """A person who answers every question with the code their authenticator shows, and follows the steps."""

    def __init__(self, code: str = CODE) -> None:
        self.code = code
        self.questions: list[str] = []
        self.steps: list[str] = []

    async def progressed(self, step: str) -> None:
        self.steps.append(step)

    async def ask(self, question: str, *, timeout_seconds: float) -> str:
        self.questions.append(question)
        return f" {self.code[:3]} {self.code[3:]} "


def vendor_config(vendor: WebVendor, **changes: Any) -> dict[str, Any]:
    """The browser recipe an admin would register for `vendor` (started with `USERNAME` and `PASSWORD`): its sign-in
    with the 2FA code, and its capabilities; `changes` replace top-level keys (the timeouts, the credentials…)."""
    base = vendor.url
    config: dict[str, Any] = {
        "name": "vendor-marketing",
        "origins": [base],
        "timeouts": {"step_seconds": 5, "navigation_seconds": 10, "code_answer_seconds": 30},
        "login": {
            "signed_out_selector": "#login-form",
            "steps": [
                {"kind": "goto", "url": f"{base}/login"},
                {"kind": "fill", "selector": "#username", "value": "{credentials.username}"},
                {"kind": "fill", "selector": "#password", "value": "{credentials.password}"},
                {"kind": "click", "selector": "#sign-in"},
                {"kind": "expect_code", "selector": "#code", "submit": "#verify", "unless": "#dashboard"},
                {"kind": "wait_for", "selector": "#dashboard"},
            ],
        },
        "capabilities": {
            "create_campaign_brief": {
                "description": "Create a campaign brief in the vendor's tool",
                "steps": [
                    {"kind": "goto", "url": f"{base}/briefs/new?name={{name}}"},
                    {"kind": "fill", "selector": "#audience", "value": "{audience}"},
                    {"kind": "click", "selector": "#create"},
                    {"kind": "wait_for", "url": "**/briefs/BR-**"},
                    {"kind": "extract_text", "selector": "#brief-id", "field": "brief_id"},
                    {"kind": "extract_text", "selector": "#summary", "field": "summary"},
                    {"kind": "screenshot", "description": "the created brief"},
                ],
                "output": "Brief {brief_id} created: {summary}",
            },
            "open_reports": {
                "steps": [
                    {"kind": "goto", "url": f"{base}/pulls-foreign"},
                    {"kind": "extract_text", "selector": "#ready", "field": "status"},
                ]
            },
            "follow_link": {
                "steps": [
                    {"kind": "goto", "url": f"{base}/leave"},
                    {"kind": "click", "selector": "#away"},
                    {"kind": "wait_for", "selector": "#never"},
                ]
            },
            "follow_redirect": {"steps": [{"kind": "goto", "url": f"{base}/redirect-away"}]},
            "open_slow_page": {"steps": [{"kind": "goto", "url": f"{base}/slow"}]},
        },
        "credentials": {"username": USERNAME, "password": PASSWORD},
    }
    config.update(changes)
    return config
