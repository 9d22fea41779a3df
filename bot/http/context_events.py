"""`POST /api/context/events`: connected systems post signed facts about accounts (see planner/services/context.py).

A request carries three headers:
- `X-COS-Source`: the source's name, as an admin registered it (`cos context add-source NAME --tenant T`);
- `X-COS-Tenant`: the Teams tenant id;
- `X-COS-Signature`: `sha256=<hex HMAC-SHA256 of the raw body, keyed with the source's secret>`.

The body is one event or a list of events, as JSON:
`{"id": "evt-1", "type": "ticket_opened", "account": "acct-42", "at": "2026-01-05T09:00:00Z",
  "attributes": {"ticket_id": "T-9"}, "ttl_hours": 48, "observed_at": "2026-01-05T08:55:00Z"}`
(`attributes`, `ttl_hours` and `observed_at` are optional).

Answers: 202 `{"stored": n}`; 400 for a body that is not JSON or an event that is wrong (the message names the
field), or an event whose `at` is more than 5 minutes from the bot's clock; 401 whenever the request is not
signed by a registered source of that tenant (the same answer, whatever was wrong); 409 for an event id the source
posted before (nothing of that post is stored); 413 for a body over the size limit; 503 when the bot has no key to
keep secrets with. Secrets and signatures are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sized
from typing import Any

from aiohttp import web

from bot.http.request_json import BadJSON, read_json
from bot.settings import Settings
from bot.text.errors import describe_plain
from bot.text.problems import problem_message
from planner.domain.budgets import InvalidSpendEvent
from planner.domain.context import InvalidContextEvent, ReplayedContextEvent, StaleContextEvent, parse_events
from planner.domain.errors import PlannerError
from planner.domain.ingestion import InvalidMetricEvent
from planner.services.context import ContextSources
from planner.services.tenants import Tenants
from planner.store.vault import UndecryptableSecret, Vault, VaultError

logger = logging.getLogger(__name__)

PATH = "/api/context/events"
SOURCE_HEADER = "X-COS-Source"
TENANT_HEADER = "X-COS-Tenant"
SIGNATURE_HEADER = "X-COS-Signature"
UNAUTHENTICATED = (
    "Not signed by a registered source of this tenant. Send X-COS-Source (the source's name), X-COS-Tenant (the "
    "tenant id) and X-COS-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the source's secret>."
)
NO_VAULT = (
    "Context events are off: the bot has no key to keep source secrets with. Set COS_SECRET_KEYS to a key made by "
    "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'` and restart it."
)


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def refusal(status: int, error: PlannerError) -> web.Response:
    """The answer to a post the planner refused: its reason in words and, when the body had problems, each problem's
    code, path and message, for a sender to act on field by field."""
    body: dict[str, Any] = {"error": describe_plain(error)}
    if isinstance(error, InvalidContextEvent | InvalidMetricEvent | InvalidSpendEvent):
        body["problems"] = [
            {"code": problem.code.code, "path": problem.path, "message": problem_message(problem)}
            for problem in error.problems
        ]
    return web.json_response(body, status=status)


class ContextEventsEndpoint:
    """The handler of `POST /api/context/events`; the vault is taken from the settings on first use."""

    def __init__(self, tenants: Tenants, settings: Settings, *, max_body_bytes: int | None = None) -> None:
        self._tenants = tenants
        self._store = tenants.store
        self._settings = settings
        self._max_body_bytes = max_body_bytes or settings.max_body_bytes
        self._vault: Vault | None = None

    def vault(self) -> Vault | None:
        if self._vault is None:
            try:
                self._vault = self._settings.vault()
            except VaultError as error:
                logger.error("context events are off: %s", describe_plain(error))
        return self._vault

    async def handle(self, request: web.Request) -> web.Response:
        signed = await self.signed_json(request)
        if isinstance(signed, web.Response):
            return signed
        tenant, source, payload = signed
        try:
            events = parse_events(payload)
            stored = await self._tenants(tenant).facts.post(source, events)
        except (InvalidContextEvent, StaleContextEvent) as error:
            return refusal(400, error)
        except ReplayedContextEvent as error:
            return refusal(409, error)
        logger.info("stored %d context fact(s) from source %r (tenant %r)", len(stored), source, tenant)
        return web.json_response({"stored": len(stored)}, status=202)

    async def post_signed(
        self,
        request: web.Request,
        post: Callable[[str, str, Any], Awaitable[Sized]],
        *,
        replayed: type[PlannerError],
        log: logging.Logger,
        stored_what: str,
    ) -> web.Response:
        """The answer to a signed post whose events `post(tenant, source, payload)` checks and stores (used by
        bot/http/metric_events.py and bot/http/spend_events.py): 409 for a `replayed` event id, 400 for any other
        `PlannerError`, else 202 with the number stored, which is logged to `log` as `stored_what`."""
        signed = await self.signed_json(request)
        if isinstance(signed, web.Response):
            return signed
        tenant, source, payload = signed
        try:
            stored = await post(tenant, source, payload)
        except replayed as error:
            return refusal(409, error)
        except PlannerError as error:
            return refusal(400, error)
        log.info("stored %d %s from source %r (tenant %r)", len(stored), stored_what, source, tenant)
        return web.json_response({"stored": len(stored)}, status=202)

    async def signed_json(self, request: web.Request) -> tuple[str, str, Any] | web.Response:
        """(tenant, source, JSON body) of a request a registered source of that tenant signed, or the 4xx/503
        response that refuses it."""
        limit = self._max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _problem(413, f"The body is larger than {limit} bytes: post fewer events at a time.")
        body = await request.content.read(limit + 1)
        if len(body) > limit:
            return _problem(413, f"The body is larger than {limit} bytes: post fewer events at a time.")
        vault = self.vault()
        if vault is None:
            return _problem(503, NO_VAULT)
        source = request.headers.get(SOURCE_HEADER, "").strip().lower()
        tenant = request.headers.get(TENANT_HEADER, "").strip()
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not source or not tenant or not signature or len(source) > 100 or len(tenant) > 64:
            return _problem(401, UNAUTHENTICATED)
        try:
            signed = await ContextSources(self._store, tenant, vault).verify(source, body, signature)
        except UndecryptableSecret:
            logger.error(
                "context source %r of tenant %r has a secret no configured key decrypts: rotate it "
                "(cos context rotate-source)",
                source,
                tenant,
            )
            signed = False
        if not signed:
            logger.warning("refused events: not signed by a registered source (tenant %r)", tenant[:64])
            return _problem(401, UNAUTHENTICATED)
        try:
            return tenant, source, read_json(body)
        except BadJSON as error:
            return _problem(400, str(error))


def add_context_routes(app: web.Application, tenants: Tenants, settings: Settings) -> None:
    """Serve `POST /api/context/events` on `app`."""
    app.router.add_post(PATH, ContextEventsEndpoint(tenants, settings).handle)
