"""A2A agents: vendor agents that speak the Agent2Agent protocol (`a2a-sdk`), over JSON-RPC on HTTP.

An admin registers an `A2AConfig`: the agent's base URL (its card is at `<url>/.well-known/agent-card.json`), how to
authenticate (a bearer token, or OAuth client credentials: a token endpoint, a client id and secret, the token kept
until it expires), which of the card's skills are capabilities (by default every skill, under its id) and, when the
vendor signs its card, the public keys the card must be signed with.

A delegation is one A2A message: a text part (the input's `text`, or the input as JSON) and a data part with the
input, and `{"skill": <skill id>}` in the message's metadata, since A2A addresses an agent, not a skill. The task it
starts is followed to a terminal state: on the card's stream when the card offers streaming, else by polling it.
- `completed`: a `succeeded` result, the artifacts' text as output, their data parts as data;
- `failed`, `rejected`, or `canceled` by the agent: a `failed` result saying what the agent said;
- `input-required`: the agent's question is asked of the delegating person through the `HumanChannel`, as the
  browser adapter asks for a 2FA code, and the answer is sent into the same task; no person, no answer in time:
  the task is cancelled and the result is `failed`;
- `auth-required`: the task is cancelled and the result is `failed`, telling an admin which setting to give.
What the agent says while `working` (its status messages, as the stream brings them or a poll reads them) is told to
whoever follows the delegation (`HumanChannel.progressed`) and kept with the result: data, one plain line each.
A delegation cancelled or timed out while its task runs cancels the task at the agent (best effort, bounded).

At most once. Only a first message that provably never left is `AgentNotReached` (the card could not be fetched,
the connection was refused or not allowed, the token endpoint refused us): it is deferred and sent again. Once the
message may have reached the agent (a timeout after sending, a connection dropped mid-stream, a server that dies
while working) the delegation is `AgentUnavailable`: its outcome is unknown and it is never sent again by itself.
Following a task that is already running only reads it (a dropped stream is followed by polling the task), so it
never repeats the work. As for MCP, an HTTP error status in answer to the message (credentials refused after the card
was read, a 5xx) is `AgentUnavailable` too; a JSON-RPC error in answer to it is the agent saying no: `failed`.

Waiting for a person does not count against the request's timeout here (as in the browser adapter); the gate in
front of every agent (`planner/governance/gated_agent.py`) still cuts the whole call at the request's timeout and
its grace, so a person has at most that long to answer, whatever `answer_seconds` says.

Where the bot connects is not decided by the card: the card's interface URL must be on the registered URL's origin
(a card pointing elsewhere would get our credentials), and every request goes only to addresses `adapters.egress`
allows, checked when connecting. Callers never see an `a2a`, `httpx` or `jwt` exception.

Card signatures: with `card_keys` set, the card must carry a JWS signature (the SDK's `create_signature_verifier`,
over the card's canonical JSON) made with one of those keys, else nothing is sent. Without `card_keys` a signed card
is used unverified and `health` says so: the bot has no trust anchor for a key the card itself names (`jku`).

Push notifications: with an `A2APush` (the bot's push route, `bot/http/a2a_push.py`, and the tokens of the tasks
this process follows) and a card that offers push notifications but no stream, the message asks the agent to post
its task's updates there, with a token made for that delegation. A push only wakes the delegation, which then reads
the task from the agent: what a push says is not believed (anyone can post to the URL), and polling goes on, slower,
in case pushes are lost or land on another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import math
import secrets
import uuid
from collections.abc import AsyncGenerator, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import urlsplit

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.client.client import Client
from a2a.types import a2a_pb2 as pb
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH, TransportProtocol
from a2a.utils.errors import A2AError
from a2a.utils.signing import SignatureVerificationError, create_signature_verifier
from google.protobuf.json_format import MessageToDict, MessageToJson
from google.protobuf.struct_pb2 import Struct, Value

from adapters.egress import UNREACHABLE, Egress, route_to_checked_address
from adapters.mcp_elicitation import plain
from adapters.not_sent import NotSent
from planner.domain.delegations import DelegationStatus
from planner.domain.redaction import redact_url
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
    UnknownCapability,
)

logger = logging.getLogger(__name__)

_FIELDS = (
    "url",
    "bearer_token",
    "oauth_token_url",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
    "card_keys",
    "capabilities",
    "connect_timeout_seconds",
    "poll_seconds",
    "answer_seconds",
)
_SIGNATURE_ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"]
_CANCEL_SECONDS = 5.0
_TOKEN_MARGIN_SECONDS = 30.0
_MAX_POLLS = 100_000
_PUSHED_POLL_FACTOR = 10
_MOST_STEPS = 20
"""The steps a result keeps of those the agent reported: the last ones."""
_STEP_CHARS = 200
"""With pushes expected, the task is read this many times less often (a push wakes it at once)."""
PUSH_PATH = "/api/a2a/push"
PUSH_TOKEN_HEADER = "X-A2A-Notification-Token"  # noqa: S105 - the name of a header
_CONNECTIONS = httpx.Limits(max_connections=None, max_keepalive_connections=100, keepalive_expiry=2.0)
"""The HTTP connections to one agent: as many as delegations in flight (a streamed or blocking message holds its
connection until the task ends; the client's default of 100 made the 101st wait in the pool, and time out there as
if the agent had not answered), as for MCP (adapters/mcp.py). Up to 100 are kept open idle, for 2 s: before a server
closes them (uvicorn's default, 5 s), so a message does not go out on a connection the server is closing."""
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""What the HTTP client raises only when no byte of the request could have left."""

_TERMINAL = {
    pb.TASK_STATE_COMPLETED,
    pb.TASK_STATE_FAILED,
    pb.TASK_STATE_CANCELED,
    pb.TASK_STATE_REJECTED,
}
_INTERRUPTED = {pb.TASK_STATE_INPUT_REQUIRED, pb.TASK_STATE_AUTH_REQUIRED}
_STATE_WORDS: dict[int, str] = {
    pb.TASK_STATE_FAILED: "failed",
    pb.TASK_STATE_CANCELED: "cancelled the task",
    pb.TASK_STATE_REJECTED: "rejected the task",
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


# Configuration -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class A2AConfig:
    """How to reach an A2A agent; validated on construction, raising `AgentConfigInvalid` listing every problem."""

    name: str
    url: str
    """The agent's base URL: its card is at `<url>/.well-known/agent-card.json`."""
    bearer_token: str | None = None
    """Sent as `Authorization: Bearer …`; never shown."""
    oauth_token_url: str = ""
    """OAuth client credentials: the token endpoint; with `oauth_client_id` and `oauth_client_secret`."""
    oauth_client_id: str = ""
    oauth_client_secret: str | None = None
    oauth_scope: str = ""
    card_keys: Mapping[str, str] | None = None
    """Key id -> PEM public key: the card must be signed with one of them."""
    capabilities: Mapping[str, str] | None = None
    """Capability name -> skill id. None: every skill of the card is a capability named by its id."""
    connect_timeout_seconds: float = 30.0
    poll_seconds: float = 1.0
    """How often a task is read when the agent does not stream."""
    answer_seconds: float = 300.0
    """How long a person has to answer an agent's question (not counted against the delegation's timeout)."""

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise AgentConfigInvalid(problems)

    def __repr__(self) -> str:
        secrets = [f"{name}=<hidden>" for name in ("bearer_token", "oauth_client_secret") if getattr(self, name)]
        return f"A2AConfig({', '.join([f'name={self.name!r}', f'url={redact_url(self.url)!r}', *secrets])})"

    @property
    def endpoint(self) -> str:
        return redact_url(self.url)

    @property
    def uses_oauth(self) -> bool:
        return bool(self.oauth_token_url)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str | None = None) -> A2AConfig:
        """A config from its JSON form (the fields above; `name` may come apart); raises `AgentConfigInvalid`."""
        if not isinstance(data, Mapping):
            raise AgentConfigInvalid(["config must be a JSON object"])
        problems = [f"unknown field {key!r}" for key in data if key not in (*_FIELDS, "name")]
        values = {key: data[key] for key in _FIELDS if key in data}
        try:
            config = cls(name=name if name is not None else data.get("name", ""), **values)
        except AgentConfigInvalid as invalid:
            raise AgentConfigInvalid(problems + invalid.problems) from None
        if problems:
            raise AgentConfigInvalid(problems)
        return config

    def to_dict(self, *, with_secrets: bool = False) -> dict[str, Any]:
        """The JSON form, without `name`; the token and the client secret only when asked (to encrypt them)."""
        data: dict[str, Any] = {
            "url": self.url if with_secrets else redact_url(self.url),
            "connect_timeout_seconds": self.connect_timeout_seconds,
            "poll_seconds": self.poll_seconds,
            "answer_seconds": self.answer_seconds,
        }
        if self.uses_oauth:
            data.update(oauth_token_url=self.oauth_token_url, oauth_client_id=self.oauth_client_id)
            if self.oauth_scope:
                data["oauth_scope"] = self.oauth_scope
            if with_secrets and self.oauth_client_secret:
                data["oauth_client_secret"] = self.oauth_client_secret
        if with_secrets and self.bearer_token:
            data["bearer_token"] = self.bearer_token
        if self.card_keys is not None:
            data["card_keys"] = dict(self.card_keys)
        if self.capabilities is not None:
            data["capabilities"] = dict(self.capabilities)
        return data


def _is_text_map(value: object) -> bool:
    return isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _is_seconds(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and 0 < value < math.inf


def _url_problems(field_name: str, url: object, *, secret_sent: bool) -> list[str]:
    if not isinstance(url, str) or not url.strip():
        return [f"{field_name} is required"]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        return [f"{field_name} is not a valid URL"]
    problems: list[str] = []
    if parts.scheme not in ("http", "https"):
        # Only the scheme is echoed: the rest of a bad URL might hold a credential.
        problems.append(f"{field_name} must be http(s), not {parts.scheme or 'schemeless'}")
    if not parts.hostname:
        problems.append(f"{field_name} has no host")
    if parts.username is not None or parts.password is not None:
        problems.append(f"{field_name} must not carry credentials")
    if secret_sent and parts.scheme == "http" and not _is_loopback(parts.hostname):
        problems.append(f"{field_name}: credentials are only sent over https (or plain http to a loopback address)")
    return problems


def _problems(config: A2AConfig) -> list[str]:
    problems: list[str] = []
    if not isinstance(config.name, str) or not config.name.strip():
        problems.append("name is required (a short name like acme-planner)")
    has_secret = bool(config.bearer_token) or bool(config.oauth_token_url)
    problems += _url_problems("url", config.url, secret_sent=has_secret)
    token = config.bearer_token
    if token is not None and (not isinstance(token, str) or not token or any(ch.isspace() for ch in token)):
        problems.append("bearer_token must be one word without spaces or line breaks")
    oauth = (config.oauth_token_url, config.oauth_client_id, config.oauth_client_secret)
    if any(oauth):
        if token:
            problems.append("give either bearer_token or oauth_* settings, not both")
        problems += _url_problems("oauth_token_url", config.oauth_token_url, secret_sent=True)
        if not isinstance(config.oauth_client_id, str) or not config.oauth_client_id.strip():
            problems.append("oauth_client_id is required with oauth_token_url")
        if not isinstance(config.oauth_client_secret, str) or not config.oauth_client_secret:
            problems.append("oauth_client_secret is required with oauth_token_url")
    if not isinstance(config.oauth_scope, str):
        problems.append("oauth_scope must be text (scopes separated by spaces)")
    if config.card_keys is not None and (not _is_text_map(config.card_keys) or not config.card_keys):
        problems.append("card_keys must map key ids to PEM public keys, e.g. {'2026-01': '-----BEGIN PUBLIC KEY…'}")
    if config.capabilities is not None:
        if not _is_text_map(config.capabilities) or not config.capabilities:
            problems.append("capabilities must map capability names to skill ids, e.g. {'brief': 'write-brief'}")
        elif any(not key.strip() or not value.strip() for key, value in config.capabilities.items()):
            problems.append("capabilities: capability names and skill ids must not be empty")
    for name in ("connect_timeout_seconds", "poll_seconds", "answer_seconds"):
        if not _is_seconds(getattr(config, name)):
            problems.append(f"{name} must be a positive number of seconds")
    return problems


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


class A2AAdapterFactory:
    """Builds A2A agents for the adapter registry (`planner.services.registry.AdapterFactory`, kind `a2a`); agents
    connect only where `egress` allows, and the registered URLs are checked against it here."""

    secret_fields: Collection[str] = ("bearer_token", "oauth_client_secret")

    def __init__(
        self, *, clock: Callable[[], datetime] = _utc_now, egress: Egress | None = None, push: A2APush | None = None
    ) -> None:
        """`push`: where the agents may post task updates (the bot's push route); None: they are polled."""
        self._clock = clock
        self._egress = egress if egress is not None else Egress()
        self._push = push

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The config checked and normalised; raises `AgentConfigInvalid` naming each problem."""
        return self._checked(config, name="-").to_dict(with_secrets=True)

    def build(self, name: str, config: Mapping[str, Any]) -> A2AAgent:
        """An agent that connects on its first call; raises `AgentConfigInvalid` (also when its address is no
        longer allowed)."""
        return A2AAgent(self._checked(config, name=name), clock=self._clock, egress=self._egress, push=self._push)

    def _checked(self, config: Mapping[str, Any], *, name: str) -> A2AConfig:
        parsed = A2AConfig.from_dict(config, name=name)
        problems = []
        for field_name in ("url", "oauth_token_url"):
            url = getattr(parsed, field_name)
            if url:
                host_problem = self._egress.host_problem(urlsplit(url).hostname or "")
                if host_problem is not None:
                    problems.append(f"{field_name}: {host_problem}")
        if problems:
            raise AgentConfigInvalid(problems)
        return parsed


# HTTP: egress and credentials --------------------------------------------------------------------------------------


class _EgressTransport(httpx.AsyncBaseTransport):
    """`adapters.egress.EgressTransport` for `httpx` (which `a2a-sdk` uses; the MCP SDK uses `httpx2`): each request's
    host is resolved and checked, and the request goes to that address (`route_to_checked_address`, logging here)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, egress: Egress, *, agent: str) -> None:
        self._inner = inner
        self._egress = egress
        self._agent = agent

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await route_to_checked_address(request, self._egress, agent=self._agent, log=logger)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _TokenRefused(Exception):
    """The token endpoint gave no token: why, in words an admin can act on."""


class _ClientCredentials:
    """An OAuth access token from the client-credentials grant, kept until shortly before it expires."""

    def __init__(self, config: A2AConfig, http: httpx.AsyncClient) -> None:
        self._config = config
        self._http = http
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """A valid access token; raises `_TokenRefused`, or `httpx` errors when the endpoint cannot be reached."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            if self._token is not None and loop.time() < self._expires_at:
                return self._token
            config = self._config
            form = {"grant_type": "client_credentials"}
            if config.oauth_scope:
                form["scope"] = config.oauth_scope
            response = await self._http.post(
                config.oauth_token_url,
                data=form,
                auth=(config.oauth_client_id, config.oauth_client_secret or ""),
                headers={"Authorization": ""},  # the agent's token is not the token endpoint's business
            )
            if response.status_code != 200:
                raise _TokenRefused(
                    f"the token endpoint {redact_url(config.oauth_token_url)} answered HTTP {response.status_code}: "
                    "check oauth_client_id, oauth_client_secret and oauth_scope"
                )
            try:
                body = response.json()
                token = body["access_token"]
                lifetime = float(body.get("expires_in", 3600))
            except (ValueError, KeyError, TypeError):
                raise _TokenRefused(
                    f"the token endpoint {redact_url(config.oauth_token_url)} gave no access_token"
                ) from None
            if not isinstance(token, str) or not token or any(ch.isspace() for ch in token):
                raise _TokenRefused(f"the token endpoint {redact_url(config.oauth_token_url)} gave an unusable token")
            self._token = token
            self._expires_at = loop.time() + max(lifetime - _TOKEN_MARGIN_SECONDS, 0.0)
            return token

    def forget(self) -> None:
        """Drop the kept token (the agent refused it)."""
        self._token = None


# Push notifications ------------------------------------------------------------------------------------------------


class A2APush:
    """Where A2A agents post news of the tasks this process follows: `url` (the bot's push route) and a token per
    delegation expecting pushes. One per process, built by the composition root; it holds only the waits of the
    delegations running here."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._waiting: dict[bytes, asyncio.Event] = {}

    @contextlib.contextmanager
    def expecting(self) -> Iterator[tuple[str, asyncio.Event]]:
        """A new token for one delegation and the event a push with it sets, for as long as the block runs."""
        token = secrets.token_urlsafe(32)
        key = hashlib.sha256(token.encode()).digest()
        event = self._waiting[key] = asyncio.Event()
        try:
            yield token, event
        finally:
            self._waiting.pop(key, None)

    def deliver(self, token: str) -> bool:
        """Wake the delegation `token` was made for; False when no delegation here expects it."""
        # Keyed by the token's digest: a lookup's timing says nothing about the tokens that exist.
        event = self._waiting.get(hashlib.sha256(token.encode()).digest())
        if event is None:
            return False
        event.set()
        return True


# The agent ---------------------------------------------------------------------------------------------------------


class _Ended(Exception):
    """The delegation ends with this failed result's error (the agent's task is cancelled first)."""

    def __init__(self, error: str) -> None:
        self.error = error
        super().__init__(error)


@dataclass
class _Following:
    """What is known of the task a delegation started."""

    task_id: str = ""
    context_id: str = ""
    task: pb.Task | None = None
    state: int = pb.TASK_STATE_UNSPECIFIED
    status_text: str = ""
    answer: pb.Message | None = None
    """An agent that answers with a message and no task."""
    artifacts: dict[str, pb.Artifact] = field(default_factory=dict)
    push_token: str = ""
    pushed: asyncio.Event | None = None
    """Set by a push about the task (when the agent was asked to push)."""
    human: HumanChannel | None = None
    steps: list[str] = field(default_factory=list)
    """What the agent said while working (its `working` status messages), one plain line each, the last ones."""
    unreported: list[str] = field(default_factory=list)
    """Steps not yet told to the person following the delegation."""


class A2AAgent(Agent):
    """A vendor agent behind an A2A server; fetches its card on first use and keeps one HTTP client until `close()`."""

    kind = "a2a"

    def __init__(
        self,
        config: A2AConfig,
        *,
        clock: Callable[[], datetime] = _utc_now,
        egress: Egress | None = None,
        on_task: Callable[[str], None] | None = None,
        push: A2APush | None = None,
    ) -> None:
        """`on_task`: told the A2A task id a delegation started, once the agent has named it (from then on a
        cancelled delegation cancels that task). `push`: where the agent may post task updates (none: polling)."""
        self.config = config
        self.name = config.name
        self._clock = clock
        self._egress = egress if egress is not None else Egress()
        self._on_task = on_task
        self._push = push
        self._http: httpx.AsyncClient | None = None
        self._oauth: _ClientCredentials | None = None
        self._card: pb.AgentCard | None = None
        self._client: Client | None = None

    def __repr__(self) -> str:
        return f"A2AAgent({self.config!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP client (and the A2A client on it)."""
        http, self._http, self._client, self._card = self._http, None, None, None
        if http is not None:
            await http.aclose()

    # --- connection ---

    def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            config = self.config
            headers = {"Authorization": f"Bearer {config.bearer_token}"} if config.bearer_token else None
            self._http = httpx.AsyncClient(
                headers=headers,
                # No pool timeout: waiting for a connection of our own is not the agent's slowness (with no cap there
                # is no such wait; the delegation's own timeout still bounds the whole call).
                timeout=httpx.Timeout(config.connect_timeout_seconds, read=None, pool=None),
                transport=_EgressTransport(
                    httpx.AsyncHTTPTransport(limits=_CONNECTIONS), self._egress, agent=config.name
                ),
            )
            if config.uses_oauth:
                self._oauth = _ClientCredentials(config, self._http)
        return self._http

    async def _authorize(self) -> None:
        """Put a valid OAuth token on the client (bearer tokens are set once); raises `NotSent`."""
        if self._oauth is None:
            return
        try:
            token = await self._oauth.token()
        except _TokenRefused as refused:
            raise NotSent(str(refused)) from None
        except httpx.HTTPError as error:
            logger.info("A2A agent %r could not reach its token endpoint: %r", self.name, error)
            raise NotSent(f"{redact_url(self.config.oauth_token_url)}: {UNREACHABLE}") from None
        self._http_client().headers["Authorization"] = f"Bearer {token}"

    async def _fetch_card(self) -> pb.AgentCard:
        """The agent's card, fetched (and its signature checked) once per client; raises `NotSent`."""
        if self._card is not None:
            return self._card
        http = self._http_client()
        await self._authorize()
        resolver = A2ACardResolver(http, self.config.url, AGENT_CARD_WELL_KNOWN_PATH)
        try:
            card = await resolver.get_agent_card()
        except A2AError as error:
            raise NotSent(self._card_problem(error)) from None
        self._verify(card)
        self._check_interfaces(card)
        self._card = card
        return card

    def _card_problem(self, error: A2AError) -> str:
        where = f"{self.config.endpoint}{AGENT_CARD_WELL_KNOWN_PATH}"
        status = getattr(error, "status_code", None)
        if status in (401, 403):
            return f"{where} refused our credentials (HTTP {status}): {self._auth_advice()}"
        if status is not None:
            return f"{where} answered HTTP {status}: check the agent's url"
        if isinstance(error.__cause__, httpx.HTTPError):
            logger.info("A2A agent %r could not fetch its card: %r", self.name, error.__cause__)
            return f"{self.config.endpoint}: {UNREACHABLE}"
        return f"{where} is not an agent card the bot can read: {error.message[:200]}"

    def _auth_advice(self) -> str:
        if self.config.uses_oauth:
            return "check oauth_client_id, oauth_client_secret and oauth_scope"
        if self.config.bearer_token:
            return "check the bearer_token"
        return "set bearer_token, or oauth_token_url with oauth_client_id and oauth_client_secret"

    def _verify(self, card: pb.AgentCard) -> None:
        keys = self.config.card_keys
        if keys is None:
            if card.signatures:
                logger.info("A2A agent %r: its card is signed but no card_keys are set to verify it", self.name)
            return
        verify = create_signature_verifier(
            lambda kid, _jku: keys.get(kid or "", ""), algorithms=list(_SIGNATURE_ALGORITHMS)
        )
        try:
            verify(card)
        except SignatureVerificationError as error:
            raise NotSent(
                f"the agent card at {self.config.endpoint} is not signed with any of card_keys ({error}): "
                "nothing was sent; check the keys with the vendor"
            ) from None

    def _check_interfaces(self, card: pb.AgentCard) -> None:
        ours = _origin(self.config.url)
        elsewhere = [i.url for i in card.supported_interfaces if _origin(i.url) != ours]
        if elsewhere and len(elsewhere) == len(card.supported_interfaces):
            raise NotSent(
                f"the agent card at {self.config.endpoint} sends requests to another origin "
                f"({redact_url(elsewhere[0])[:120]}); register the agent at that URL if it is the vendor's"
            )

    async def _a2a(self) -> tuple[pb.AgentCard, Client]:
        card = await self._fetch_card()
        if self._client is None:
            same_origin = pb.AgentCard()
            same_origin.CopyFrom(card)
            del same_origin.supported_interfaces[:]
            same_origin.supported_interfaces.extend(
                i for i in card.supported_interfaces if _origin(i.url) == _origin(self.config.url)
            )
            config = ClientConfig(
                streaming=card.capabilities.streaming,
                polling=not card.capabilities.streaming,
                httpx_client=self._http_client(),
                supported_protocol_bindings=[TransportProtocol.JSONRPC, TransportProtocol.HTTP_JSON],
            )
            try:
                self._client = ClientFactory(config).create(same_origin)
            except ValueError as error:
                raise NotSent(f"the agent card at {self.config.endpoint} offers no usable interface: {error}") from None
        return card, self._client

    def _skill_map(self, card: pb.AgentCard) -> dict[str, str]:
        skills = {skill.id for skill in card.skills}
        if self.config.capabilities is None:
            return {skill: skill for skill in skills}
        return {cap: skill for cap, skill in self.config.capabilities.items() if skill in skills}

    # --- the interface ---

    async def capabilities(self) -> list[Capability]:
        """The card's skills as capabilities (only the mapped ones, renamed, when a mapping is configured)."""
        try:
            async with asyncio.timeout(self.config.connect_timeout_seconds):
                card = await self._fetch_card()
        except NotSent as not_sent:
            raise AgentNotReached(self.name, not_sent.reason) from None
        except TimeoutError:
            raise AgentNotReached(self.name, f"{self.config.endpoint}: {UNREACHABLE}") from None
        skills = {skill.id: skill for skill in card.skills}
        return [
            Capability(name=capability, description=_skill_description(skills[skill]))
            for capability, skill in sorted(self._skill_map(card).items())
        ]

    async def health(self) -> AgentHealth:
        """Whether the agent's card can be read: lists its skills, says whether the card is signed. Never raises."""
        started = self._clock()
        self._card = None  # a health check reads the card afresh
        self._client = None
        try:
            capabilities = await self.capabilities()
        except AgentUnavailable as error:
            return AgentHealth(ok=False, detail=error.reason, seconds=self._since(started))
        # A health check must never raise: anything unexpected is a failed check, logged for whoever debugs it.
        except Exception as error:
            logger.exception("health check of A2A agent %r failed unexpectedly", self.name)
            return AgentHealth(ok=False, detail=f"{type(error).__name__}: {error}", seconds=self._since(started))
        names = ", ".join(capability.name for capability in capabilities) or "none"
        detail = f"{len(capabilities)} capabilities: {names}"
        card = self._card
        if card is not None and card.signatures:
            verified = self.config.card_keys is not None
            detail += (
                "; card signature verified" if verified else "; the card is signed but not verified (set card_keys)"
            )
        return AgentHealth(ok=True, detail=detail, seconds=self._since(started))

    def _since(self, started: datetime) -> float:
        return (self._clock() - started).total_seconds()

    async def delegate(self, request: DelegationRequest, *, human: HumanChannel | None = None) -> DelegationResult:
        """Send one message for `request` and follow its task; see the module doc for outcomes."""
        started = self._clock()
        following = _Following(human=human)
        async with asyncio.timeout(request.timeout_seconds) as deadline:
            try:
                try:
                    card, client = await self._a2a()
                    skills = self._skill_map(card)
                    if request.capability not in skills:
                        # The card is kept while the agent is open: a skill may have appeared since it was read.
                        self._card = self._client = None
                        card, client = await self._a2a()
                        skills = self._skill_map(card)
                    if request.capability not in skills:
                        raise UnknownCapability(self.name, request.capability, list(skills))
                    first = _message(request, skills[request.capability])
                    with self._expecting_pushes(card, following):
                        await self._follow(client, first, following, human, deadline, first_send=True)
                except NotSent as not_sent:
                    raise AgentNotReached(self.name, not_sent.reason) from None
            except _Ended as ended:
                await self._cancel(following)
                return self._result(started, DelegationStatus.FAILED, following, error=ended.error)
            except (asyncio.CancelledError, TimeoutError):
                # Cancelled, or out of time: tell the agent to stop, then let the cancellation go on.
                await self._cancel(following)
                if deadline.expired():
                    raise AgentTimeout(self.name, request.timeout_seconds) from None
                raise
        return self._outcome(started, following)

    # --- following a task ---

    @contextlib.contextmanager
    def _expecting_pushes(self, card: pb.AgentCard, following: _Following) -> Iterator[None]:
        if self._push is None or card.capabilities.streaming or not card.capabilities.push_notifications:
            yield
            return
        with self._push.expecting() as (token, event):
            following.push_token, following.pushed = token, event
            yield

    async def _follow(
        self,
        client: Client,
        message: pb.Message,
        following: _Following,
        human: HumanChannel | None,
        deadline: asyncio.Timeout,
        *,
        first_send: bool,
    ) -> None:
        """Send `message`, follow its task until it ends, answering the agent's questions as they come."""
        while True:
            await self._send(client, message, following, first_send=first_send)
            first_send = False
            if following.answer is None and following.state not in _TERMINAL | _INTERRUPTED:
                await self._poll(client, following)
            if following.state == pb.TASK_STATE_AUTH_REQUIRED:
                raise _Ended(
                    f"{self.name} needs authorization it was not given ({following.status_text[:300] or 'no detail'}): "
                    f"an admin can {self._auth_advice()} for the adapter {self.name!r}"
                )
            if following.state != pb.TASK_STATE_INPUT_REQUIRED:
                return
            answer = await self._ask(following, human, deadline)
            message = pb.Message(
                message_id=str(uuid.uuid4()),
                role=pb.ROLE_USER,
                task_id=following.task_id,
                context_id=following.context_id,
                parts=[pb.Part(text=answer)],
            )

    async def _send(self, client: Client, message: pb.Message, following: _Following, *, first_send: bool) -> None:
        """Send `message` and read what comes back until the stream ends (or the task stops for a person)."""
        try:
            await self._authorize()
        except NotSent as not_sent:
            if first_send:
                raise
            raise AgentUnavailable(self.name, self._may_have_acted(not_sent.reason)) from None
        received_any = False
        try:
            request = pb.SendMessageRequest(message=message)
            if following.push_token and self._push is not None:
                push = request.configuration.task_push_notification_config
                push.url, push.token = self._push.url, following.push_token
            async with contextlib.aclosing(_events(client, request)) as events:
                async for event in events:
                    received_any = True
                    await self._noted(following, _note, event)
                    if following.state in _TERMINAL | _INTERRUPTED:
                        return
        except A2AError as error:
            if _never_left(error) and first_send and not received_any:
                logger.info("A2A agent %r: the message never left: %r", self.name, error.__cause__)
                raise AgentNotReached(self.name, f"{self.config.endpoint}: {UNREACHABLE}") from None
            if following.task_id and _is_transport_error(error):
                # The stream dropped after the task began: reading the task repeats nothing.
                logger.info(
                    "A2A agent %r: the stream of task %s ended (%r); polling it", self.name, following.task_id, error
                )
                return
            if not _is_transport_error(error) and not _is_status_error(error) and first_send and not received_any:
                # The agent answered the request with a protocol error: it said no.
                raise _Ended(f"{self.name} refused the message: {error.message[:300]}") from None
            raise AgentUnavailable(self.name, self._may_have_acted(self._described(error))) from None

    async def _noted(self, following: _Following, note: Callable[[_Following, Any], None], event: Any) -> None:
        known = following.task_id
        note(following, event)
        if following.task_id and following.task_id != known and self._on_task is not None:
            self._on_task(following.task_id)
        steps, following.unreported = following.unreported, []
        if following.human is not None:
            for step in steps:
                await following.human.progressed(step)

    async def _poll(self, client: Client, following: _Following) -> None:
        """Read the task until it ends or waits for a person; any failure to read it leaves its outcome unknown."""
        if not following.task_id:
            raise AgentUnavailable(self.name, self._may_have_acted("the agent's answer named no task"))
        for _ in range(_MAX_POLLS):
            try:
                task = await client.get_task(pb.GetTaskRequest(id=following.task_id))
            except A2AError as error:
                raise AgentUnavailable(self.name, self._may_have_acted(self._described(error))) from None
            await self._noted(following, _note_task, task)
            if following.state in _TERMINAL | _INTERRUPTED:
                return
            await self._wait_for_news(following)
        raise AgentUnavailable(self.name, self._may_have_acted("the task never ended"))

    async def _wait_for_news(self, following: _Following) -> None:
        """Until the next read of the task: the poll interval, or a push about it (then at once)."""
        pushed = following.pushed
        if pushed is None:
            await asyncio.sleep(self.config.poll_seconds)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.poll_seconds * _PUSHED_POLL_FACTOR):
                await pushed.wait()
        pushed.clear()

    async def _ask(self, following: _Following, human: HumanChannel | None, deadline: asyncio.Timeout) -> str:
        question = following.status_text.strip() or f"{self.name} needs more information to go on."
        seconds = self.config.answer_seconds
        if human is None:
            raise _Ended(
                f"{self.name} asked a question but no person can be asked ({question[:200]}); "
                "delegate from a chat so the bot can relay it"
            )
        # Waiting for a person is not the vendor's slowness: that time does not count against the request's timeout.
        loop = asyncio.get_running_loop()
        planned = deadline.when()
        asked_at = loop.time()
        if planned is not None:
            deadline.reschedule(planned + seconds + 1)
        try:
            async with asyncio.timeout(seconds):
                answer = await human.ask(question, timeout_seconds=seconds)
        except (AgentTimeout, TimeoutError):
            raise _Ended(
                f"{self.name} asked a question nobody answered within {seconds:g} s; the task was cancelled"
            ) from None
        finally:
            if planned is not None:
                deadline.reschedule(planned + (loop.time() - asked_at))
        if not answer.strip():
            raise _Ended(f"{self.name} asked a question and the answer was empty; the task was cancelled")
        return answer

    async def _cancel(self, following: _Following) -> None:
        """Ask the agent to cancel the task (bounded and shielded: the caller is being cancelled or ending)."""
        if not following.task_id or following.state in _TERMINAL or self._client is None:
            return
        client = self._client
        with contextlib.suppress(A2AError, TimeoutError, httpx.HTTPError):
            async with asyncio.timeout(_CANCEL_SECONDS):
                await asyncio.shield(client.cancel_task(pb.CancelTaskRequest(id=following.task_id)))
            logger.info("A2A agent %r: task %s cancelled", self.name, following.task_id)

    def _described(self, error: A2AError) -> str:
        """Why a request failed; a refusal of our credentials names what to check (and drops a kept OAuth token)."""
        status = _status_of(error)
        if status in (401, 403):
            if self._oauth is not None:
                self._oauth.forget()
            return f"{self.config.endpoint} refused our credentials (HTTP {status}): {self._auth_advice()}"
        return _describe(error)

    def _may_have_acted(self, reason: str) -> str:
        return f"{reason}; not sent again, since the agent may have acted on it"

    # --- results ---

    def _outcome(self, started: datetime, following: _Following) -> DelegationResult:
        if following.answer is not None:
            output = _text_of(following.answer.parts)
            return self._result(started, DelegationStatus.SUCCEEDED, following, output=output)
        if following.state == pb.TASK_STATE_COMPLETED:
            parts = [part for artifact in following.artifacts.values() for part in artifact.parts]
            output = _text_of(parts) or following.status_text
            return self._result(started, DelegationStatus.SUCCEEDED, following, output=output, data=_data_of(parts))
        what = _STATE_WORDS.get(following.state, "ended the task")
        detail = f": {following.status_text[:500]}" if following.status_text else ""
        return self._result(started, DelegationStatus.FAILED, following, error=f"{self.name} {what}{detail}")

    def _result(
        self,
        started: datetime,
        status: DelegationStatus,
        following: _Following,
        *,
        output: str = "",
        data: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> DelegationResult:
        raw = following.task if following.task is not None else following.answer
        evidence = (
            (
                Evidence(
                    kind="json",
                    media_type="application/json",
                    content=MessageToJson(raw).encode(),
                    description="the A2A task as the agent last showed it",
                ),
            )
            if raw is not None
            else ()
        )
        return DelegationResult(
            status=status,
            output=output,
            data=data,
            error=error,
            evidence=evidence,
            started_at=started,
            finished_at=self._clock(),
            progress=tuple(following.steps),
        )


def _events(client: Client, request: pb.SendMessageRequest) -> AsyncGenerator[pb.StreamResponse]:
    """The events of sending a message (an async generator in the SDK, typed as an iterator there)."""
    return cast("AsyncGenerator[pb.StreamResponse]", client.send_message(request))


def _skill_description(skill: pb.AgentSkill) -> str:
    return " — ".join(text for text in (skill.name, skill.description) if text)


def _message(request: DelegationRequest, skill: str) -> pb.Message:
    """The message that starts a delegation: the input as text and as data, the skill in the metadata."""
    text = request.input.get("text")
    data = Struct()
    data.update(_json_safe(dict(request.input)))
    metadata = Struct()
    metadata.update({"skill": skill})
    return pb.Message(
        message_id=str(uuid.uuid4()),
        role=pb.ROLE_USER,
        parts=[
            pb.Part(text=text if isinstance(text, str) and text else json.dumps(request.input, ensure_ascii=False)),
            pb.Part(data=Value(struct_value=data)),
        ],
        metadata=metadata,
    )


def _json_safe(value: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return loaded


def _note(following: _Following, event: pb.StreamResponse) -> None:
    """Take in one event of the message's stream (or the one answer of a non-streaming send)."""
    if event.HasField("message"):
        following.answer = event.message
        following.state = pb.TASK_STATE_COMPLETED
    elif event.HasField("task"):
        _note_task(following, event.task)
    elif event.HasField("status_update"):
        update = event.status_update
        following.task_id = update.task_id or following.task_id
        following.context_id = update.context_id or following.context_id
        _note_status(following, update.status)
        if following.task is not None:
            following.task.status.CopyFrom(update.status)
    elif event.HasField("artifact_update"):
        update = event.artifact_update
        artifact = update.artifact
        kept = following.artifacts.get(artifact.artifact_id)
        if update.append and kept is not None:
            kept.parts.extend(artifact.parts)
        else:
            following.artifacts[artifact.artifact_id] = _copy(artifact)


def _copy(artifact: pb.Artifact) -> pb.Artifact:
    copied = pb.Artifact()
    copied.CopyFrom(artifact)
    return copied


def _note_task(following: _Following, task: pb.Task) -> None:
    following.task = task
    following.task_id = task.id
    following.context_id = task.context_id
    _note_status(following, task.status)
    if task.artifacts:
        following.artifacts = {artifact.artifact_id: _copy(artifact) for artifact in task.artifacts}


def _note_status(following: _Following, status: pb.TaskStatus) -> None:
    following.state = status.state
    following.status_text = _text_of(status.message.parts) if status.HasField("message") else ""
    if status.state != pb.TASK_STATE_WORKING or not following.status_text.strip():
        return
    # The agent's words are data: one plain line, cut to length; a status read again (polling) is no new step.
    step = plain(following.status_text, limit=_STEP_CHARS)
    if following.steps and following.steps[-1] == step:
        return
    following.steps.append(step)
    del following.steps[:-_MOST_STEPS]
    following.unreported.append(step)


def _text_of(parts: Collection[pb.Part]) -> str:
    return "\n".join(part.text for part in parts if part.WhichOneof("content") == "text")


def _data_of(parts: Collection[pb.Part]) -> dict[str, Any] | None:
    for part in parts:
        if part.WhichOneof("content") == "data":
            value = MessageToDict(part.data)
            if isinstance(value, dict):
                return value
    return None


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _never_left(error: A2AError) -> bool:
    """The SDK wraps the HTTP client's error: only a connection that was never made proves nothing was sent."""
    return any(isinstance(cause, _NOT_SENT) for cause in _causes(error))


def _is_transport_error(error: A2AError) -> bool:
    return any(isinstance(cause, httpx.TransportError) for cause in _causes(error))


def _is_status_error(error: A2AError) -> bool:
    return any(isinstance(cause, httpx.HTTPStatusError) for cause in _causes(error))


def _status_of(error: A2AError) -> int | None:
    for cause in _causes(error):
        if isinstance(cause, httpx.HTTPStatusError):
            return cause.response.status_code
    return None


def _describe(error: A2AError) -> str:
    for cause in _causes(error):
        if isinstance(cause, httpx.HTTPStatusError):
            return f"the agent answered HTTP {cause.response.status_code}"
        if isinstance(cause, httpx.TimeoutException):
            return "the agent stopped answering (timed out)"
        if isinstance(cause, httpx.TransportError):
            return f"the connection to the agent ended ({type(cause).__name__})"
    return f"the agent answered with an error: {error.message[:300]}"
