"""`GET /api/oauth/callback`: where a vendor's authorization server sends a person back after they signed in.

The sign-in card's link carries a `state` the bot remembered (hashed) for that person and delegation; the callback
hands the code to the sign-in with that state, which the waiting delegation (at whichever replica) exchanges for
tokens with the PKCE verifier only it holds (planner/services/oauth.py). A state is answered once, before it
expires: an unknown, reused or expired one, or a malformed request, is refused with 400 and nothing is kept.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.text import messages
from planner.services.oauth import answer_sign_in
from planner.store import Store
from planner.store.vault import Vault

logger = logging.getLogger(__name__)

CALLBACK_PATH = "/api/oauth/callback"
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
"""The page's address holds the code: it is neither cached nor passed on as a referrer."""


def add_oauth_callback_route(app: web.Application, store: Store, vault: Vault) -> None:
    """Serve `GET /api/oauth/callback` on `app`, answering the sign-ins kept in `store`."""

    async def callback(request: web.Request) -> web.Response:
        query = request.query
        if any(len(query.getall(key)) > 1 for key in query):
            answered = False
        else:
            answered = await answer_sign_in(store, vault, dict(query))
        if not answered:
            logger.info("refused an OAuth callback whose state no open sign-in has")
            return web.Response(status=400, text=messages.SIGN_IN_LINK_SPENT, headers=_HEADERS)
        return web.Response(text=messages.SIGNED_IN_PAGE, headers=_HEADERS)

    app.router.add_get(CALLBACK_PATH, callback)
