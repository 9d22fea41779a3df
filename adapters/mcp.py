"""MCP agents: vendor agents that speak the Model Context Protocol, over stdio or streamable HTTP.

An admin registers an `MCPConfig`: how to reach the server (an entry of the operator's allow-list of stdio
commands, or a URL with an optional bearer token and headers), which of its tools are capabilities (by default every
tool, under its own name) and how long connecting may take. `MCPAgent` lists the tools as capabilities, each with the
server's own definition of its tool (name, description, input schema, annotations), and delegates a request by
calling the mapped tool with the request's input. Which tools may be called is the registry's to say: an admin
enables each, its definition pinned then (planner/services/tools.py; `MCPAdapterFactory.tools_need_enabling`).

What comes from chat never decides what runs on the host or where the bot connects: `MCPAdapterFactory` maps a
stdio config's `command` to the operator's entry (`adapters.stdio_commands`), refuses internal addresses at
registration, and every HTTP request goes only to an address checked when connecting (`adapters.egress`). Whatever
keeps a connection from being made (refused, timed out, not allowed) reads the same to the caller; the details go
to the log.

OAuth 2.1, with the `mcp` SDK's providers: as a service agent (`oauth_grant: client_credentials`, a client secret or a
private key), or as each person who delegates (`authorization_code`, adapters/mcp_oauth.py): the call then acts for
the person `planner.ports.acting_for` names, with a session of their own and their grant, and the person is sent a
sign-in card through their `SignInChannel` when they have none; a call that acts for nobody is refused.

One persistent session per agent (per person, for an agent that acts as each person). Opening a session costs a
handshake and a tool listing, and for stdio a process start (a second or more for a Python server), against a few
milliseconds for a call: a session per delegation would cost more than the call itself. The SDK's transports are
async context managers whose task groups must be entered and exited by one task, so a
background task per session (`_Session`) enters them, holds them until the agent closes or the connection ends, and
exits them. Callers use the session from their own tasks: a call is just a request on its streams, so concurrent
delegations share the session, cancelling a caller abandons only its call (the SDK tells the server), and a
time-out is a cancel scope around the caller's wait. The SDK negotiates the protocol: the 2026-07-28 era when the
server offers it, otherwise the initialize handshake of earlier servers.

Outcomes, by cause:
- the tool answered, even with `isError`: a result, `succeeded` or `failed`; a JSON-RPC error from a live server is
  a `failed` result too (the agent said no);
- no answer within `request.timeout_seconds`: `AgentTimeout`; the session stays open for the next call;
- the server cannot be started or reached, or refuses the credentials, before the call: `AgentNotReached`; it dies
  mid-call, or answers the call with an HTTP error (a 5xx, from it or a proxy: it may have run the tool first):
  `AgentUnavailable`; never a hang. A broken session, or one a call had an HTTP error on, is replaced on the next
  call (the calls in flight on the latter still finish on it, then it is closed). A call is retried once, on a
  fresh session, only when it provably never reached the server (the session was found closed before the call was
  handed to it, the TCP connection was refused, or the server answered the call's own POST with 404 for an expired
  session id, before accepting it); a call that may have reached the tool is never retried, since that could repeat
  its side effect.

Callers never see an `mcp`, `httpx2` or `anyio` exception: they are converted here.

A server may ask a question mid-call (elicitation): it is relayed to the person who delegated the call through the
call's `HumanChannel` (adapters/mcp_elicitation.py), and the time the person takes is added to the call's timeout;
with no one to ask, the question is declined. A server asking for the client's roots (`roots/list`) is given those
the admin configured (none by default: the bot serves no files); one asking to use the client's model
(`sampling/createMessage`) is answered by the agent's `Sampler` (the bot's model behind the tenant's gate, text only,
no tools) when the operator turned sampling on, and otherwise declined with the reason. The bot declares both, so a
server does not hide the tools that may ask, and a tool whose request is declined fails saying why.

As for A2A, the gate in front of every agent (`planner/governance/gated_agent.py`) still cuts the whole call at the
request's timeout and its grace. Progress notifications are kept as the result's steps, and told to the call's
`HumanChannel` as they arrive.

An answer over `RESULT_CAP_BYTES`, over either transport, is kept whole as an `artifact` evidence and the output is an
excerpt; HTTP messages are read up to 16 MiB (the SDK's 1 MiB default turned a big answer into a dropped connection).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import dataclasses
import ipaddress
import json
import logging
import math
import re
import sys
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, NoReturn, Self, TextIO
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp import types as mcp_types
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.session import ClientRequestContext
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from pydantic import BaseModel, ValidationError

from adapters import mcp_elicitation
from adapters.egress import UNREACHABLE, Egress, EgressTransport
from adapters.mcp_oauth import GrantStore, MemoryGrantStore, PersonOAuthProvider, PersonTokens, SignInRefused
from adapters.not_sent import NotSent
from adapters.stdio_commands import StdioCommands
from planner.domain.delegations import MAX_TIMEOUT_SECONDS, DelegationStatus
from planner.domain.governance import Verdict
from planner.domain.redaction import redact_args, redact_url, redacted
from planner.ports import (
    Agent,
    AgentConfigInvalid,
    AgentHealth,
    AgentNotReached,
    AgentTimeout,
    AgentUnavailable,
    Capability,
    DelegationRequest,
    DelegationResult,
    Evidence,
    HumanChannel,
    Sampler,
    SamplingDeclined,
    SamplingRequest,
    SignInChannel,
    UnknownCapability,
    signing_in,
)

logger = logging.getLogger(__name__)

TransportKind = Literal["stdio", "http"]
OAuthGrant = Literal["client_credentials", "authorization_code"]
_FIELDS = (
    "transport",
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "bearer_token",
    "headers",
    "capabilities",
    "connect_timeout_seconds",
    "answer_seconds",
    "timeout_seconds",
    "capabilities_timeouts",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
    "roots",
    "oauth_grant",
    "oauth_client_metadata_url",
    "oauth_private_key",
    "oauth_signing_algorithm",
)


def _sampling_declined(declined: SamplingDeclined) -> str:
    """What a server whose sampling request was declined is told (a JSON-RPC error's message)."""
    if declined.policy is None:
        return f"Sampling declined: {declined.reason}"
    wait = " (it needs a person's approval, which a call cannot wait for)" if declined.policy is Verdict.FLAG else ""
    said = "; ".join(str(getattr(reason, "value", reason)) for reason in declined.reasons if str(reason).strip())
    return f"Sampling declined: this bot's policy does not lend its model here{wait}" + (f": {said}" if said else ".")


SAMPLING_DECLINED = (
    "Sampling declined: this Chief of Staff does not lend its language model to agents (its operator has not turned "
    "sampling on). Use a tool that does not need the client's model, or ask the operator."
)
"""What a server asking for `sampling/createMessage` is answered (as a JSON-RPC error) while sampling is off."""
_MAX_TOOL_PAGES = 100
RESULT_CAP_BYTES = 256 * 1024
"""An answer larger than this is kept whole as an artifact (evidence the owner opens from a link of ours), and the
delegation's output is an excerpt of it."""
EXCERPT_CHARS = 4000
_MOST_MESSAGE_BYTES = 16 * 1024 * 1024
"""The largest message read from an HTTP server (the SDK's default, 1 MiB, made a big answer a dropped connection)."""
_CONNECTIONS = httpx2.Limits(max_connections=None, max_keepalive_connections=100, keepalive_expiry=2.0)
"""The HTTP connections to one server: as many as calls in flight (a call holds its POST's connection until the tool
answers; the client's default of 100 made the 101st concurrent call wait for one to end). Up to 100 are kept open
idle, for 2 s: well before a server closes them (uvicorn, which most Python servers run on, after 5 s, the client's
default too, so a call could go out on a connection the server was closing; the SDK then ends the whole session)."""
_DEFAULT_ANSWER_SECONDS = 300.0
_CLOSE_GRACE_SECONDS = 10.0
_AUTH_STATUSES = (401, 403)
_CLIENT_INFO = mcp_types.Implementation(name="chief-of-staff", version="0.1")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "accept",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
    }
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


# Configuration -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MCPConfig:
    """How to reach an MCP agent; validated on construction, raising `AgentConfigInvalid` listing every problem."""

    name: str
    transport: TransportKind
    command: str = ""
    """stdio: the program that serves MCP on its stdin and stdout."""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    """stdio: extra environment for the server (API keys go here); never shown."""
    cwd: str | None = None
    url: str = ""
    """http: the streamable HTTP endpoint, e.g. https://agent.vendor.example/mcp."""
    bearer_token: str | None = None
    """http: sent as `Authorization: Bearer …`; never shown."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """http: extra request headers (`X-Api-Key`…); the values of secret-looking ones are never shown."""
    oauth_client_id: str | None = None
    """http: a service agent's OAuth 2.1 client, whose token the client-credentials grant gets from the authorization
    server the MCP server names (and gets again when it expires)."""
    oauth_client_secret: str | None = None
    """http: that client's secret; never shown."""
    oauth_scope: str | None = None
    oauth_private_key: str | None = None
    """http, client credentials: instead of a secret, the client's private key (PEM), with which the bot signs a
    short-lived assertion for each token request (`private_key_jwt`); never shown."""
    oauth_signing_algorithm: str = "RS256"
    """The algorithm of `oauth_private_key` (RS256, ES256…)."""
    oauth_grant: OAuthGrant | None = None
    """http: how the bot gets its tokens. `client_credentials` (the default with a client id and secret): as a service
    agent, one token for everyone. `authorization_code`: as each person who delegates, who signs in once from a card
    in Teams (adapters/mcp_oauth.py); the client id (and secret) are then optional, for a client the admin registered
    beforehand, else the bot registers itself."""
    oauth_client_metadata_url: str | None = None
    """http, `authorization_code`: an https URL where the bot's client metadata document is published, used as its
    client id by authorization servers that support client ID metadata documents (instead of registering)."""
    capabilities: Mapping[str, str] | None = None
    """Capability name -> MCP tool name. None: every tool is a capability of the same name."""
    connect_timeout_seconds: float = 30.0
    """How long starting or reaching the server, the handshake and listing its tools may take."""
    answer_seconds: float = _DEFAULT_ANSWER_SECONDS
    """How long the delegating person has to answer a question the server asks mid-call (elicitation); that wait
    does not count against the delegation's own timeout."""
    timeout_seconds: float | None = None
    """How long a call may take, for a delegation that does not say (None: the planner's default, 60 s)."""
    capabilities_timeouts: Mapping[str, float] = field(default_factory=dict)
    """Capability name -> how long a call of it may take, over `timeout_seconds` (a slow report, a quick lookup)."""
    roots: tuple[Mapping[str, str], ...] = ()
    """What the bot answers a server's `roots/list` with: `{"uri": "file:///…", "name": "…"}` each, as an admin
    configures them. The bot serves no files, so by default none: a server that asks is told there are none."""

    def __post_init__(self) -> None:
        if isinstance(self.args, list):
            object.__setattr__(self, "args", tuple(self.args))
        if isinstance(self.roots, list):
            object.__setattr__(self, "roots", tuple(self.roots))
        problems = _problems(self)
        if problems:
            raise AgentConfigInvalid(problems)

    def __repr__(self) -> str:
        if self.transport == "http":
            where = f"url={redact_url(self.url)!r}"
        else:
            where = f"command={self.command!r}, args={redact_args(self.args)!r}"
        secrets = []
        if self.bearer_token:
            secrets.append("bearer_token=<hidden>")
        if self.oauth_client_secret:
            secrets.append("oauth_client_secret=<hidden>")
        if self.oauth_private_key:
            secrets.append("oauth_private_key=<hidden>")
        if self.headers:
            secrets.append(f"headers=<{', '.join(sorted(self.headers))}>")
        if self.env:
            secrets.append(f"env=<{len(self.env)} hidden>")
        return f"MCPConfig({', '.join([f'name={self.name!r}', f'transport={self.transport!r}', where, *secrets])})"

    @property
    def acts_as_person(self) -> bool:
        """Whether each person who delegates signs in (the authorization-code grant), so calls use their own grant."""
        return self.oauth_grant == "authorization_code"

    @property
    def endpoint(self) -> str:
        """Where the agent is, for messages: its URL (secrets in it masked), or the command that starts it."""
        return redact_url(self.url) if self.transport == "http" else self.command

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str | None = None) -> MCPConfig:
        """A config from its JSON form (the fields above; `name` may come apart); raises `AgentConfigInvalid`."""
        problems = [f"unknown field {key!r}" for key in data if key not in (*_FIELDS, "name")]
        values = {key: data[key] for key in _FIELDS if key in data}
        for key in ("args", "roots"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        try:
            config = cls(name=name if name is not None else data.get("name", ""), **values)
        except AgentConfigInvalid as invalid:
            raise AgentConfigInvalid(problems + invalid.problems) from None
        except TypeError as error:  # a value of the wrong shape that the checks could not name
            raise AgentConfigInvalid([*problems, str(error)]) from None
        if problems:
            raise AgentConfigInvalid(problems)
        return config

    def to_dict(self, *, with_secrets: bool = False) -> dict[str, Any]:
        """The JSON form, without `name`; the token and environment only when asked (to encrypt them)."""
        data: dict[str, Any] = {"transport": self.transport, "connect_timeout_seconds": self.connect_timeout_seconds}
        if self.answer_seconds != _DEFAULT_ANSWER_SECONDS:
            data["answer_seconds"] = self.answer_seconds
        if self.timeout_seconds is not None:
            data["timeout_seconds"] = self.timeout_seconds
        if self.capabilities_timeouts:
            data["capabilities_timeouts"] = dict(self.capabilities_timeouts)
        if self.transport == "stdio":
            data.update(command=self.command, args=list(self.args))
            if self.cwd is not None:
                data["cwd"] = self.cwd
            if with_secrets and self.env:
                data["env"] = dict(self.env)
        else:
            data["url"] = self.url if with_secrets else redact_url(self.url)
            if with_secrets and self.bearer_token:
                data["bearer_token"] = self.bearer_token
            if self.oauth_client_id:
                data["oauth_client_id"] = self.oauth_client_id
            if with_secrets and self.oauth_client_secret:
                data["oauth_client_secret"] = self.oauth_client_secret
            if with_secrets and self.oauth_private_key:
                data["oauth_private_key"] = self.oauth_private_key
            if self.oauth_private_key:
                data["oauth_signing_algorithm"] = self.oauth_signing_algorithm
            if self.oauth_scope:
                data["oauth_scope"] = self.oauth_scope
            if self.oauth_grant:
                data["oauth_grant"] = self.oauth_grant
            if self.oauth_client_metadata_url:
                data["oauth_client_metadata_url"] = self.oauth_client_metadata_url
            if self.headers:
                data["headers"] = dict(self.headers) if with_secrets else redacted(dict(self.headers))
        if self.capabilities is not None:
            data["capabilities"] = dict(self.capabilities)
        if self.roots:
            data["roots"] = [dict(root) for root in self.roots]
        return data


def _is_text_map(value: object) -> bool:
    return isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _problems(config: MCPConfig) -> list[str]:
    problems: list[str] = []
    if not isinstance(config.name, str) or not config.name.strip():
        problems.append("name is required (a short name like acme-email)")
    if config.transport == "stdio":
        problems += _stdio_problems(config)
    elif config.transport == "http":
        problems += _http_problems(config)
    else:
        problems.append(f"transport must be 'stdio' or 'http', not {config.transport!r}")
    if config.capabilities is not None:
        if not _is_text_map(config.capabilities) or not config.capabilities:
            problems.append("capabilities must map capability names to tool names, e.g. {'draft': 'draft_email'}")
        elif any(not key.strip() or not value.strip() for key, value in config.capabilities.items()):
            problems.append("capabilities: capability and tool names must not be empty")
    for name in ("connect_timeout_seconds", "answer_seconds"):
        if not _is_seconds(getattr(config, name), math.inf):
            problems.append(f"{name} must be a positive number of seconds")
    if config.timeout_seconds is not None and not _is_seconds(config.timeout_seconds, MAX_TIMEOUT_SECONDS):
        problems.append(f"timeout_seconds must be a number of seconds above 0, {MAX_TIMEOUT_SECONDS:g} at most")
    timeouts = config.capabilities_timeouts
    if not isinstance(timeouts, Mapping) or not all(
        isinstance(name, str) and _is_seconds(seconds, MAX_TIMEOUT_SECONDS) for name, seconds in timeouts.items()
    ):
        problems.append(
            f"capabilities_timeouts must map capability names to seconds above 0, {MAX_TIMEOUT_SECONDS:g} at most, "
            "e.g. {'slow_report': 600}"
        )
    problems += _roots_problems(config.roots)
    return problems


def _roots_problems(roots: object) -> list[str]:
    example = "e.g. [{'uri': 'file:///srv/briefs', 'name': 'Briefs'}]"
    if not isinstance(roots, tuple) or not all(_is_text_map(root) for root in roots):
        return [f"roots must be a list of {{uri, name}}, {example}"]
    problems = []
    for number, root in enumerate(roots, 1):
        try:
            valid = not set(root) - {"uri", "name"} and bool(mcp_types.Root.model_validate(dict(root)))
        except ValidationError:
            valid = False
        if not valid:
            problems.append(f"roots #{number}: a root is a file:// uri and an optional name, {example}")
    return problems


def _is_seconds(value: object, most: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= most and value < math.inf


def _stdio_problems(config: MCPConfig) -> list[str]:
    problems: list[str] = []
    if not isinstance(config.command, str) or not config.command.strip():
        problems.append("command is required for stdio (the program that serves MCP on stdin/stdout)")
    if not isinstance(config.args, tuple) or not all(isinstance(arg, str) for arg in config.args):
        problems.append("args must be a list of strings")
    if not _is_text_map(config.env):
        problems.append("env must map variable names to string values")
    if config.cwd is not None and not isinstance(config.cwd, str):
        problems.append("cwd must be a directory path")
    if config.url:
        problems.append("url is only for http: a stdio agent is started by its command")
    if config.bearer_token:
        problems.append("bearer_token is only for http: pass a stdio server its credentials in env")
    if config.headers:
        problems.append("headers are only for http")
    return problems


def _http_problems(config: MCPConfig) -> list[str]:
    problems: list[str] = []
    if not isinstance(config.url, str) or not config.url.strip():
        return ["url is required for http (the server's streamable HTTP endpoint)"]
    try:
        parts = urlsplit(config.url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        return ["url is not a valid URL"]
    if parts.scheme not in ("http", "https"):
        # Only the scheme is echoed: the rest of a bad URL might hold a credential.
        problems.append(f"url must be http(s), not {parts.scheme or 'schemeless'}")
    if not parts.hostname:
        problems.append("url has no host")
    if parts.username is not None or parts.password is not None:
        problems.append("url must not carry credentials: put the token in bearer_token")
    token = config.bearer_token
    if token is not None:
        if not isinstance(token, str) or not token or any(ch.isspace() for ch in token):
            problems.append("bearer_token must be one word without spaces or line breaks")
        elif parts.scheme == "http" and not _is_loopback(parts.hostname):
            problems.append("a bearer token is only sent over https (or plain http to a loopback address)")
    problems += _oauth_problems(config, parts.scheme, parts.hostname)
    if config.command:
        problems.append("command is only for stdio: an http agent is reached at its url")
    if config.env:
        problems.append("env is only for stdio")
    problems += _header_problems(config)
    return problems


def _oauth_problems(config: MCPConfig, scheme: str, host: str | None) -> list[str]:
    problems: list[str] = []
    token = config.bearer_token
    client, secret, grant = config.oauth_client_id, config.oauth_client_secret, config.oauth_grant
    if grant not in (None, "client_credentials", "authorization_code"):
        return ["oauth_grant must be 'client_credentials' (a service agent) or 'authorization_code' (each person)"]
    if any(value is not None and (not isinstance(value, str) or not value.strip()) for value in (client, secret)):
        problems.append("oauth_client_id and oauth_client_secret must be non-empty text")
    elif grant == "authorization_code":
        if secret is not None and client is None:
            problems.append("oauth_client_secret needs its oauth_client_id")
        if token is not None or any(name.lower() == "authorization" for name in config.headers):
            problems.append("a person's sign-in replaces a bearer token or an Authorization header: give one only")
        if scheme == "http" and not _is_loopback(host):
            problems.append("a person's sign-in is only used over https (or plain http to a loopback address)")
        metadata_url = config.oauth_client_metadata_url
        if metadata_url is not None and (
            not isinstance(metadata_url, str)
            or urlsplit(metadata_url).scheme != "https"
            or urlsplit(metadata_url).path in ("", "/")
        ):
            problems.append("oauth_client_metadata_url must be an https URL with a path (the client metadata document)")
    elif config.oauth_private_key is not None:
        problems += _private_key_problems(config)
    elif (client is None) != (secret is None):
        problems.append("oauth_client_id and oauth_client_secret go together (a service agent's OAuth client)")
    elif grant == "client_credentials" and client is None:
        problems.append("oauth_grant client_credentials needs oauth_client_id and oauth_client_secret")
    elif client is not None:
        if token is not None or any(name.lower() == "authorization" for name in config.headers):
            problems.append("give either an OAuth client or a bearer token, not both")
        if scheme == "http" and not _is_loopback(host):
            problems.append("OAuth credentials are only sent over https (or plain http to a loopback address)")
    if config.oauth_client_metadata_url is not None and grant != "authorization_code":
        problems.append("oauth_client_metadata_url is only for oauth_grant authorization_code")
    if config.oauth_scope is not None and not isinstance(config.oauth_scope, str):
        problems.append("oauth_scope must be a space-separated list of scopes")
    return problems


_SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


def _private_key_problems(config: MCPConfig) -> list[str]:
    problems: list[str] = []
    key = config.oauth_private_key
    if not isinstance(key, str) or "PRIVATE KEY-----" not in key:
        problems.append("oauth_private_key must be a private key in PEM form (-----BEGIN PRIVATE KEY-----…)")
    if config.oauth_client_id is None or config.oauth_client_secret is not None:
        problems.append("oauth_private_key goes with oauth_client_id, and instead of oauth_client_secret")
    if config.oauth_signing_algorithm not in _SIGNING_ALGORITHMS:
        problems.append(f"oauth_signing_algorithm must be one of {', '.join(_SIGNING_ALGORITHMS)}")
    return problems


def _header_problems(config: MCPConfig) -> list[str]:
    if not _is_text_map(config.headers):
        return ["headers must map header names to string values, e.g. {'X-Api-Key': '…'}"]
    problems: list[str] = []
    for name, value in config.headers.items():
        if not _HEADER_NAME.fullmatch(name):
            problems.append(f"headers: {name[:40]!r} is not a header name")
        elif name.lower() in _RESERVED_HEADERS:
            problems.append(f"headers: {name} is set by the client itself")
        elif name.lower() == "authorization" and config.bearer_token:
            problems.append("headers: give either bearer_token or an Authorization header, not both")
        if any(ch in value for ch in "\r\n\0"):
            problems.append(f"headers: the value of {name[:40]!r} must be one line")
    return problems


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MCPAdapterFactory:
    """Builds MCP agents for the adapter registry (`planner.services.registry.AdapterFactory`, kind `mcp`), from
    configs that come from chat: a stdio config names an entry of `commands`, and agents connect only where `egress`
    allows.

    `environ`: the bot's environment, of which a stdio child gets only `PATH`, `HOME`, `LANG` and `TZ`.
    """

    secret_fields: Collection[str] = ("bearer_token", "env", "oauth_client_secret", "oauth_private_key")
    tools_need_enabling = True
    """A server's tools are the vendor's: an admin enables each, and its definition is pinned then."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = _utc_now,
        commands: StdioCommands | None = None,
        egress: Egress | None = None,
        environ: Mapping[str, str] | None = None,
        sampler: Sampler | None = None,
        grants: Callable[[str], GrantStore] | None = None,
        redirect_uri: str = "",
    ) -> None:
        """`sampler`: the bot's model (behind the tenant's gate) lent to servers that ask; None: sampling is off.
        `grants`: where each adapter, by name, keeps what people granted it (the registry's, sealed); without it,
        in memory. `redirect_uri`: the bot's OAuth callback (`<COS_PUBLIC_URL>/api/oauth/callback`), where a person's
        sign-in returns; without it no adapter can have people sign in."""
        self._sampler = sampler
        self._clock = clock
        self._commands = commands if commands is not None else StdioCommands()
        self._egress = egress if egress is not None else Egress()
        self._environ = environ
        self._grants = grants
        self._redirect_uri = redirect_uri

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The config checked and normalised; raises `AgentConfigInvalid` naming each problem."""
        return self._checked(config, name="-").to_dict(with_secrets=True)

    def build(self, name: str, config: Mapping[str, Any]) -> MCPAgent:
        """An agent that connects on its first call; raises `AgentConfigInvalid` (also when the operator's allow-list
        no longer has its command, or its address is no longer allowed)."""
        checked = self._checked(config, name=name)
        if checked.transport == "stdio":
            launch = self._commands.launch(checked.command, checked.args, checked.env, environ=self._environ)
            checked = dataclasses.replace(
                checked, command=launch.command, args=launch.args, env=launch.env, cwd=launch.cwd
            )
        if checked.acts_as_person and not self._redirect_uri:
            raise AgentConfigInvalid(
                ["people cannot sign in: the operator has not set the bot's public address (COS_PUBLIC_URL)"]
            )
        return MCPAgent(
            checked,
            clock=self._clock,
            egress=self._egress,
            sampler=self._sampler,
            grants=self._grants(name) if self._grants is not None else None,
            redirect_uri=self._redirect_uri,
        )

    def _checked(self, config: Mapping[str, Any], *, name: str) -> MCPConfig:
        problems: list[str] = []
        try:
            parsed: MCPConfig | None = MCPConfig.from_dict(config, name=name)
        except AgentConfigInvalid as invalid:
            problems += invalid.problems
            parsed = None
        transport = config.get("transport") if isinstance(config, Mapping) else None
        if transport == "stdio":
            problems += self._commands.problems(
                config.get("command"), config.get("args"), config.get("env"), config.get("cwd")
            )
        elif transport == "http" and parsed is not None:
            host_problem = self._egress.host_problem(urlsplit(parsed.url).hostname or "")
            if host_problem is not None:
                problems.append(f"url: {host_problem}")
        if problems or parsed is None:
            raise AgentConfigInvalid(list(dict.fromkeys(problems)))
        return parsed


def _errlog() -> TextIO:
    """Our stderr for a stdio server's diagnostics, or the process's own when ours was replaced (no descriptor)."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return sys.__stderr__ or sys.stderr
    return sys.stderr


# The session -------------------------------------------------------------------------------------------------------


@dataclass
class _Attempt:
    """What the transport saw of one call, to tell a call that never left from one that may have run."""

    handed_over: bool = False
    reached: bool = False
    """The server accepted the call's request: from then on nothing it or the network does proves that it did not run
    (a stream resume refused by a restarted server, a reconnect refused after a crash)."""
    refused: bool = False
    """The request provably did not reach the tool: connection refused, or the server no longer knew our session,
    before the server accepted it."""
    http_status: int | None = None


# The caller's task sets this around a call; the SDK runs each HTTP request in a copy of the sender's context.
_ATTEMPT: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar("mcp_attempt", default=None)

_MOST_STEPS = 20
_STEP_CHARS = 200


@dataclass(eq=False)
class _Call:
    """One delegation's call in flight: who can be asked what the server asks, and the progress it reported."""

    human: HumanChannel | None
    scope: anyio.CancelScope
    """The call's timeout: a wait for the person's answer is added to it, so the person's time is not the agent's."""
    request: DelegationRequest | None = None
    steps: list[str] = field(default_factory=list)

    async def progressed(self, progress: float, total: float | None, message: str | None) -> None:
        """A progress notification: kept as a step (the last ones, each cut to length) for the delegation's card, and
        told to the person following the delegation, if any."""
        step = f"{progress:g}/{total:g}" if total else f"{progress:g}"
        if message:
            step = f"{step}: {mcp_elicitation.plain(message, limit=_STEP_CHARS)}"
        self.steps.append(step)
        del self.steps[:-_MOST_STEPS]
        if self.human is not None:
            await self.human.progressed(step)

    async def ask(self, agent: str, params: mcp_types.ElicitRequestParams, seconds: float) -> mcp_types.ElicitResult:
        """Relay the server's question to the person; the call's deadline moves by the time the person took."""
        assert self.human is not None
        planned = self.scope.deadline
        asked_at = anyio.current_time()
        self.scope.deadline = planned + seconds + 1
        try:
            return await mcp_elicitation.relay(agent, params, self.human, answer_seconds=seconds)
        finally:
            self.scope.deadline = planned + (anyio.current_time() - asked_at)


# The call whose task this is: set by the caller; the SDK runs a server's request on an HTTP call's own stream in a
# copy of the caller's context, and a 2026-era server's input requests in the caller's task.
_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("mcp_call", default=None)


class _ObservingTransport(httpx2.AsyncBaseTransport):
    """Notes, per call, whether the HTTP request was refused before it reached the server, and its error status."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        attempt = _ATTEMPT.get()
        try:
            response = await self._inner.handle_async_request(request)
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout):
            if attempt is not None and not attempt.reached:
                attempt.refused = True
            raise
        if attempt is None:
            return response
        if response.status_code >= 400:
            attempt.http_status = response.status_code
            # The spec's answer to an unknown session id: the request was not processed, start a new session. Only
            # for the call's own POST: a 404 to a resume (GET) means the call was accepted before the server lost it.
            unknown_session = response.status_code == 404 and "mcp-session-id" in request.headers
            if unknown_session and request.method == "POST" and not attempt.reached:
                attempt.refused = True
        elif request.method == "POST":
            attempt.reached = True
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _WatchedReadStream:
    """The session's read stream, calling `on_end` when the server side closes it."""

    def __init__(self, inner: Any, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    @property
    def last_context(self) -> contextvars.Context | None:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            item: SessionMessage | Exception = await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._on_end()
            raise
        return item

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _WatchedWriteStream:
    """The session's write stream, marking the current call as handed over before its request is written."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def send(self, item: SessionMessage, /) -> None:
        attempt = _ATTEMPT.get()
        if attempt is not None:
            # Marked before the send: a send that raises may still have delivered.
            attempt.handed_over = True
        await self._inner.send(item)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _Tokens:
    """The OAuth tokens of an agent's client, kept across its sessions (in memory: a restart gets a new one)."""

    def __init__(self) -> None:
        self._tokens: OAuthToken | None = None
        self._client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self._tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self._tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self._client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self._client = client_info


@dataclass(frozen=True, kw_only=True)
class _Signer:
    """The person a session acts for: how to ask them to sign in, and where their grant is kept."""

    channel: SignInChannel
    tokens: PersonTokens
    redirect_uri: str


class _Session:
    """One live MCP session, opened and closed by its own background task; callers use `client` from theirs."""

    def __init__(
        self,
        config: MCPConfig,
        *,
        stderr: TextIO | None,
        egress: Egress,
        tokens: _Tokens,
        sampler: Sampler | None,
        person: _Signer | None,
    ) -> None:
        self._config = config
        self._sampler = sampler
        self._tokens = tokens
        self._person = person
        self._waiting: set[anyio.CancelScope] = set()
        """The deadlines of the callers waiting for the session to open, moved while a person signs in."""
        self._stderr = stderr
        self._egress = egress
        self.client: Client | None = None
        self.tools: dict[str, mcp_types.Tool] = {}
        self.calls: set[_Call] = set()
        self.error: BaseException | None = None
        self.opening = _Attempt()
        self._ready = anyio.Event()
        self._stop = anyio.Event()
        self._ended = anyio.Event()
        self.broken = False
        self.opened = False
        self._task: asyncio.Task[None] | None = None
        self._scope: anyio.CancelScope | None = None

    def start(self) -> None:
        """Start opening the session in the background."""
        # A copy of the caller's context, cleared of its call: the session's own requests are nobody's call.
        context = contextvars.copy_context()
        context.run(_ATTEMPT.set, None)
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"mcp session {self._config.name}", context=context
        )

    def mark_broken(self) -> None:
        """The session can no longer be used: let its task release it."""
        self.broken = True
        self._stop.set()

    @property
    def ended(self) -> bool:
        """Its task has released it."""
        return self._ended.is_set()

    def retire(self) -> None:
        """No new call uses the session (the next one opens another), and its task releases it once the calls in
        flight on it have ended: one call's HTTP error says nothing of theirs, which the server may still answer."""
        self.broken = True
        if not self.calls:
            self._stop.set()

    def call_ended(self, call: _Call) -> None:
        self.calls.discard(call)
        if self.broken and not self.calls:
            self._stop.set()

    async def ready(self, scope: anyio.CancelScope | None = None) -> Client:
        """The open session's client, once open; raises `AgentNotReached` if it could not be opened.

        `scope`: the caller's deadline, moved by the time a person takes to sign in while it waits."""
        if scope is not None:
            self._waiting.add(scope)
        try:
            await self._ready.wait()
        finally:
            self._waiting.discard(scope) if scope is not None else None
        if self.client is None:
            raise AgentNotReached(self._config.name, self.describe(self.error))
        return self.client

    async def close(self) -> None:
        """Close the session and wait until its process or HTTP client is released."""
        self.mark_broken()
        if self._task is None:
            return
        # Shielded so a cancelled caller still leaves nothing running; every wait here is bounded.
        with anyio.move_on_after(_CLOSE_GRACE_SECONDS, shield=True):
            await self._ended.wait()
        if not self._ended.is_set() and self._scope is not None:
            # A server that accepts but never answers would hold the goodbye (an HTTP DELETE) forever.
            self._scope.cancel()
            with anyio.CancelScope(shield=True):
                await self._ended.wait()

    async def _run(self) -> None:
        _ATTEMPT.set(self.opening)
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                scope.deadline = anyio.current_time() + self._config.connect_timeout_seconds
                async with contextlib.AsyncExitStack() as stack:
                    transport = await self._transport(stack)
                    client = await stack.enter_async_context(
                        Client(
                            transport,
                            client_info=_CLIENT_INFO,
                            elicitation_callback=self._elicit,
                            list_roots_callback=self._roots,
                            sampling_callback=self._sample,
                        )
                    )
                    self.tools = await _list_tools(client)
                    scope.deadline = math.inf
                    self.client = client
                    self.opened = True
                    self._ready.set()
                    logger.info("MCP agent %r connected to %s", self._config.name, self._config.endpoint)
                    await self._stop.wait()
            if scope.cancelled_caught and self.client is None:
                self.error = _ConnectDeadline()
        # This task is the top of its own job: whatever ended the session is kept for the callers to be told.
        except Exception as error:
            self.error = error
            if self.client is not None:
                logger.warning("MCP agent %r lost its session: %s", self._config.name, self.describe(error))
        finally:
            self.broken = True
            self.client = None
            self._ready.set()
            self._ended.set()

    async def _elicit(
        self, context: ClientRequestContext, params: mcp_types.ElicitRequestParams
    ) -> mcp_types.ElicitResult | mcp_types.ErrorData:
        """A server's question mid-call, relayed to the person who delegated the call it belongs to.

        Over stdio a request does not say which call it is about: it goes to the one call in flight that has a person
        to ask, and is declined when there are several (asking the wrong person would leak one's task to another)."""
        call = _CALL.get()
        if call is None or call not in self.calls:
            askable = [each for each in self.calls if each.human is not None]
            call = askable[0] if len(askable) == 1 else None
        if call is None or call.human is None:
            logger.info("MCP agent %r asked a question with no one to relay it to; declined", self._config.name)
            return mcp_types.ElicitResult(action="decline")
        return await call.ask(self._config.name, params, self._config.answer_seconds)

    async def _roots(self, context: ClientRequestContext) -> mcp_types.ListRootsResult:
        """The roots the admin configured (none by default: the bot serves no files)."""
        roots = [mcp_types.Root.model_validate(dict(root)) for root in self._config.roots]
        return mcp_types.ListRootsResult(roots=roots)

    async def _sample(
        self, context: ClientRequestContext, params: mcp_types.CreateMessageRequestParams
    ) -> mcp_types.CreateMessageResult | mcp_types.ErrorData:
        """A server asking to use the bot's model: answered by the sampler (text only, no tools) when the operator
        turned sampling on, otherwise declined with the reason, so the tool can say why it cannot run (declaring
        sampling keeps the tools that may ask for it listed, rather than hidden from the admin)."""
        name = self._config.name
        if self._sampler is None:
            logger.info("MCP agent %r asked to sample the bot's model; declined (sampling is off)", name)
            return mcp_types.ErrorData(code=mcp_types.INVALID_REQUEST, message=SAMPLING_DECLINED)
        call = _CALL.get()
        if call is None or call not in self.calls:
            # Over stdio the request names no call: the only one in flight, or none (then nobody is on whose behalf).
            call = next(iter(self.calls)) if len(self.calls) == 1 else None
        request, problem = _sampling_request(name, params, call.request if call is not None else None)
        if request is None:
            return mcp_types.ErrorData(code=mcp_types.INVALID_PARAMS, message=f"Sampling declined: {problem}.")
        try:
            sampled = await self._sampler.sample(request)
        except SamplingDeclined as declined:
            logger.info("MCP agent %r: its sampling request was declined: %s", name, declined)
            return mcp_types.ErrorData(code=mcp_types.INVALID_REQUEST, message=_sampling_declined(declined))
        return mcp_types.CreateMessageResult(
            role="assistant",
            content=mcp_types.TextContent(type="text", text=sampled.text),
            model=sampled.model,
            stop_reason="maxTokens" if sampled.truncated else "endTurn",
        )

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        config = self._config
        if config.transport == "stdio":
            params = StdioServerParameters(
                command=config.command, args=list(config.args), env=dict(config.env) or None, cwd=config.cwd
            )
            inner = stdio_client(params, errlog=self._stderr or _errlog())
        else:
            headers = dict(config.headers)
            if config.bearer_token:
                headers["Authorization"] = f"Bearer {config.bearer_token}"
            checked = EgressTransport(httpx2.AsyncHTTPTransport(limits=_CONNECTIONS), self._egress, agent=config.name)
            auth: httpx2.Auth | None = None
            if self._person is not None:
                auth = PersonOAuthProvider(
                    server_url=config.url,
                    tokens=self._person.tokens,
                    redirect_uri=self._person.redirect_uri,
                    sign_in=self._sign_in,
                    scope=config.oauth_scope,
                    client_id=config.oauth_client_id,
                    client_secret=config.oauth_client_secret,
                    client_metadata_url=config.oauth_client_metadata_url,
                )
            elif config.oauth_client_id and config.oauth_private_key:
                signed = SignedJWTParameters(
                    issuer=config.oauth_client_id,
                    subject=config.oauth_client_id,
                    signing_key=config.oauth_private_key,
                    signing_algorithm=config.oauth_signing_algorithm,
                )
                auth = PrivateKeyJWTOAuthProvider(
                    server_url=config.url,
                    storage=self._tokens,
                    client_id=config.oauth_client_id,
                    assertion_provider=signed.create_assertion_provider(),
                    scope=config.oauth_scope,
                )
            elif config.oauth_client_id and config.oauth_client_secret:
                auth = ClientCredentialsOAuthProvider(
                    server_url=config.url,
                    storage=self._tokens,
                    client_id=config.oauth_client_id,
                    client_secret=config.oauth_client_secret,
                    scope=config.oauth_scope,
                )
            http = httpx2.AsyncClient(
                auth=auth,
                headers=headers or None,
                timeout=httpx2.Timeout(config.connect_timeout_seconds, read=None),
                transport=_ObservingTransport(checked),
            )
            await stack.enter_async_context(http)
            inner = streamable_http_client(config.url, http_client=http, max_sse_event_size=_MOST_MESSAGE_BYTES)
        return self._watched(inner)

    async def _sign_in(self, authorization_url: str) -> Mapping[str, str]:
        """Send the person the sign-in and wait for the callback; the wait moves the session's and its callers'
        deadlines, since a person's time is not the server's."""
        assert self._person is not None
        address = urlsplit(authorization_url)
        if address.scheme != "https" and not (address.scheme == "http" and _is_loopback(address.hostname)):
            # The address is the vendor's to choose: a person is only ever sent to an https page.
            raise SignInRefused("an authorization page not served over https")
        seconds = self._config.answer_seconds
        scopes = [scope for scope in (self._scope, *self._waiting) if scope is not None]
        planned = [(scope, scope.deadline) for scope in scopes]
        asked_at = anyio.current_time()
        for scope, deadline in planned:
            scope.deadline = deadline + seconds + 1
        try:
            logger.info("MCP agent %r: asking a person to sign in", self._config.name)
            return await self._person.channel.sign_in(self._config.name, authorization_url, timeout_seconds=seconds)
        finally:
            for scope, deadline in planned:
                scope.deadline = deadline + (anyio.current_time() - asked_at)

    @contextlib.asynccontextmanager
    async def _watched(self, inner: Any) -> AsyncIterator[tuple[Any, Any]]:
        async with inner as (read_stream, write_stream):
            yield _WatchedReadStream(read_stream, self.mark_broken), _WatchedWriteStream(write_stream)

    def ended_during(self, tool: str, error: BaseException | None) -> str:
        """Why a call that may have reached the tool failed, saying it was not retried."""
        leaf = _leaf(error)
        cause = f" ({leaf})" if leaf is not None and str(leaf) and not isinstance(leaf, MCPError) else ""
        return (
            f"the connection to {self._config.endpoint} ended during the call to {tool}{cause}; "
            "not retried, since the call may have taken effect"
        )

    def failed_during(self, tool: str, status: int) -> str:
        """Why a call the server answered with an HTTP error failed, saying it was not retried."""
        return (
            f"{self._config.endpoint} answered HTTP {status} to the call to {tool}; "
            "not retried, since the call may have taken effect"
        )

    def describe(self, error: BaseException | None, attempt: _Attempt | None = None) -> str:
        """Why the session failed, in words an admin can act on."""
        config = self._config
        status = (attempt.http_status if attempt is not None else None) or self.opening.http_status
        leaf = _leaf(error)
        if isinstance(leaf, AgentUnavailable):  # the person did not sign in in time
            return f"{config.endpoint} needs the person to sign in, and they did not finish in time"
        if isinstance(leaf, SignInRefused):
            return f"{config.endpoint}: the sign-in did not authorize the bot ({leaf.error})"
        if status in _AUTH_STATUSES:
            if config.acts_as_person:
                return f"{config.endpoint} refused the person's sign-in (HTTP {status}): they may sign in again"
            if config.oauth_client_id:
                return f"{config.endpoint} refused our OAuth client (HTTP {status}): check its id, secret and scope"
            if config.bearer_token:
                return f"{config.endpoint} refused our credentials (HTTP {status}): check the bearer token"
            return f"{config.endpoint} requires credentials (HTTP {status}): configure a bearer token"
        error = _leaf(error)
        if config.transport == "http" and (
            isinstance(error, _ConnectDeadline | httpx2.ConnectError | httpx2.ConnectTimeout)
            or (isinstance(error, OSError) and not self.opened)
        ):
            # Refused, timed out and not allowed read the same: the words must not tell an open port from a closed one.
            logger.info("MCP agent %r could not connect to %s: %r", config.name, config.endpoint, error)
            return f"{config.endpoint}: {UNREACHABLE}"
        if isinstance(error, _ConnectDeadline):
            return f"{config.endpoint} did not finish connecting within {config.connect_timeout_seconds:g} s"
        if isinstance(error, httpx2.HTTPError):
            return f"HTTP error talking to {config.endpoint}: {type(error).__name__}"
        if isinstance(error, OSError) and config.transport == "stdio" and not self.opened:
            return f"cannot start {config.command!r}: {error.strerror or error}"
        if isinstance(error, MCPError):
            if error.code == mcp_types.CONNECTION_CLOSED:
                if status is not None:
                    return f"{config.endpoint} answered HTTP {status}"
                return f"{config.endpoint} closed the connection: check that it runs and serves MCP (see its log)"
            return f"{config.endpoint} answered with an error: {error.message} (code {error.code})"
        if error is None:
            return f"the session to {config.endpoint} is closed"
        return f"{type(error).__name__} talking to {config.endpoint}: {error}"


_MOST_SAMPLING_TOKENS = 4096
"""The most a server may ask the model to write at once; a larger `maxTokens` is lowered to this."""


def _sampling_request(
    agent: str, params: mcp_types.CreateMessageRequestParams, call: DelegationRequest | None
) -> tuple[SamplingRequest | None, str]:
    """The server's sampling request in our terms, or None and why it cannot be answered: only text, no tools."""
    if params.tools or params.tool_choice:
        return None, "the bot's model is lent without tools"
    messages: list[tuple[str, str]] = []
    for message in params.messages:
        blocks = message.content if isinstance(message.content, list) else [message.content]
        if not all(isinstance(block, mcp_types.TextContent) for block in blocks):
            return None, "only text messages can be sampled (no images, audio or tool results)"
        messages.append(
            (message.role, "\n".join(block.text for block in blocks if isinstance(block, mcp_types.TextContent)))
        )
    if not messages or messages[-1][0] != "user":
        return None, "the last message must be the user's"
    request = SamplingRequest(
        agent=agent,
        messages=tuple(messages),
        system=params.system_prompt or "",
        max_tokens=max(1, min(params.max_tokens, _MOST_SAMPLING_TOKENS)),
        requested_by=call.requested_by if call is not None else "",
        delegation_id=call.delegation_id if call is not None else None,
    )
    return request, ""


class _ConnectDeadline(Exception):
    """The session did not open within the connect timeout."""


def _leaf(error: BaseException | None) -> BaseException | None:
    """The first real error inside (nested) exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


async def _list_tools(client: Client) -> dict[str, mcp_types.Tool]:
    tools: dict[str, mcp_types.Tool] = {}
    cursor: str | None = None
    for _ in range(_MAX_TOOL_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.update((tool.name, tool) for tool in page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


# The agent ---------------------------------------------------------------------------------------------------------


class MCPAgent(Agent):
    """A vendor agent behind an MCP server; connects on first use and keeps one session until `close()`."""

    kind = "mcp"

    def __init__(
        self,
        config: MCPConfig,
        *,
        clock: Callable[[], datetime] = _utc_now,
        stderr: TextIO | None = None,
        egress: Egress | None = None,
        sampler: Sampler | None = None,
        grants: GrantStore | None = None,
        redirect_uri: str = "",
    ) -> None:
        """`stderr`: where a stdio server's diagnostics go (a file with a descriptor); by default, ours.
        `egress`: the addresses an HTTP agent may connect to (by default public ones only).
        `sampler`: the bot's model, lent to a server that asks (sampling); None: such requests are declined.
        `grants`, `redirect_uri`: for an agent that acts as each person (`MCPConfig.acts_as_person`), where their
        grants are kept (by default in memory) and where their sign-in returns (the bot's OAuth callback)."""
        self.config = config
        self._sampler = sampler
        self.name = config.name
        self._clock = clock
        self._stderr = stderr
        self._egress = egress if egress is not None else Egress()
        self._sessions: dict[str, _Session] = {}
        """By person for an agent that acts as each person, else one under ""."""
        self._retired: set[_Session] = set()
        """Replaced sessions that calls were still in flight on: each ends by itself after its last call, or on
        `close()`."""
        self._tokens = _Tokens()
        self._grants: GrantStore = grants if grants is not None else MemoryGrantStore()
        self._redirect_uri = redirect_uri
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"MCPAgent({self.config!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- sessions ---

    def _person(self) -> tuple[str, SignInChannel | None]:
        """Whose session a call uses: the person it acts for when the agent acts as each person, else everyone's.

        Raises:
            AgentNotReached: the agent acts as each person and the call acts for nobody.
        """
        if not self.config.acts_as_person:
            return "", None
        channel = signing_in()
        if channel is None:
            raise AgentNotReached(
                self.name, f"{self.config.endpoint} acts as the person who delegates, and this call is nobody's"
            )
        return channel.user_id, channel

    async def _live(self, scope: anyio.CancelScope | None = None) -> tuple[_Session, Client]:
        """An open session and its client, opening a session if there is none or the last one broke.

        `scope`: the caller's deadline, moved by the time a person takes to sign in.
        Raises:
            AgentUnavailable: the session could not be opened.
        """
        person, channel = self._person()
        session = self._sessions.get(person)
        if session is not None and not session.broken and session.client is not None:
            # Open and well (a client is set once the session is ready, and cleared when it ends): the lock and the
            # wait would each give the event loop a turn, every call.
            return session, session.client
        stale: _Session | None = None
        async with self._lock:
            session = self._sessions.get(person)
            if session is None or session.broken:
                stale = session
                session = self._sessions[person] = _Session(
                    self.config,
                    stderr=self._stderr,
                    egress=self._egress,
                    tokens=self._tokens,
                    sampler=self._sampler,
                    person=self._signer(channel) if channel is not None else None,
                )
                session.start()
        if stale is not None and stale.calls:
            self._retired = {each for each in self._retired if not each.ended} | {stale}
        elif stale is not None:
            await stale.close()
        return session, await session.ready(scope)

    def _signer(self, channel: SignInChannel) -> _Signer:
        return _Signer(
            channel=channel,
            tokens=PersonTokens(self._grants, channel.user_id),
            redirect_uri=self._redirect_uri,
        )

    async def close(self) -> None:
        """Close the sessions: stops a stdio server process, ends the HTTP sessions and closes their clients."""
        async with self._lock:
            sessions, self._sessions = [*self._sessions.values(), *self._retired], {}
            self._retired = set()
        for session in sessions:
            await session.close()
        if sessions:
            logger.info("MCP agent %r closed", self.name)

    def _tool_map(self, session: _Session) -> dict[str, str]:
        """Capability -> tool, for the tools the server has."""
        if self.config.capabilities is None:
            return {name: name for name in session.tools}
        return {cap: tool for cap, tool in self.config.capabilities.items() if tool in session.tools}

    async def _refresh_tools(self, session: _Session, client: Client) -> None:
        try:
            session.tools = await _list_tools(client)
        except (MCPError, RuntimeError, httpx2.HTTPError, anyio.BrokenResourceError, OSError) as error:
            session.mark_broken()
            raise AgentNotReached(self.name, session.describe(error)) from None

    # --- the interface ---

    async def capabilities(self) -> list[Capability]:
        """The server's tools as capabilities (only the mapped ones, renamed, when a mapping is configured)."""
        with anyio.move_on_after(self.config.connect_timeout_seconds) as scope:
            session, client = await self._live(scope)
            await self._refresh_tools(session, client)
        if scope.cancelled_caught:
            self._connect_timed_out()
        return [
            _capability(capability, session.tools[tool]) for capability, tool in sorted(self._tool_map(session).items())
        ]

    def _connect_timed_out(self) -> NoReturn:
        opening = self._sessions.get(self._person()[0])
        if self.config.transport == "http" and (opening is None or not opening.opened):
            # A port that never answers reads as one that refuses: the words must not map the network.
            raise AgentNotReached(self.name, f"{self.config.endpoint}: {UNREACHABLE}")
        raise AgentTimeout(self.name, self.config.connect_timeout_seconds)

    async def capability(self, name: str) -> Capability | None:
        """The capability `name` as the server defined its tool when the session opened (listed again only when the
        session knows no such tool), or None."""
        with anyio.move_on_after(self.config.connect_timeout_seconds) as scope:
            session, client = await self._live(scope)
            if name not in self._tool_map(session):
                await self._refresh_tools(session, client)
        if scope.cancelled_caught:
            self._connect_timed_out()
        tool = self._tool_map(session).get(name)
        return _capability(name, session.tools[tool]) if tool is not None else None

    async def delegate(self, request: DelegationRequest, *, human: HumanChannel | None = None) -> DelegationResult:
        """Call the tool mapped to `request.capability` with `request.input`; see the module doc for outcomes."""
        started = self._clock()
        with anyio.move_on_after(request.timeout_seconds) as scope:
            call = _Call(human=human, scope=scope, request=request)
            token = _CALL.set(call)
            try:
                return await self._call(request, started, call)
            except NotSent as first:
                logger.info("MCP agent %r: a call never reached the server (%s); retrying", self.name, first.reason)
                try:
                    return await self._call(request, started, call)
                except NotSent as again:
                    raise AgentNotReached(self.name, again.reason) from None
            finally:
                _CALL.reset(token)
        if scope.cancelled_caught:
            raise AgentTimeout(self.name, request.timeout_seconds)
        raise AssertionError("unreachable: a call returns, raises or times out")  # pragma: no cover

    async def _call(self, request: DelegationRequest, started: datetime, call: _Call) -> DelegationResult:
        session, client = await self._live(call.scope)
        tools = self._tool_map(session)
        if request.capability not in tools:
            await self._refresh_tools(session, client)  # a tool may have appeared since the session opened
            tools = self._tool_map(session)
            if request.capability not in tools:
                raise UnknownCapability(self.name, request.capability, list(tools))
        tool = tools[request.capability]
        attempt = _Attempt()
        token = _ATTEMPT.set(attempt)
        session.calls.add(call)
        try:
            result = await client.call_tool(tool, dict(request.input), progress_callback=call.progressed)
        except MCPError as error:
            return self._refused(session, attempt, error, tool, started)
        except (RuntimeError, ValidationError) as error:
            if not attempt.handed_over:
                # The client raises this way when its session closed before the request was written.
                session.mark_broken()
                raise NotSent(session.describe(session.error)) from None
            return self._result(
                started,
                DelegationStatus.FAILED,
                error=f"{self.name} answered {tool} with a result that could not be read: {error}",
            )
        except (httpx2.HTTPError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, TimeoutError) as error:
            session.mark_broken()
            if not attempt.handed_over or attempt.refused:
                raise NotSent(session.describe(error, attempt)) from None
            raise AgentUnavailable(self.name, session.ended_during(tool, error)) from None
        finally:
            session.call_ended(call)
            _ATTEMPT.reset(token)
        return self._tool_result(result, tool, started, call.steps)

    def _refused(
        self, session: _Session, attempt: _Attempt, error: MCPError, tool: str, started: datetime
    ) -> DelegationResult:
        """A JSON-RPC error: the server said no (a failed result), or the connection failed (unavailable)."""
        if attempt.refused or not attempt.handed_over:
            session.mark_broken()
            raise NotSent(session.describe(error, attempt))
        if error.code == mcp_types.CONNECTION_CLOSED or attempt.http_status is not None:
            # Closed mid-call, or an HTTP failure (auth, 5xx) rather than an answer from the agent: the next call opens
            # a new session; the calls in flight on this one still get their answers.
            status = attempt.http_status
            if status is None:
                session.mark_broken()
            else:
                session.retire()
            if status in _AUTH_STATUSES:
                raise AgentUnavailable(self.name, session.describe(error, attempt))
            if status is not None:
                # The server may have run the tool before it failed (or a proxy failed in front of it): unknown.
                raise AgentUnavailable(self.name, session.failed_during(tool, status))
            raise AgentUnavailable(self.name, session.ended_during(tool, session.error))
        return self._result(
            started,
            DelegationStatus.FAILED,
            error=f"{self.name} refused {tool}: {error.message} (JSON-RPC error {error.code})",
            evidence=(_json_evidence(error.error, f"error from {tool}"),),
        )

    def _tool_result(
        self, result: mcp_types.CallToolResult, tool: str, started: datetime, steps: list[str]
    ) -> DelegationResult:
        output = _text_of(result)
        data = result.structured_content if isinstance(result.structured_content, dict) else None
        if not output and data is not None:
            output = json.dumps(data, ensure_ascii=False)
        links = _resource_links(result)
        if links:
            listed = "\n".join(f"- {name}: {uri}" for name, uri in links)
            output = f"{output}\n\nResources {tool} pointed to:\n{listed}".strip()
        failed = bool(result.is_error)
        evidence: tuple[Evidence, ...] = (_json_evidence(result, f"raw MCP result of {tool}"),)
        whole = output.encode()
        if len(whole) > RESULT_CAP_BYTES or len(evidence[0].content) > RESULT_CAP_BYTES:
            # Too big to show or to keep twice: the whole answer becomes an artifact, the output an excerpt of it.
            evidence = (
                Evidence(
                    kind="artifact",
                    media_type="text/plain; charset=utf-8",
                    content=whole,
                    description=f"the whole answer of {tool}",
                ),
            )
            output = (
                output[:EXCERPT_CHARS] + f"\n… (an excerpt: the whole answer, {_size(len(whole))}, is kept as a file)"
            )
            data = None
        evidence += _images(result, tool)
        return self._result(
            started,
            DelegationStatus.FAILED if failed else DelegationStatus.SUCCEEDED,
            output=output,
            data=data,
            error=(output or f"{tool} reported an error") if failed else None,
            evidence=evidence,
            progress=tuple(steps),
        )

    def _result(
        self,
        started: datetime,
        status: DelegationStatus,
        *,
        output: str = "",
        data: dict[str, Any] | None = None,
        error: str | None = None,
        evidence: tuple[Evidence, ...] = (),
        progress: tuple[str, ...] = (),
    ) -> DelegationResult:
        return DelegationResult(
            status=status,
            output=output,
            data=data,
            error=error,
            evidence=evidence,
            progress=progress,
            started_at=started,
            finished_at=self._clock(),
        )

    async def health(self) -> AgentHealth:
        """Whether the server answers: opens the session if needed and lists its tools. Never raises."""
        started = self._clock()
        try:
            capabilities = await self.capabilities()
        except AgentUnavailable as error:
            return AgentHealth(ok=False, detail=error.reason, seconds=self._since(started))
        # A health check must never raise: anything unexpected is a failed check, logged for whoever debugs it.
        except Exception as error:
            logger.exception("health check of MCP agent %r failed unexpectedly", self.name)
            return AgentHealth(ok=False, detail=f"{type(error).__name__}: {error}", seconds=self._since(started))
        names = ", ".join(capability.name for capability in capabilities) or "none"
        detail = f"{len(capabilities)} capabilities: {names}"
        offered = {capability.name for capability in capabilities}
        missing = [(cap, tool) for cap, tool in (self.config.capabilities or {}).items() if cap not in offered]
        if missing:
            detail += "; the server has no tool " + ", ".join(f"{tool!r} (for {cap!r})" for cap, tool in missing)
        return AgentHealth(ok=True, detail=detail, seconds=self._since(started))

    def _since(self, started: datetime) -> float:
        return (self._clock() - started).total_seconds()


_DEFINITION_FIELDS = {"name", "description", "input_schema", "annotations"}
"""What an admin's trust in a tool rests on, and is pinned when the tool is enabled."""


def _capability(name: str, tool: mcp_types.Tool) -> Capability:
    return Capability(
        name=name,
        description=tool.description or "",
        input_schema=dict(tool.input_schema),
        definition=tool.model_dump(mode="json", by_alias=True, exclude_none=True, include=_DEFINITION_FIELDS),
    )


_IMAGE_SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}
_MOST_IMAGES = 4
_MOST_LINKS = 20


def _images(result: mcp_types.CallToolResult, tool: str) -> tuple[Evidence, ...]:
    """The images in the answer whose bytes are what their type says (PNG, JPEG, GIF), as evidence to show."""
    images: list[Evidence] = []
    for block in result.content:
        if not isinstance(block, mcp_types.ImageContent) or len(images) >= _MOST_IMAGES:
            continue
        try:
            content = base64.b64decode(block.data, validate=True)
        except ValueError:
            continue
        media_type = block.mime_type.lower()
        if not content.startswith(_IMAGE_SIGNATURES.get(media_type, (b"\0never",))) or len(content) > RESULT_CAP_BYTES:
            logger.info("MCP agent: an image from %s was not kept (not a PNG, JPEG or GIF, or too big)", tool)
            continue
        images.append(Evidence(kind="image", media_type=media_type, content=content, description=f"image from {tool}"))
    return tuple(images)


def _resource_links(result: mcp_types.CallToolResult) -> list[tuple[str, str]]:
    """(name, address) of each resource the answer points to, to list as text the owner opens knowingly."""
    return [
        (mcp_elicitation.plain(block.title or block.name, limit=100), mcp_elicitation.plain(block.uri, limit=500))
        for block in result.content
        if isinstance(block, mcp_types.ResourceLink)
    ][:_MOST_LINKS]


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KiB"


def _text_of(result: mcp_types.CallToolResult) -> str:
    texts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            texts.append(block.text)
        elif isinstance(block, mcp_types.EmbeddedResource) and isinstance(
            block.resource, mcp_types.TextResourceContents
        ):
            texts.append(block.resource.text)
    return "\n".join(texts)


def _json_evidence(message: BaseModel, description: str) -> Evidence:
    """What the server sent, as JSON with the protocol's own field names, written by pydantic in one step."""
    return Evidence(
        kind="json",
        media_type="application/json",
        content=message.model_dump_json(by_alias=True, exclude_none=True).encode(),
        description=description,
    )
