"""The measurement chart: tasks burn-up and each KPI against its target pace, drawn with matplotlib as a PNG.

Only matplotlib's object API and its Agg canvas are used (no `pyplot`), so drawing needs no display, sets no
global backend and keeps no figure alive after it is rendered.

A chart reaches Teams inline (a `data:` URI in the card's Image) or, when it would not fit in a message, from a
signed, expiring URL the bot serves (`GET /api/charts/{tenant}/{plan}.png?as_of=…&expires=…&signature=…`). The
signature is an HMAC-SHA256 over the path, the day and the expiry, keyed with a key derived from the secret keys
(`COS_SECRET_KEYS`), so only the bot can mint a link, and a link stops working when it expires.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import logging
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from aiohttp import web
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator
from PIL import Image

from bot.settings import Settings
from planner.domain.errors import PlanNotFound
from planner.domain.measurement import MeasurementReport, measure, series_names
from planner.services.tenants import Tenants
from planner.store.vault import VaultError

logger = logging.getLogger(__name__)

WIDTH_INCHES, HEIGHT_INCHES, DPI = 11.5, 8.0, 72
"""828 x 576 px. Teams (and its emulator) shows a card's image about 414 px wide, half the size it is drawn: text is
drawn at twice the size it is read (ticks at 21 px read at about 10 px)."""
SHOWN_WIDTH_PX = 414
TITLE_SIZE, LABEL_SIZE, TICK_SIZE, LEGEND_SIZE = 25, 23, 21, 21
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PALETTE = 64
CHART_PATH = "/api/charts/{tenant}/{plan}.png"
LINK_LIFETIME = timedelta(days=7)
_KEY_LABEL = b"cos chart links v1"


def burn_up(report: MeasurementReport) -> tuple[list[date], list[int], list[int]]:
    """Per day of the master plan up to the day measured: the tasks done by then, and the tasks planned by then."""
    window = report.facts.master.window
    last = min(report.as_of, window.end)
    days = [window.start + timedelta(days=n) for n in range(max((last - window.start).days + 1, 0))]
    done = [sum(1 for t in report.facts.tasks if t.done_at is not None and t.done_at.date() <= d) for d in days]
    scope = [sum(1 for t in report.facts.tasks if t.created_at.date() <= d) for d in days]
    return days, done, scope


def build_figure(report: MeasurementReport) -> Figure:
    """The chart as a matplotlib Figure: two panels, one question each, stacked at full width: are the tasks getting
    done (burn-up), and is each KPI keeping its target pace (as % of the way to target, each line named at its end)."""
    figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI)
    # Fixed margins: matplotlib's layout engines measure every label first, which doubled the drawing time.
    tasks_axes, kpi_axes = figure.subplots(
        2, 1, gridspec_kw={"left": 0.08, "right": 0.91, "bottom": 0.17, "top": 0.93, "hspace": 0.5}
    )
    days, done, scope = burn_up(report)
    tasks_axes.plot(days, scope, label="planned", color="#8a8886", linestyle="--", linewidth=2)
    tasks_axes.plot(days, done, label="done", color="#107c10", linewidth=3)
    for values, word, color in ((scope, "planned", "#605e5c"), (done, "done", "#107c10")):
        if days:
            tasks_axes.annotate(
                f"{word} {values[-1]}",
                (days[-1], values[-1]),
                xytext=(6, 0),
                textcoords="offset points",
                fontsize=LABEL_SIZE,
                color=color,
                va="center",
            )
    tasks_axes.set_title("Are the tasks getting done?", fontsize=TITLE_SIZE, loc="left")
    tasks_axes.set_xlim(report.facts.master.window.start, report.facts.master.window.end)
    tasks_axes.set_ylim(bottom=0)
    tasks_axes.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    unread: list[str] = []
    for name, series in zip(series_names(report.facts.series), report.facts.series, strict=True):
        metric, window = series.metric, series.plan.window
        span = metric.target - metric.baseline
        if span == 0:
            continue
        (line,) = kpi_axes.plot(
            [window.start, window.end], [0.0, 100.0], linestyle=":", linewidth=2, label=f"{name} target pace"
        )
        known = [r for r in series.readings if r.at.date() <= report.as_of]
        shares = [(r.value - metric.baseline) / span * 100 for r in known]
        kpi_axes.plot(
            [r.at.date() for r in known],
            shares,
            marker="o",
            markersize=6,
            linewidth=3,
            color=line.get_color(),
            label=name,
        )
        if not known:
            unread.append(name)
            continue
        kpi_axes.annotate(
            f"{name} {round(shares[-1])}%",
            (known[-1].at.date(), shares[-1]),
            xytext=(6, 0),
            textcoords="offset points",
            fontsize=LABEL_SIZE,
            color=line.get_color(),
            va="center",
            annotation_clip=False,
        )
    kpi_axes.set_title("Is each KPI on its target pace? (% of target)", fontsize=TITLE_SIZE, loc="left")
    kpi_axes.set_xlim(report.facts.master.window.start, report.facts.master.window.end)
    kpi_axes.text(
        0.0,
        -0.5,
        "dotted: target pace · solid: readings" + (f" · no reading yet: {', '.join(unread)}" if unread else ""),
        transform=kpi_axes.transAxes,
        fontsize=LEGEND_SIZE,
        color="#605e5c",
        wrap=True,
    )
    for axes in (tasks_axes, kpi_axes):
        axes.tick_params(labelsize=TICK_SIZE)
        axes.axvline(report.as_of, color="#c8c6c4", linewidth=1.5)
        axes.grid(axis="y", color="#edebe9")
        locator = AutoDateLocator(maxticks=5)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(DateFormatter("%d %b"))
    # Text drawn without anti-aliasing: a third of the bytes, so the larger chart still fits inline in a message;
    # Teams scales the image down, which smooths it.
    for text in figure.findobj(Text):
        text.set_antialiased(False)
    return figure


def render_png(figure: Figure) -> bytes:
    """The figure as a PNG of at most PALETTE colours: a quarter of the bytes of a true-colour one, so the chart
    fits inline in a Teams message (about 28 KB in all)."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    buffer = io.BytesIO()
    image.quantize(colors=PALETTE).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


_DRAWING = threading.Lock()
"""matplotlib keeps process-wide state (font cache, rcParams) that is not thread-safe: one chart at a time."""


def chart_png(report: MeasurementReport) -> bytes:
    """The chart of `report` as PNG bytes; safe to call from several threads (they take turns)."""
    with _DRAWING:
        return render_png(build_figure(report))


def data_uri(png: bytes) -> str:
    """The PNG inline, as a card's Image can carry it."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# ---- signed links ------------------------------------------------------------------------------------------------


def signing_keys(settings: Settings, *, label: bytes = _KEY_LABEL) -> tuple[bytes, ...]:
    """Link keys derived from the configured secret keys (newest first); empty when no vault key is configured.
    `label`: what the links open (charts by default), so one kind's signature opens nothing of another.

    Raises VaultError for a malformed key.
    """
    vault = settings.vault()
    if vault is None:
        return ()
    secrets = [k.strip() for k in settings.secret_keys.split(",") if k.strip()]
    if not secrets:
        # Local mode without COS_SECRET_KEYS: `vault()` made (or read) the key file.
        with open(settings.secret_key_file, encoding="ascii") as key_file:
            secrets = [key_file.read().strip()]
    return tuple(hmac.new(secret.encode(), label, hashlib.sha256).digest() for secret in secrets)


def _message(path: str, as_of: date, expires: int) -> bytes:
    return f"{path}\n{as_of.isoformat()}\n{expires}".encode()


@dataclass(frozen=True)
class ChartLinks:
    """Mints and checks signed, expiring chart links."""

    keys: tuple[bytes, ...]
    base_url: str = ""

    def link(self, tenant_id: str, plan_id: int, as_of: date, *, now: datetime) -> str:
        """A URL to the chart of `plan_id` as of `as_of`, valid for LINK_LIFETIME from `now`."""
        path = CHART_PATH.format(tenant=tenant_id, plan=plan_id)
        expires = int((now + LINK_LIFETIME).timestamp())
        signature = hmac.new(self.keys[0], _message(path, as_of, expires), hashlib.sha256).hexdigest()
        return f"{self.base_url.rstrip('/')}{path}?as_of={as_of.isoformat()}&expires={expires}&signature={signature}"

    def verify(self, path: str, as_of: date, expires: int, signature: str, *, now: datetime) -> bool:
        """True when `signature` is one of ours for this path, day and expiry, and the expiry is still ahead."""
        if expires <= now.timestamp():
            return False
        message = _message(path, as_of, expires)
        return any(
            hmac.compare_digest(hmac.new(key, message, hashlib.sha256).hexdigest(), signature) for key in self.keys
        )


class ChartEndpoint:
    """`GET /api/charts/{tenant}/{plan}.png`: the chart, drawn from the plan as it stands, for a valid link only.

    The link keys are derived on the first request, not when the app is built (in local mode that reads, or makes,
    the key file)."""

    def __init__(self, tenants: Tenants, settings: Settings) -> None:
        self._tenants = tenants
        self._store = tenants.store
        self._settings = settings
        self._links: ChartLinks | None = None

    def links(self) -> ChartLinks:
        if self._links is None:
            try:
                self._links = ChartLinks(signing_keys(self._settings))
            except (VaultError, OSError) as error:
                logger.error("chart links are off: %s", error)
                self._links = ChartLinks(())
        return self._links

    async def handle(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        try:
            plan_id = int(request.match_info["plan"])
            as_of = date.fromisoformat(request.query.get("as_of", ""))
            expires = int(request.query.get("expires", ""))
        except ValueError:
            return web.json_response({"error": "This chart link is not valid."}, status=403)
        signature = request.query.get("signature", "")
        path = CHART_PATH.format(tenant=tenant, plan=plan_id)
        links = self.links()
        if not links.keys or not links.verify(path, as_of, expires, signature, now=self._store.clock()):
            logger.warning("refused a chart link with a bad or expired signature")
            return web.json_response({"error": "This chart link is not valid or has expired."}, status=403)
        try:
            report = measure(await self._tenants(tenant).measurement.facts(plan_id), as_of)
        except PlanNotFound:
            return web.json_response({"error": "That plan no longer exists."}, status=404)
        return web.Response(
            body=await asyncio.to_thread(chart_png, report),
            content_type="image/png",
            headers={"Cache-Control": "private, max-age=3600"},
        )


def add_chart_routes(app: web.Application, tenants: Tenants, settings: Settings) -> None:
    """Serve `GET /api/charts/{tenant}/{plan}.png` on `app`."""
    app.router.add_get("/api/charts/{tenant}/{plan:\\d+}.png", ChartEndpoint(tenants, settings).handle)
