"""`POST /api/metrics/events`: connected systems post signed KPI readings (see planner/services/ingestion.py).

Signed exactly like context events (bot/http/context_events.py): the same registered sources, headers and HMAC-SHA256
secrets (`cos context add-source NAME --tenant T`). The body is one reading or a list of them:
`{"id": "evt-7", "sent_at": "2026-02-15T12:00:05Z", "metric": "SQLs", "value": 140, "unit": "SQL",
"at": "2026-02-15T12:00:00Z", "plan": 1}`: `id` is unique for the source, `sent_at` when it is sent (within 5
minutes of the bot's clock), `at` when the value was measured, `plan` only when several plans track that name.
Readings are idempotent by (metric, time, source): a new value for the same metric and time corrects it.

Answers: 202 `{"stored": n}`; 400 for a body that is not JSON or a reading that is wrong (unknown metric, wrong
unit, a missing field, a `sent_at` too far from the bot's clock: the message says which), and then nothing of the
post is stored; 409 for an event id the source posted before (a replay: nothing of the post is stored); 401, 413
and 503 as for context events.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot.http.context_events import ContextEventsEndpoint
from bot.settings import Settings
from planner.domain.ingestion import parse_metric_events
from planner.domain.model import MetricReading
from planner.services.ingestion import ReplayedMetricEvent
from planner.services.tenants import Tenants

logger = logging.getLogger(__name__)

PATH = "/api/metrics/events"


class MetricEventsEndpoint(ContextEventsEndpoint):
    """The handler of `POST /api/metrics/events`."""

    async def handle(self, request: web.Request) -> web.Response:
        return await self.post_signed(
            request,
            self._post,
            replayed=ReplayedMetricEvent,
            log=logger,
            stored_what="metric reading(s)",
        )

    async def _post(self, tenant: str, source: str, payload: Any) -> list[MetricReading]:
        return await self._tenants(tenant).metric_events.post(source, parse_metric_events(payload))


def add_metric_routes(app: web.Application, tenants: Tenants, settings: Settings) -> None:
    """Serve `POST /api/metrics/events` on `app`."""
    app.router.add_post(PATH, MetricEventsEndpoint(tenants, settings).handle)
