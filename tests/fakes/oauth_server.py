"""A loopback MCP server behind OAuth 2.1, with its authorization server, built from the `mcp` SDK's server-side auth.

`LoopbackAuthorization` is the authorization server's provider (the SDK serves the endpoints: metadata, dynamic
registration, /authorize, /token): it signs in a fixed person at once when their browser opens /authorize (no page to
fill in) and sends them back to the client's redirect URI with a code, as a real vendor does after its login page.
Tokens are opaque, expire after `TOKEN_SECONDS`, and a refresh token rotates both. The MCP server's tool `whoami`
answers with the person the token was issued to, so a test sees whose grant a call used.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from tests.adapters.vendor_agent import _Server, loopback_socket

TOKEN_SECONDS = 3600
PERSON = "a-member@vendor.example"


@dataclass
class LoopbackAuthorization:
    """The authorization server's state: clients, codes and tokens, and what was asked of it (for the test)."""

    clients: dict[str, OAuthClientInformationFull] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    grants: list[str] = field(default_factory=list)
    """The grant types of the token requests it answered, in order."""

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [],
            expires_at=time.time() + 300,
            client_id=client.client_id or "",
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject=PERSON,
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        return self.codes.get(authorization_code)

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        del self.codes[authorization_code.code]
        self.grants.append("authorization_code")
        return self._issue(client, authorization_code.scopes, authorization_code.resource)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        return self.refresh.get(refresh_token)

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        del self.refresh[refresh_token.token]
        self.grants.append("refresh_token")
        return self._issue(client, scopes or refresh_token.scopes, refresh_token.resource)

    async def load_access_token(self, token: str) -> AccessToken | None:
        access = self.access.get(token)
        if access is None or (access.expires_at is not None and access.expires_at < time.time()):
            return None
        return access

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.access.pop(token.token, None)
        self.refresh.pop(token.token, None)

    def _issue(self, client: OAuthClientInformationFull, scopes: list[str], resource: str | None) -> OAuthToken:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        client_id = client.client_id or ""
        self.access[access] = AccessToken(
            token=access,
            client_id=client_id,
            scopes=scopes,
            expires_at=int(time.time()) + TOKEN_SECONDS,
            resource=resource,
            subject=PERSON,
        )
        self.refresh[refresh] = RefreshToken(
            token=refresh, client_id=client_id, scopes=scopes, resource=resource, subject=PERSON
        )
        return OAuthToken(
            access_token=access, refresh_token=refresh, expires_in=TOKEN_SECONDS, scope=" ".join(scopes) or None
        )


@contextlib.asynccontextmanager
async def serve_oauth_protected(authorization: LoopbackAuthorization) -> AsyncIterator[str]:
    """Serve an MCP server that requires a token from `authorization`, which it also serves; yields the MCP URL."""
    sock = loopback_socket(0)
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = MCPServer(
        "vendor-crm",
        auth_server_provider=authorization,
        auth=AuthSettings(
            issuer_url=origin,
            resource_server_url=f"{origin}/mcp",
            validate_token_resource=False,
            client_registration_options=ClientRegistrationOptions(enabled=True),
        ),
    )

    @server.tool(description="Who the bot acts as here.")
    def whoami() -> str:
        token = get_access_token()
        return f"signed in as {token.subject if token else 'nobody'}"

    app = server.streamable_http_app(streamable_http_path="/mcp")
    uvicorn_server = _Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    serving = await uvicorn_server.serve_until_started(sock)
    try:
        yield f"{origin}/mcp"
    finally:
        uvicorn_server.should_exit = True
        await serving
        sock.close()


async def follow_sign_in(card: Mapping[str, Any]) -> httpx2.Response:
    """A person's browser opening a Sign in card's one button: the bot's signed link, the vendor's /authorize, and
    the redirect back to the bot's callback; the page it ends on."""
    (button,) = card["actions"]
    assert button["title"] == "Sign in"
    async with httpx2.AsyncClient(follow_redirects=True, timeout=10) as browser:
        return await browser.get(button["url"])
