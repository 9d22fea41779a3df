"""A vendor web app built as a single-page app, as real SaaS tools are (n8n, HubSpot…), served on 127.0.0.1.

Every page is the same shell; its script asks the JSON API who is signed in and draws the sign-in form, the 2FA form or
the page asked for, each a moment after the `load` event (`render_delay_ms`), so a browser that checks the page once at
`load` sees nothing. Signing in sets a session cookie (`spa_session`) pending the 2FA code; the code makes it verified.
A signed-in user can save a workflow (a name and a trigger picked from a select) and sees its id. Switches make the API
fail (5xx on the background requests only: the shell still loads) or the save fail after it was recorded.

Beside the app, plain pages under /tools exercise the other steps: a menu that opens on hover, a search box in an
iframe answering the Enter key, a file upload, and a report to download.
"""

from __future__ import annotations

import html
import json
import secrets
import socket
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.identity_provider import IdentityProvider

SESSION_COOKIE = "spa_session"

_SHELL = """<!doctype html>
<html><head><title>Flows</title></head>
<body><div id="root"><p class="spinner">Loading…</p></div>
<script>
const DELAY = __DELAY__;
const root = document.getElementById("root");
const later = (draw) => new Promise((done) => setTimeout(() => { draw(); done(); }, DELAY));
async function api(path, body) {
  const response = await fetch(path, body === undefined ? {} :
    {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  let data = {};
  try { data = await response.json(); } catch (error) {}
  return {status: response.status, data};
}
function broken() {
  root.innerHTML = '<p class="toast">Something went wrong. Please try again.</p>';
}
function signIn() {
  root.innerHTML = `<form data-test-id="signin-form"><h1>Sign in</h1>
    <label>Email <input name="email" type="email"></label>
    <label>Password <input name="password" type="password"></label>
    <p class="error" hidden></p>
    <button type="submit">Sign in</button></form>`;
  const form = root.querySelector("form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await api("/api/login", {email: form.email.value, password: form.password.value});
    if (answer.status >= 500) return broken();
    if (answer.status !== 200) {
      const error = form.querySelector(".error");
      error.textContent = "Wrong email or password"; error.hidden = false; return;
    }
    await later(answer.data.mfa ? code : route);
  });
}
function code() {
  root.innerHTML = `<form data-test-id="mfa-form"><h1>Two-factor authentication</h1>
    <label>Code from your authenticator app <input name="code" autocomplete="one-time-code"></label>
    <p class="error" hidden></p>
    <button type="submit">Continue</button></form>`;
  const form = root.querySelector("form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await api("/api/mfa", {code: form.code.value});
    if (answer.status >= 500) return broken();
    if (answer.status !== 200) {
      const error = form.querySelector(".error");
      error.textContent = "Invalid code"; error.hidden = false; return;
    }
    await later(route);
  });
}
function route() {
  if (location.pathname === "/workflows/new") return newWorkflow();
  root.innerHTML = '<h1 data-test-id="overview">Overview</h1><a href="/workflows/new">New workflow</a>';
}
function newWorkflow() {
  root.innerHTML = `<h1>New workflow</h1>
    <label>Workflow name <input name="name"></label>
    <label>Trigger <select name="trigger">
      <option value="manual">Manual</option><option value="schedule">Schedule</option>
      <option value="webhook">Webhook</option></select></label>
    <button type="button">Save</button><p data-test-id="saved"></p>`;
  root.querySelector("button").addEventListener("click", async () => {
    const name = root.querySelector("input[name=name]").value;
    const trigger = root.querySelector("select").value;
    const answer = await api("/api/workflows", {name, trigger});
    if (answer.status >= 500) return broken();
    root.querySelector("[data-test-id=saved]").textContent = `Saved ${answer.data.id}: ${name} (${trigger})`;
  });
}
later(async () => {
  const me = await api("/api/me");
  if (me.status >= 500) return broken();
  if (me.status === 401) return later(signIn);
  if (me.status === 403) return later(code);
  return later(route);
});
</script></body></html>
"""


@dataclass
class _Session:
    verified: bool


class SpaVendor:
    """The single-page app; `logins` counts completed sign-ins (password and code), `workflows` what was saved."""

    def __init__(
        self, *, email: str, password: str, code: str = "123456", two_factor: bool = True, render_delay_ms: int = 700
    ) -> None:
        self.email = email
        self.password = password
        self.code = code
        self.two_factor = two_factor
        self.render_delay_ms = render_delay_ms
        self.api_failing = False
        """Every /api request answers 503; the pages themselves still load."""
        self.save_failing = False
        """Saving a workflow records it, then answers 500 (the vendor did it, and said it failed)."""
        self.logins = 0
        self.codes_tried: list[str] = []
        self.workflows: list[dict[str, str]] = []
        self.uploads: list[tuple[str, bytes]] = []
        self.identity_provider: IdentityProvider | None = None
        """Where /sso/start sends a user to sign in (single sign-on), if anywhere."""
        self._sessions: dict[str, _Session] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def expire_sessions(self) -> None:
        self._sessions.clear()

    async def start(self) -> SpaVendor:
        app = web.Application()
        app.router.add_get("/api/me", self._me)
        app.router.add_post("/api/login", self._login)
        app.router.add_post("/api/mfa", self._mfa)
        app.router.add_post("/api/workflows", self._save)
        app.router.add_route("*", "/api/{anything:.*}", self._not_found)
        app.router.add_get("/favicon.ico", self._not_found)
        app.router.add_get("/sso/start", self._sso_start)
        app.router.add_get("/sso/callback", self._sso_callback)
        app.router.add_get("/tools", self._tools)
        app.router.add_get("/tools/import", self._import_form)
        app.router.add_post("/tools/import", self._import)
        app.router.add_get("/tools/search", self._search_frame)
        app.router.add_get("/tools/report.csv", self._report)
        app.router.add_get("/{path:.*}", self._shell)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        await web.SockSite(self._runner, listener).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SpaVendor:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()

    def _session(self, request: web.Request) -> _Session | None:
        return self._sessions.get(request.cookies.get(SESSION_COOKIE, ""))

    def _failing(self) -> web.Response | None:
        return web.json_response({"message": "Service Unavailable"}, status=503) if self.api_failing else None

    async def _shell(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=_SHELL.replace("__DELAY__", str(self.render_delay_ms)), content_type="text/html")

    async def _me(self, request: web.Request) -> web.StreamResponse:
        if (failing := self._failing()) is not None:
            return failing
        session = self._session(request)
        if session is None:
            return web.json_response({"message": "Unauthorized"}, status=401)
        if not session.verified:
            return web.json_response({"message": "MFA required"}, status=403)
        return web.json_response({"email": self.email})

    async def _login(self, request: web.Request) -> web.StreamResponse:
        if (failing := self._failing()) is not None:
            return failing
        body = await _json(request)
        if body.get("email") != self.email or body.get("password") != self.password:
            return web.json_response({"message": "Wrong email or password"}, status=401)
        token = secrets.token_urlsafe(24)
        self._sessions[token] = _Session(verified=not self.two_factor)
        if not self.two_factor:
            self.logins += 1
        answer = web.json_response({"mfa": self.two_factor})
        answer.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax")
        return answer

    async def _mfa(self, request: web.Request) -> web.StreamResponse:
        if (failing := self._failing()) is not None:
            return failing
        session = self._session(request)
        if session is None:
            return web.json_response({"message": "Unauthorized"}, status=401)
        code = str((await _json(request)).get("code", ""))
        self.codes_tried.append(code)
        if code != self.code:
            return web.json_response({"message": "Invalid code"}, status=400)
        session.verified = True
        self.logins += 1
        return web.json_response({"ok": True})

    async def _save(self, request: web.Request) -> web.StreamResponse:
        if (failing := self._failing()) is not None:
            return failing
        session = self._session(request)
        if session is None or not session.verified:
            return web.json_response({"message": "Unauthorized"}, status=401)
        body = await _json(request)
        workflow = {
            "id": f"W-{len(self.workflows) + 1}",
            "name": str(body.get("name")),
            "trigger": str(body.get("trigger")),
        }
        self.workflows.append(workflow)
        if self.save_failing:
            return web.json_response({"message": "Internal Server Error"}, status=500)
        return web.json_response(workflow)

    async def _sso_start(self, request: web.Request) -> web.StreamResponse:
        if self.identity_provider is None:
            return web.Response(status=404, text="no single sign-on")
        return_to = f"{self.url}/sso/callback"
        raise web.HTTPFound(f"{self.identity_provider.url}/authorize?{urlencode({'return_to': return_to})}")

    async def _sso_callback(self, request: web.Request) -> web.StreamResponse:
        email = self.identity_provider.redeem(request.query.get("ticket", "")) if self.identity_provider else None
        if email != self.email:
            return web.Response(status=403, text="the ticket is not valid")
        token = secrets.token_urlsafe(24)
        self._sessions[token] = _Session(verified=True)
        self.logins += 1
        answer = web.HTTPFound("/")
        answer.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax")
        raise answer

    async def _tools(self, request: web.Request) -> web.StreamResponse:
        return _html(
            "<style>.items { display: none } .menu:hover .items { display: block }</style>"
            '<div class="menu"><button type="button">More</button>'
            '<div class="items"><a href="/tools/import">Import a brief</a></div></div>'
        )

    async def _import_form(self, request: web.Request) -> web.StreamResponse:
        return _html(
            '<iframe title="Search" src="/tools/search"></iframe>'
            '<form method="post" action="/tools/import" enctype="multipart/form-data">'
            '<label>Brief file <input type="file" name="file"></label><button type="submit">Upload</button></form>'
        )

    async def _search_frame(self, request: web.Request) -> web.StreamResponse:
        return _html(
            '<label>Search <input name="q"></label><p id="found"></p><script>'
            'document.querySelector("input").addEventListener("keydown", (event) => {'
            ' if (event.key === "Enter") document.getElementById("found").textContent = "Found: " + event.target.value;'
            "});</script>"
        )

    async def _import(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return web.Response(status=400, text="no file")
        with upload.file as file:  # older aiohttp leaves a posted file open after the request
            content = file.read()
        self.uploads.append((upload.filename, content))
        return _html(
            f'<p id="uploaded">Uploaded {html.escape(upload.filename)} ({len(content)} bytes)</p>'
            '<a href="/tools/report.csv">Download the report</a>'
        )

    async def _report(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            text="campaign,leads\nspring,42\n",
            content_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="report.csv"'},
        )

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"message": "not found"}, status=404)


def _html(body: str) -> web.Response:
    return web.Response(text=f"<!doctype html><html><body>{body}</body></html>", content_type="text/html")


async def _json(request: web.Request) -> dict[str, object]:
    try:
        body = json.loads(await request.text())
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
