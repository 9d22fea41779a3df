"""`POST /api/a2a/push`: A2A agents post news of the tasks the bot follows (see `adapters.a2a.A2APush`).

A push is verified by the token the bot made for that delegation and gave the agent with its message, sent back in
the `X-A2A-Notification-Token` header. It only wakes the delegation, which then reads the task from the agent: the
body is not read, so nothing an agent (or anyone who learnt the URL) posts is believed.

Answers: 204 when a delegation running here expected it; 401 otherwise (a wrong or spent token, or a delegation
followed by another replica, which polls its task).
"""

from __future__ import annotations

import logging

from aiohttp import web

from adapters.a2a import PUSH_PATH, PUSH_TOKEN_HEADER, A2APush

logger = logging.getLogger(__name__)


def add_a2a_push_routes(app: web.Application, push: A2APush) -> None:
    """Serve `POST /api/a2a/push` on `app` for the delegations `push` knows."""

    async def handle(request: web.Request) -> web.Response:
        token = request.headers.get(PUSH_TOKEN_HEADER, "")
        if not token or not push.deliver(token):
            logger.info("refused an A2A push with no token a delegation here expects")
            return web.json_response({"error": "No delegation here expects this push."}, status=401)
        return web.Response(status=204)

    app.router.add_post(PUSH_PATH, handle)
