"""The HTTP surface: `POST /api/messages` (Bot Framework activities), `POST /api/context/events` (facts from
connected systems, see bot/http/context_events.py), `POST /api/metrics/events` (KPI readings,
bot/http/metric_events.py), `POST /api/budgets/spend` (spend, bot/http/spend_events.py), `GET /api/charts/...`
(signed chart links, see bot/charts.py) and `GET /healthz`."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import jwt
from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

from bot.artifacts import add_artifact_routes
from bot.charts import add_chart_routes
from bot.http.context_events import add_context_routes
from bot.http.metric_events import add_metric_routes
from bot.http.request_json import BadJSON, read_json
from bot.http.spend_events import add_spend_routes
from bot.settings import Settings, is_loopback
from bot.teams.auth import SigningKeysUnavailable
from bot.teams.botbuilder import ActivityUnreadable, Adapter, process
from bot.teams.handler import ChiefOfStaffBot, printable_activity
from planner.store import Store

logger = logging.getLogger(__name__)

STORE_KEY: web.AppKey[Store] = web.AppKey("store", Store)
ADAPTER_KEY: web.AppKey[Adapter] = web.AppKey("adapter", Adapter)
BOT_KEY: web.AppKey[ChiefOfStaffBot] = web.AppKey("bot", ChiefOfStaffBot)


_KINDS = {str: "text", bool: "true or false", dict: "an object"}
_TEXT_FIELDS = "id channelId serviceUrl text replyToId locale localTimezone textFormat name timestamp localTimestamp"
_ACCOUNT = {"id": str, "name": str, "aadObjectId": str, "role": str}
ACTIVITY_SHAPE: dict[str, Any] = {
    **dict.fromkeys(_TEXT_FIELDS.split(), str),
    "from": _ACCOUNT,
    "recipient": _ACCOUNT,
    "conversation": {"id": str, "name": str, "conversationType": str, "tenantId": str, "isGroup": bool},
    "channelData": {"tenant": {"id": str}},
    "entities": [dict],
    "attachments": [dict],
    "membersAdded": [_ACCOUNT],
    "membersRemoved": [_ACCOUNT],
}
"""The types of the fields the bot reads (absent or null is fine): anything else is refused before botbuilder,
whose deserializer fails on it (500) or lets it through to break the turn."""


def _shape_problem(value: Any, shape: Any, path: str) -> str | None:
    """What in `value` does not fit `shape` (a type, a dict of field shapes, or a one-item list), or None."""
    if value is None:
        return None
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"{path!r} must be an object"
        for name, inner in shape.items():
            problem = _shape_problem(value.get(name), inner, f"{path}.{name}" if path else name)
            if problem:
                return problem
        return None
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"{path!r} must be a list"
        for n, item in enumerate(value):
            problem = _shape_problem(item, shape[0], f"{path}[{n}]")
            if problem:
                return problem
        return None
    if not isinstance(value, shape):
        return f"{path!r} must be {_KINDS[shape]}"
    return None


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _read_activity(request: web.Request, max_bytes: int) -> dict[str, Any] | web.Response:
    """The activity in the request body, or the 4xx response that says what is wrong with it."""
    # The media type exactly (parameters such as charset aside): a browser sends `text/plain;application/json`
    # cross-site without asking first, and botbuilder would read it as JSON.
    if request.content_type != "application/json":
        return _problem(415, "Send the activity as JSON (Content-Type: application/json).")
    if request.content_length is not None and request.content_length > max_bytes:
        return _problem(413, f"The activity is larger than {max_bytes} bytes.")
    body = await request.content.read(max_bytes + 1)
    if len(body) > max_bytes:
        return _problem(413, f"The activity is larger than {max_bytes} bytes.")
    try:
        activity = read_json(body)
    except BadJSON as error:
        return _problem(400, str(error))
    if not isinstance(activity, dict):
        return _problem(400, "The activity must be a JSON object.")
    missing = [name for name in ("type",) if not isinstance(activity.get(name), str) or not activity.get(name)]
    if missing:
        return _problem(400, f"The activity lacks {', '.join(missing)}.")
    problem = _shape_problem(activity, ACTIVITY_SHAPE, "")
    if problem:
        return _problem(400, f"The activity's {problem}.")
    if not (activity.get("conversation") or {}).get("id"):
        return _problem(400, "The activity lacks conversation.id: there is nowhere to answer it.")
    return activity


def service_url_allowed(service_url: str, settings: Settings) -> bool:
    """Replies may only go to Teams' connector (plus configured hosts), or to loopback in local mode."""
    try:
        url = URL(service_url)
    except ValueError:
        return False
    host = (url.host or "").lower().rstrip(".")
    if url.scheme == "https" and host in settings.allowed_service_hosts:
        return True
    return settings.local_mode and url.scheme in ("http", "https") and is_loopback(host)


def _host_name(authority: str) -> str:
    """The host of a Host header or an origin's authority, without its port ([::1]:3978 -> ::1)."""
    if authority.startswith("["):
        return authority[1 : authority.find("]")] if "]" in authority else ""
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def local_request_problem(request: web.Request, *, on_the_network: bool) -> web.Response | None:
    """Why a POST to a local-mode bot is refused, or None: the bot authenticates no one, so it takes requests only
    from this machine's own programs, never from a web page.

    - Host must name loopback (localhost, 127.x, [::1], any port): a page on a name that an attacker's DNS points
      at 127.0.0.1 (DNS rebinding) sends its own name. With --insecure-no-auth on the network, an IP address is
      fine too (a rebinding page cannot send one).
    - An Origin, when sent, must be loopback; a browser's `Sec-Fetch-Site: cross-site` is refused.
    """
    host = _host_name(request.headers.get("Host", "").strip().lower()).rstrip(".")
    if not (is_loopback(host) or (on_the_network and _is_ip_literal(host))):
        return _problem(421, "This bot runs in local mode: it answers only requests addressed to localhost.")
    origin = request.headers.get("Origin")
    if origin is not None:
        try:
            origin_host = URL(origin).host or ""
        except ValueError:
            origin_host = ""
        if not is_loopback(origin_host.lower()):
            return _problem(403, "This bot runs in local mode: it takes no requests from web pages of other sites.")
    if request.headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site":
        return _problem(403, "This bot runs in local mode: it takes no requests from web pages of other sites.")
    return None


def create_app(store: Store, adapter: Adapter, bot: ChiefOfStaffBot, settings: Settings) -> web.Application:
    """The aiohttp application; the caller owns the store, the adapter and the bot."""
    max_body_bytes = settings.max_body_bytes

    async def messages(request: web.Request) -> web.StreamResponse:
        activity = await _read_activity(request, max_body_bytes)
        if isinstance(activity, web.Response):
            return activity
        activity = printable_activity(activity)
        service_url = activity.get("serviceUrl")
        if not isinstance(service_url, str) or not service_url_allowed(service_url, settings):
            logger.warning("refused an activity whose service URL is not allowed")
            return _problem(403, "The activity's serviceUrl is not an allowed Bot Connector host.")
        try:
            with store.serving_a_person():
                response = await process(adapter, bot, request, activity)
        except web.HTTPException as error:
            if error.status in (401, 403):
                logger.warning("refused an activity that failed authentication (%s)", error.status)
            return _problem(error.status, error.reason or "refused")
        except SigningKeysUnavailable as error:
            logger.error("could not check an activity's token: %s", error)
            return web.json_response(
                {"error": "The bot cannot check tokens just now; try again shortly."},
                status=503,
                headers={"Retry-After": str(max(1, round(error.retry_after)))},
            )
        except ActivityUnreadable:
            return _problem(400, "The activity could not be read: a field has a value of the wrong form.")
        except jwt.PyJWTError as error:
            logger.warning("refused an activity with a malformed token (%s)", type(error).__name__)
            return _problem(401, "The Authorization token is not a valid Bot Framework token.")
        except Exception:
            logger.exception("an activity could not be processed")
            return _problem(500, "The bot could not process this activity.")
        return response

    async def healthz(_request: web.Request) -> web.Response:
        try:
            await store.ping()
        except Exception:
            logger.exception("health check: the database is not reachable")
            return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
        return web.json_response({"status": "ok", "database": "ok"})

    # Listening beyond loopback in local mode is only possible with --insecure-no-auth (bot/cli.py).
    on_the_network = not is_loopback(settings.host)

    @web.middleware
    async def local_callers_only(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST":
            problem = local_request_problem(request, on_the_network=on_the_network)
            if problem is not None:
                logger.warning("refused a %s request that did not come from this machine's own programs", request.path)
                return problem
        return await handler(request)

    app = web.Application(
        client_max_size=max_body_bytes, middlewares=[local_callers_only] if settings.local_mode else []
    )
    app[STORE_KEY] = store
    app[ADAPTER_KEY] = adapter
    app[BOT_KEY] = bot
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    add_context_routes(app, bot.tenants, settings)
    add_chart_routes(app, bot.tenants, settings)
    add_artifact_routes(app, bot.tenants, settings)
    add_metric_routes(app, bot.tenants, settings)
    add_spend_routes(app, bot.tenants, settings)
    return app
