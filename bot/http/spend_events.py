"""`POST /api/budgets/spend`: connected systems post signed spend (see planner/services/budgets.py).

Signed exactly like metric and context events (bot/http/context_events.py): the same registered sources, headers and
HMAC-SHA256 secrets (`cos context add-source NAME --tenant T`). The body is one spend or a list of them:
`{"id": "spend-7", "sent_at": "2026-10-15T12:00:05Z", "plan": 2, "amount": 12500, "currency": "USD",
"on": "2026-10-15"}`: `id` is unique for the source, `sent_at` when it is sent (within 5 minutes of the bot's clock),
`on` the day the money was spent (counted at that day), `amount` in the currency's units (12500.50 for cents).

Answers: 202 `{"stored": n}`; 400 for a body that is not JSON or a spend that is wrong (unknown plan, another
currency than the budget's, a day to come or outside the plan's window, a master plan without a budget: the message
says which), and then nothing of the post is stored; 409 for an event id the source posted before (a replay:
nothing of the post is stored); 401, 413 and 503 as for context events.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot.http.context_events import ContextEventsEndpoint
from bot.settings import Settings
from planner.domain.budgets import Spend, parse_spend_events
from planner.services.budgets import ReplayedSpendEvent
from planner.services.tenants import Tenants

logger = logging.getLogger(__name__)

PATH = "/api/budgets/spend"


class SpendEventsEndpoint(ContextEventsEndpoint):
    """The handler of `POST /api/budgets/spend`."""

    async def handle(self, request: web.Request) -> web.Response:
        return await self.post_signed(
            request,
            self._post,
            replayed=ReplayedSpendEvent,
            log=logger,
            stored_what="spend(s)",
        )

    async def _post(self, tenant: str, source: str, payload: Any) -> list[Spend]:
        return await self._tenants(tenant).budgets.post(source, parse_spend_events(payload))


def add_spend_routes(app: web.Application, tenants: Tenants, settings: Settings) -> None:
    """Serve `POST /api/budgets/spend` on `app`."""
    app.router.add_post(PATH, SpendEventsEndpoint(tenants, settings).handle)
