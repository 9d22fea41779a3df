"""The Teams app package: the manifest filled in for one Azure Bot, its two icons, and `cos manifest build`."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

MANIFEST_DIR = Path(__file__).resolve().parent.parent / "manifest"
DEFAULT_PACKAGE = MANIFEST_DIR / "build" / "chief-of-staff.zip"
APP_ID_PLACEHOLDER = "${{MICROSOFT_APP_ID}}"
ACCENT_COLOR = "#2F4FB5"
COLOR_ICON_SIZE = 192
OUTLINE_ICON_SIZE = 32

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# Teams accepts only plain MAJOR.MINOR.PATCH app versions, no pre-release or build suffix.
_APP_VERSION = re.compile(r"^(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)$")
_PLACEHOLDER = re.compile(r"\$\{\{[^}]*\}\}")
# A fixed timestamp keeps the zip byte-identical between builds of the same manifest.
_ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


class ManifestError(ValueError):
    """The app package cannot be built; the message says what to fix."""


class InvalidAppId(ManifestError):
    """The Microsoft App ID is missing or is not a GUID."""

    def __init__(self, app_id: str) -> None:
        how = (
            "set MICROSOFT_APP_ID (or pass --app-id) to the Azure Bot's Microsoft App ID, "
            "a GUID like 00000000-0000-0000-0000-000000000000"
        )
        if not app_id:
            super().__init__(f"No Microsoft App ID to put in the Teams manifest: {how}.")
        else:
            super().__init__(f"The Microsoft App ID {app_id!r} is not a GUID: {how}.")


class InvalidAppVersion(ManifestError):
    """The app version is not the MAJOR.MINOR.PATCH form Teams requires."""

    def __init__(self, version: str) -> None:
        super().__init__(
            f"The app version {version!r} is not valid: Teams wants MAJOR.MINOR.PATCH (like 1.0.3), "
            "higher than the version already uploaded."
        )


class TemplateError(ManifestError):
    """A file of the manifest template is missing or broken."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"Cannot use the manifest template file {path}: {problem}. The template lives in the manifest/ folder "
            "of a source checkout; restore it from git (icons: run "
            "`python -c 'from bot.manifest import write_icon_pngs; write_icon_pngs()'`)."
        )


class PackageWriteError(ManifestError):
    """The app package could not be written to disk."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"Cannot write the app package to {path}: {reason}. Choose another place with --out.")


def _load_template(template_dir: Path) -> str:
    path = template_dir / "manifest.json"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise TemplateError(path, error.strerror or str(error)) from error


def build_manifest(app_id: str, *, version: str | None = None, template_dir: Path = MANIFEST_DIR) -> dict[str, Any]:
    """The manifest template with the app id (and optionally the app version) filled in."""
    app_id = app_id.strip()
    if not _GUID.match(app_id):
        raise InvalidAppId(app_id)
    if version is not None and not _APP_VERSION.match(version):
        raise InvalidAppVersion(version)
    # The app id is a validated GUID, so substituting it into the JSON text cannot break the JSON.
    text = _load_template(template_dir).replace(APP_ID_PLACEHOLDER, app_id)
    if leftover := _PLACEHOLDER.search(text):
        raise TemplateError(
            template_dir / "manifest.json", f"it has a placeholder this build cannot fill, {leftover[0]}"
        )
    try:
        manifest: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as error:
        raise TemplateError(template_dir / "manifest.json", f"it is not valid JSON ({error})") from error
    if version is not None:
        manifest["version"] = version
    return manifest


def build_package(app_id: str, out: Path, *, version: str | None = None, template_dir: Path = MANIFEST_DIR) -> Path:
    """Write the zip Teams' "Upload a custom app" takes: manifest.json and the two icons at its root."""
    manifest = build_manifest(app_id, version=version, template_dir=template_dir)
    icons: dict[str, bytes] = {}
    for kind in ("color", "outline"):
        name = manifest["icons"][kind]
        try:
            icons[name] = (template_dir / name).read_bytes()
        except OSError as error:
            raise TemplateError(template_dir / name, error.strerror or str(error)) from error
    entries = {"manifest.json": (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode(), **icons}
    partial = out.with_name(out.name + ".partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as package:
            for name, data in entries.items():
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIMESTAMP)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16  # rw-r--r-- when unpacked, instead of no permissions at all
                package.writestr(info, data)
        partial.replace(out)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise PackageWriteError(out, error.strerror or str(error)) from error
    return out


# --- Icons -------------------------------------------------------------------------------------------------------
# Drawn from geometry rather than kept as opaque binaries, so anyone can change them with a text editor and
# tests can check the committed PNGs are what this code draws. The glyph is a "C" whose opening a check mark
# breaks through. Coordinates are in a unit box, y pointing down.

_RING_RADIUS = 0.38
_STROKE_HALF_WIDTH = 0.08
# The ring is open on the upper right, where the check mark leaves it (angles in degrees, y up, 0 = east).
_GAP_FROM_DEG, _GAP_TO_DEG = -25.0, 80.0
_CHECK = ((0.35, 0.50), (0.48, 0.63), (0.84, 0.25))


def _near_segment(u: float, v: float, a: tuple[float, float], b: tuple[float, float], reach: float) -> bool:
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((u - ax) * dx + (v - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(u - (ax + t * dx), v - (ay + t * dy)) <= reach


def _ring_end(angle_deg: float) -> tuple[float, float]:
    angle = math.radians(angle_deg)
    return 0.5 + _RING_RADIUS * math.cos(angle), 0.5 - _RING_RADIUS * math.sin(angle)


def _glyph_contains(u: float, v: float) -> bool:
    if any(_near_segment(u, v, a, b, _STROKE_HALF_WIDTH) for a, b in itertools.pairwise(_CHECK)):
        return True
    x, y = u - 0.5, 0.5 - v
    on_ring = abs(math.hypot(x, y) - _RING_RADIUS) <= _STROKE_HALF_WIDTH
    if on_ring and not _GAP_FROM_DEG < math.degrees(math.atan2(y, x)) < _GAP_TO_DEG:
        return True
    # Round caps where the ring stops.
    return any(
        math.hypot(u - cx, v - cy) <= _STROKE_HALF_WIDTH
        for cx, cy in (_ring_end(_GAP_FROM_DEG), _ring_end(_GAP_TO_DEG))
    )


def _coverage(size: int, box_start: float, box_size: float, samples: int) -> list[list[float]]:
    """Share of each pixel the glyph covers, the glyph's unit box spanning `box_size` pixels from `box_start`."""
    offsets = [(i + 0.5) / samples for i in range(samples)]
    total = samples * samples
    inside_box = range(math.floor(box_start), math.ceil(box_start + box_size))
    rows: list[list[float]] = []
    for py in range(size):
        row: list[float] = []
        for px in range(size):
            if px not in inside_box or py not in inside_box:
                row.append(0.0)  # the glyph stays inside its unit box
                continue
            hits = sum(
                _glyph_contains((px + ox - box_start) / box_size, (py + oy - box_start) / box_size)
                for oy in offsets
                for ox in offsets
            )
            row.append(hits / total)
        rows.append(row)
    return rows


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return int(hex_color[1:3], 16), int(hex_color[3:5], 16), int(hex_color[5:7], 16)


def render_color_icon() -> list[bytes]:
    """Rows of RGB pixels: a white glyph, anti-aliased, on the accent colour; the glyph in the central 96x96."""
    background = _rgb(ACCENT_COLOR)
    rows: list[bytes] = []
    # Teams' design guidance: a 96x96 symbol with 48 px of padding, so the tile crops cleanly in every size.
    for coverage_row in _coverage(COLOR_ICON_SIZE, 48.0, 96.0, samples=4):
        row = bytearray()
        for coverage in coverage_row:
            row.extend(round(channel + (255 - channel) * coverage) for channel in background)
        rows.append(bytes(row))
    return rows


def render_outline_icon() -> list[bytes]:
    """Rows of RGBA pixels: the glyph in pure white on full transparency, as Teams requires of outline icons."""
    rows: list[bytes] = []
    # Teams accepts only white and transparent here, so coverage is thresholded instead of blended.
    for coverage_row in _coverage(OUTLINE_ICON_SIZE, 1.0, OUTLINE_ICON_SIZE - 2.0, samples=4):
        row = bytearray()
        for coverage in coverage_row:
            row.extend((255, 255, 255, 255) if coverage >= 0.5 else (0, 0, 0, 0))
        rows.append(bytes(row))
    return rows


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(rows: Sequence[bytes], *, width: int, alpha: bool) -> bytes:
    """An 8-bit PNG of the given rows of RGB (or RGBA when `alpha`) pixels."""
    color_type = 6 if alpha else 2
    header = struct.pack(">IIBBBBB", width, len(rows), 8, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 (None) on every row
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    )


def write_icon_pngs(folder: Path = MANIFEST_DIR) -> tuple[Path, Path]:
    """Draw color.png (192x192, opaque) and outline.png (32x32, white on transparent) into `folder`."""
    color = folder / "color.png"
    outline = folder / "outline.png"
    color.write_bytes(encode_png(render_color_icon(), width=COLOR_ICON_SIZE, alpha=False))
    outline.write_bytes(encode_png(render_outline_icon(), width=OUTLINE_ICON_SIZE, alpha=True))
    return color, outline


# --- cos manifest build ------------------------------------------------------------------------------------------


class AppIdSettings(Protocol):
    """What `cos manifest build` needs from the settings."""

    @property
    def app_id(self) -> str: ...


def _build_command(args: argparse.Namespace, settings: AppIdSettings) -> int:
    app_id = args.app_id if args.app_id is not None else settings.app_id
    try:
        path = build_package(app_id, args.out, version=args.app_version)
    except ManifestError as error:
        print(f"cos manifest build: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0


def add_manifest_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `cos manifest build [--out PATH] [--app-id GUID] [--app-version X.Y.Z]`."""
    manifest = subparsers.add_parser("manifest", help="the Teams app package")
    commands = manifest.add_subparsers(dest="manifest_command", required=True, metavar="MANIFEST_COMMAND")
    build = commands.add_parser("build", help="write the app package to upload to Teams")
    build.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_PACKAGE,
        metavar="PATH",
        help=f"where to write the zip (default {DEFAULT_PACKAGE})",
    )
    build.add_argument("--app-id", metavar="GUID", help="the Azure Bot's Microsoft App ID (default MICROSOFT_APP_ID)")
    build.add_argument(
        "--app-version",
        metavar="X.Y.Z",
        help="the app version; raise it each time you upload a changed package (default: the template's)",
    )
    build.set_defaults(handler=_build_command)
