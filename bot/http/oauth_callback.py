"""`GET /api/oauth/callback`: where a vendor's authorization server sends a person back after they signed in; and
`GET /api/oauth/start/{sign_in}`: where the sign-in card's button sends them first.

The card's button is the bot's own link, signed when the card was written (with the artifact links' key) and valid
while the sign-in waits: it redirects once to the vendor's authorization URL, which the sign-in keeps sealed (it holds
the request's `state`, so neither the outbox nor the card holds it in the clear). A link that is tampered with,
expired, or whose sign-in is no longer open (or was opened already) is refused with no URL.

The sign-in card's link carries a `state` the bot remembered (hashed) for that person and delegation; the callback
hands the code to the sign-in with that state, which the waiting delegation (at whichever replica) exchanges for
tokens with the PKCE verifier only it holds (planner/services/oauth.py). A state is answered once, before it
expires: an unknown, reused or expired one, or a malformed request, is refused with 400 and nothing is kept.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.artifacts import ArtifactLinks
from bot.cards.sign_in import START_PATH
from bot.text import messages
from planner.services.oauth import answer_sign_in, take_authorization_url
from planner.store import Store
from planner.store.vault import Vault

logger = logging.getLogger(__name__)

CALLBACK_PATH = "/api/oauth/callback"
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
"""The page's address holds the code: it is neither cached nor passed on as a referrer."""


def add_oauth_callback_route(app: web.Application, store: Store, vault: Vault, links: ArtifactLinks) -> None:
    """Serve `GET /api/oauth/callback` on `app`, answering the sign-ins kept in `store`, and the sign-in cards' links
    (`GET /api/oauth/start/{sign_in}`, checked with `links`)."""

    async def start(request: web.Request) -> web.Response:
        try:
            sign_in_id = int(request.match_info["sign_in"])
            expires = int(request.query.get("expires", ""))
        except ValueError:
            sign_in_id = expires = 0
        signature = request.query.get("signature", "")
        path = START_PATH.format(sign_in=sign_in_id)
        url = None
        if sign_in_id and links.verify(path, expires, signature, now=store.clock()):
            url = await take_authorization_url(store, vault, sign_in_id)
        if url is None:
            logger.info("refused a sign-in link that is not valid, expired, or spent")
            return web.Response(status=403, text=messages.SIGN_IN_LINK_SPENT, headers=_HEADERS)
        raise web.HTTPFound(url, headers=_HEADERS)

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
    app.router.add_get(START_PATH.replace("{sign_in}", "{sign_in:\\d+}"), start)
