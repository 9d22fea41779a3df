"""The architecture, checked: planner/ knows nothing of Teams or vendors; a Teams SDK stays in bot/teams/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("planner", {"bot", "adapters", "botbuilder", "botframework", "aiohttp", "playwright", "mcp", "anthropic"}),
        ("adapters", {"bot", "botbuilder", "botframework"}),
    ],
)
def test_package_does_not_import_the_layers_above_it(package: str, forbidden: set[str]) -> None:
    offenders = {
        path: sorted(names & forbidden) for path, names in imported_modules(package).items() if names & forbidden
    }
    assert offenders == {}


TEAMS_SDKS = {"botbuilder", "botframework", "msrest"}


def test_only_bot_teams_imports_a_teams_sdk() -> None:
    offenders = {
        path: sorted(names & TEAMS_SDKS)
        for path, names in imported_modules("bot").items()
        if names & TEAMS_SDKS and not path.startswith("bot/teams/")
    }
    assert offenders == {}


DOMAIN_MAY_IMPORT = {
    *("__future__", "collections", "dataclasses", "datetime", "enum", "math", "re", "typing", "zoneinfo"),
    "json",
    "urllib.parse",
}
"""The standard library's values and pure helpers; nothing that reaches a database, a network, a file or a process."""
CLOCK_READS = ("datetime.now(", "datetime.utcnow(", "date.today(", "time.time(", "time.monotonic(", "utcnow(")


def test_the_domain_is_pure_rules_and_values() -> None:
    """planner/domain/ imports only the standard library's values and the domain itself, and never reads a clock: a
    test runs its rules with no database, no Teams and no network, at whatever time it says."""
    imports: dict[str, set[str]] = {}
    clock_reads: dict[str, list[str]] = {}
    for path in (ROOT / "planner" / "domain").rglob("*.py"):
        source = path.read_text()
        names: set[str] = set()
        for node in ast.walk(ast.parse(source, filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        outside = {
            name
            for name in names
            if name not in DOMAIN_MAY_IMPORT
            and name.split(".")[0] not in DOMAIN_MAY_IMPORT
            and not name.startswith("planner.domain")
        }
        if outside:
            imports[str(path.relative_to(ROOT))] = outside
        reads = [read for read in CLOCK_READS if read in source]
        if reads:
            clock_reads[str(path.relative_to(ROOT))] = reads
    assert imports == {}
    assert clock_reads == {}
