"""An identity provider on loopback, for single sign-on hops: it signs a user in and sends them back with a ticket.

It listens on 127.0.0.1, reached as `login.idp.localhost` (Chromium resolves every `*.localhost` name to loopback),
so a vendor's sign-in passes through another origin, as SSO through Okta or Entra ID does.
"""

from __future__ import annotations

import html
import secrets
import socket
from types import TracebackType
from urllib.parse import urlencode

from aiohttp import web


class IdentityProvider:
    """Signs in `email` and redirects to the `return_to` it was given with a one-time `ticket`."""

    def __init__(self, *, email: str, host: str = "login.idp.localhost") -> None:
        self.email = email
        self.host = host
        self.tickets: dict[str, str] = {}
        """ticket → email, until the vendor redeems it."""
        self.sign_ins = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def redeem(self, ticket: str) -> str | None:
        return self.tickets.pop(ticket, None)

    async def start(self) -> IdentityProvider:
        app = web.Application()
        app.router.add_get("/authorize", self._form)
        app.router.add_post("/authorize", self._authorize)
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

    async def __aenter__(self) -> IdentityProvider:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()

    async def _form(self, request: web.Request) -> web.StreamResponse:
        return_to = html.escape(request.query.get("return_to", ""), quote=True)
        return web.Response(
            text="<!doctype html><html><body><h1>Company sign-in</h1>"
            f'<form method="post" action="/authorize"><input type="hidden" name="return_to" value="{return_to}">'
            '<label>Work email <input name="email" type="email"></label>'
            '<button type="submit">Continue with SSO</button></form></body></html>',
            content_type="text/html",
        )

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        return_to = str(form.get("return_to", ""))
        if form.get("email") != self.email:
            return web.Response(status=403, text="unknown user")
        ticket = secrets.token_urlsafe(16)
        self.tickets[ticket] = self.email
        self.sign_ins += 1
        raise web.HTTPFound(f"{return_to}?{urlencode({'ticket': ticket})}")
