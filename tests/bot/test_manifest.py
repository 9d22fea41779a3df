from __future__ import annotations

import argparse
import json
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bot.manifest import (
    APP_ID_PLACEHOLDER,
    MANIFEST_DIR,
    InvalidAppId,
    InvalidAppVersion,
    TemplateError,
    add_manifest_command,
    build_manifest,
    build_package,
    render_color_icon,
    render_outline_icon,
    write_icon_pngs,
)
from bot.settings import Settings

APP_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "teams-manifest-1.29.schema.json"
REGENERATE = "regenerate them with `python -c 'from bot.manifest import write_icon_pngs; write_icon_pngs()'`"

EXPECTED_COMMANDS = [
    ("help", "What I can do"),
    ("plan", "Show the plan overview and health"),
    ("my tasks", "Your open tasks this week"),
    ("new plan", "Create a master plan: title, window, KPI targets"),
    ("add task", "Add a task to a plan"),
    ("done", "Mark a task done"),
    ("week", "Derive or show this week's plan"),
    ("record", "Record a metric reading"),
]

# The schema is written for JavaScript: one pattern (Excel custom function names, which our manifest never has)
# uses the ECMAScript Unicode class \p{L}, which Python's `re` cannot compile and would raise on if validation
# ever reached it. We swap in the `re` spelling of "a letter": [^\W\d_] is a word character that is neither a
# digit nor the underscore.
_ECMASCRIPT_PATTERNS = {r"^[\p{L}][\p{L}0-9._]*$": r"^[^\W\d_](?:[^\W\d_]|[0-9._])*$"}

# The schema declares draft-04 but uses `const` (from draft-06) for manifestVersion; Draft4Validator would skip it
# silently, so we teach it `const` to validate what Microsoft meant.
_TeamsManifestValidator = jsonschema.validators.extend(
    jsonschema.Draft4Validator, {"const": jsonschema.Draft6Validator.VALIDATORS["const"]}
)


def _python_patterns(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _python_pattern(value) if key == "pattern" else _python_patterns(value) for key, value in node.items()
        }
    if isinstance(node, list):
        return [_python_patterns(item) for item in node]
    return node


def _python_pattern(pattern: str) -> str:
    pattern = _ECMASCRIPT_PATTERNS.get(pattern, pattern)
    re.compile(pattern)  # a new ECMAScript-only pattern fails here, by name, rather than midway through validation
    return pattern


@pytest.fixture(scope="module")
def teams_schema() -> jsonschema.protocols.Validator:
    # No check_schema: the metaschema would not let us point out the one pattern we had to translate.
    return _TeamsManifestValidator(_python_patterns(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))))


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    pixels: list[tuple[int, int, int, int]]  # RGBA, row by row


def decode_png(data: bytes) -> Image:
    """A PNG decoder for 8-bit RGB/RGBA, non-interlaced images: enough to check our icons independently."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"bad CRC in {kind!r} chunk"
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0), "decoder handles 8-bit, non-interlaced images only"
    assert color_type in (2, 6), "decoder handles RGB and RGBA only"
    channels = 4 if color_type == 6 else 3
    stride = width * channels
    raw = zlib.decompress(idat)
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int, int]] = []
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        row_filter, row = line[0], bytearray(line[1:])
        for i in range(stride):
            left = row[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if row_filter == 1:
                row[i] = (row[i] + left) & 0xFF
            elif row_filter == 2:
                row[i] = (row[i] + up) & 0xFF
            elif row_filter == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif row_filter == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                row[i] = (row[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
        for x in range(width):
            px = row[x * channels : (x + 1) * channels]
            pixels.append((px[0], px[1], px[2], px[3] if channels == 4 else 255))
        previous = row
    return Image(width, height, pixels)


def _pixels_of(rows: list[bytes], channels: int) -> Iterator[tuple[int, int, int, int]]:
    for row in rows:
        for x in range(0, len(row), channels):
            px = row[x : x + channels]
            yield (px[0], px[1], px[2], px[3] if channels == 4 else 255)


def _commands_by_scope(manifest: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    lists = manifest["bots"][0]["commandLists"]
    return {
        scope: [(command["title"], command["description"]) for command in entry["commands"]]
        for entry in lists
        for scope in entry["scopes"]
    }


def test_built_manifest_validates_against_teams_schema_1_29(teams_schema: jsonschema.protocols.Validator) -> None:
    manifest = build_manifest(APP_ID)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in teams_schema.iter_errors(manifest)
    ]
    assert errors == []
    assert manifest["$schema"].endswith("/teams/v1.29/MicrosoftTeams.schema.json")
    assert manifest["manifestVersion"] == "1.29"


def test_schema_check_catches_a_broken_manifest(teams_schema: jsonschema.protocols.Validator) -> None:
    manifest = build_manifest(APP_ID)
    manifest["manifestVersion"] = "1.17"
    manifest["accentColor"] = "blue"
    del manifest["developer"]["privacyUrl"]
    assert len(list(teams_schema.iter_errors(manifest))) == 3


def test_app_id_fills_both_the_app_and_its_bot() -> None:
    manifest = build_manifest(f"  {APP_ID}\n")
    assert manifest["id"] == APP_ID
    assert manifest["bots"][0]["botId"] == APP_ID
    assert "${{" not in json.dumps(manifest)


def test_template_keeps_the_app_id_as_a_placeholder() -> None:
    template = json.loads((MANIFEST_DIR / "manifest.json").read_text(encoding="utf-8"))
    assert template["id"] == APP_ID_PLACEHOLDER
    assert template["bots"][0]["botId"] == APP_ID_PLACEHOLDER
    assert "webApplicationInfo" not in template


def test_bot_offers_every_command_in_personal_chat_teams_and_group_chats() -> None:
    bot = build_manifest(APP_ID)["bots"][0]
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    assert bot["supportsFiles"] is False
    assert bot["isNotificationOnly"] is False
    assert _commands_by_scope({"bots": [bot]}) == dict.fromkeys(["personal", "team", "groupChat"], EXPECTED_COMMANDS)
    for title, description in EXPECTED_COMMANDS:
        assert len(title) <= 32, title
        assert len(description) <= 128, description


def test_manifest_names_the_app_and_points_at_its_icons() -> None:
    manifest = build_manifest(APP_ID)
    assert manifest["name"] == {"short": "Chief of Staff", "full": "Chief of Staff: your marketing plan, followed up"}
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert re.fullmatch(r"#[0-9A-Fa-f]{6}", manifest["accentColor"])
    assert manifest.get("validDomains", []) == []
    assert all(url.startswith("https://") for key, url in manifest["developer"].items() if key.endswith("Url"))


@pytest.mark.parametrize("app_id", ["", "   "])
def test_missing_app_id_says_to_set_microsoft_app_id(app_id: str) -> None:
    with pytest.raises(InvalidAppId, match=r"No Microsoft App ID.*set MICROSOFT_APP_ID"):
        build_manifest(app_id)


@pytest.mark.parametrize("app_id", ["my-bot", "3f2504e0-4f89-11d3-9a0c", "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}"])
def test_app_id_that_is_not_a_guid_is_refused_with_advice(app_id: str) -> None:
    with pytest.raises(InvalidAppId, match=r"is not a GUID.*set MICROSOFT_APP_ID") as raised:
        build_manifest(app_id)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("app_id", ["00000000-0000-0000-0000-000000000000", "3F2504E0-4F89-11D3-9A0C-0305E82C3301"])
def test_any_guid_the_caller_passes_is_accepted_for_local_use(app_id: str) -> None:
    assert build_manifest(app_id)["bots"][0]["botId"] == app_id


def test_app_version_can_be_raised_for_an_update_but_only_as_major_minor_patch() -> None:
    assert build_manifest(APP_ID, version="1.4.2")["version"] == "1.4.2"
    assert re.fullmatch(r"\d+\.\d+\.\d+", build_manifest(APP_ID)["version"])
    with pytest.raises(InvalidAppVersion, match=re.escape("MAJOR.MINOR.PATCH")):
        build_manifest(APP_ID, version="1.4.2-beta")


def test_missing_template_error_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=re.escape(str(tmp_path / "manifest.json"))):
        build_manifest(APP_ID, template_dir=tmp_path)


def test_template_placeholder_the_build_cannot_fill_is_reported(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"id": "${{MICROSOFT_APP_ID}}", "name": "${{APP_NAME}}"}')
    with pytest.raises(TemplateError, match=re.escape("${{APP_NAME}}")):
        build_manifest(APP_ID, template_dir=tmp_path)


def test_color_icon_is_192_square_opaque_and_in_the_accent_colour() -> None:
    icon = decode_png((MANIFEST_DIR / "color.png").read_bytes())
    assert (icon.width, icon.height) == (192, 192)
    assert all(alpha == 255 for *_, alpha in icon.pixels)
    accent = build_manifest(APP_ID)["accentColor"]
    assert icon.pixels[0][:3] == tuple(int(accent[i : i + 2], 16) for i in (1, 3, 5))
    assert (255, 255, 255, 255) in icon.pixels, "the glyph is missing"


def test_outline_icon_is_32_square_white_on_transparent() -> None:
    icon = decode_png((MANIFEST_DIR / "outline.png").read_bytes())
    assert (icon.width, icon.height) == (32, 32)
    strays = {pixel for pixel in icon.pixels if pixel != (255, 255, 255, 255) and pixel[3] != 0}
    assert strays == set(), "Teams accepts only white and fully transparent pixels in the outline icon"
    white = sum(pixel[3] == 255 for pixel in icon.pixels)
    assert 0 < white < len(icon.pixels) // 2, "the glyph is missing or floods the icon"


def test_committed_icons_are_what_the_generator_draws(tmp_path: Path) -> None:
    color, outline = write_icon_pngs(tmp_path)
    for written, committed, drawn in [
        (color, MANIFEST_DIR / "color.png", list(_pixels_of(render_color_icon(), 3))),
        (outline, MANIFEST_DIR / "outline.png", list(_pixels_of(render_outline_icon(), 4))),
    ]:
        assert decode_png(written.read_bytes()).pixels == drawn
        assert decode_png(committed.read_bytes()).pixels == drawn, f"{committed.name} is stale: {REGENERATE}"


def test_package_holds_exactly_the_manifest_and_icons_at_the_zip_root(tmp_path: Path) -> None:
    out = build_package(APP_ID, tmp_path / "nested" / "app.zip")
    assert out == tmp_path / "nested" / "app.zip"
    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
        assert package.read("color.png") == (MANIFEST_DIR / "color.png").read_bytes()
        assert package.read("outline.png") == (MANIFEST_DIR / "outline.png").read_bytes()
    assert manifest["id"] == manifest["bots"][0]["botId"] == APP_ID
    assert not list(tmp_path.glob("nested/*.partial"))


def test_package_is_byte_identical_when_rebuilt(tmp_path: Path) -> None:
    first = build_package(APP_ID, tmp_path / "first.zip").read_bytes()
    assert build_package(APP_ID, tmp_path / "second.zip").read_bytes() == first


def _run_manifest_command(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="cos")
    add_manifest_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args, settings))


def test_manifest_build_command_writes_the_package_and_prints_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cos.zip"
    assert _run_manifest_command(["manifest", "build", "--out", str(out)], Settings(app_id=APP_ID)) == 0
    assert capsys.readouterr().out.strip() == str(out)
    with zipfile.ZipFile(out) as package:
        assert json.loads(package.read("manifest.json"))["id"] == APP_ID


def test_manifest_build_command_prefers_the_app_id_flag_to_the_environment(tmp_path: Path) -> None:
    out = tmp_path / "cos.zip"
    other = "00000000-0000-0000-0000-000000000001"
    argv = ["manifest", "build", "--out", str(out), "--app-id", other, "--app-version", "2.0.0"]
    assert _run_manifest_command(argv, Settings(app_id=APP_ID)) == 0
    with zipfile.ZipFile(out) as package:
        manifest = json.loads(package.read("manifest.json"))
    assert (manifest["id"], manifest["version"]) == (other, "2.0.0")


def test_manifest_build_command_defaults_to_the_manifest_build_folder() -> None:
    parser = argparse.ArgumentParser(prog="cos")
    add_manifest_command(parser.add_subparsers(dest="command", required=True))
    assert parser.parse_args(["manifest", "build"]).out == MANIFEST_DIR / "build" / "chief-of-staff.zip"


def test_manifest_build_command_without_app_id_exits_2_and_says_what_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cos.zip"
    assert _run_manifest_command(["manifest", "build", "--out", str(out)], Settings()) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "set MICROSOFT_APP_ID (or pass --app-id)" in captured.err
    assert not out.exists()


def test_manifest_build_command_reports_an_output_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    argv = ["manifest", "build", "--out", str(blocker / "cos.zip")]
    assert _run_manifest_command(argv, Settings(app_id=APP_ID)) == 2
    assert "Cannot write the app package" in capsys.readouterr().err
