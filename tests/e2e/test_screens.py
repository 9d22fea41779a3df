"""The README's screenshots are taken as a leader would see the cards: in the Teams emulator's web UI, in Chromium,
at Teams' card width; each card fits a Teams screen and reads with names, not ids."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pytest

from tests.e2e.playground import TENANT
from tests.e2e.screens import CHROMIUM, quarter_of, shoot_a_quarter, shoot_delegations
from tests.e2e.test_playground import PLAYGROUND

HEIGHT_BUDGET_PX = 1200
CARDS = ("draft", "nudge", "summary", "week", "tasks", "plan", "budget", "approval", "delegations")

today = date.today()
start, end = quarter_of(today)
pytestmark = [
    pytest.mark.skipif(
        not PLAYGROUND.exists() or shutil.which("node") is None or not Path(CHROMIUM).exists(),
        reason="the Teams emulator is installed by `npm ci`, Chromium by apt (bash .ci/run does both)",
    ),
    pytest.mark.skipif(
        not start < today < end,
        reason="the short quarter needs yesterday and tomorrow in this quarter",
    ),
]


@pytest.mark.timeout(360)
async def test_the_key_cards_are_screenshotted_from_the_emulator_and_fit_a_teams_screen(tmp_path: Path) -> None:
    shots = {shot.name: shot for shot in await shoot_a_quarter(tmp_path / "work", tmp_path / "screens")}
    assert set(shots) == set(CARDS)
    for shot in shots.values():
        assert shot.path.read_bytes().startswith(b"\x89PNG"), shot.name
        assert 400 <= shot.width <= 520, (shot.name, shot.width)  # Teams' card width, as the emulator draws it
        assert shot.height <= HEIGHT_BUDGET_PX, (shot.name, shot.height)
        assert not re.search(r"\b0{8}-0{4}", shot.text), shot.name  # names, never the emulator's user ids
    shown = {name: " ".join(shot.text.split()) for name, shot in shots.items()}
    leader, member = TENANT["currentUser"]["name"], TENANT["users"][0]["name"]  # people named by role
    assert f"Owner {leader} KPIs" in shown["draft"]
    # What one tick folded for the leader: the three reminders due tomorrow, in one card (with what else it had).
    assert re.search(r"\b\d updates for you", shown["summary"]), shown["summary"]
    assert shown["summary"].count("Heads up:") == 3, shown["summary"]
    assert f"asked by {member} ·" in shown["approval"]
    assert "Action edit master plan (plan change) About P1 Targets SQLs 700" in shown["approval"]
    assert "Open delegations: 1" in shown["delegations"]


DELEGATION_CARDS = (
    "progress",
    "result",
    "question",
    "code",
    "evidence",
    "sign_in",
    "delegations_admin",
    "delegations_cancelled",
    "adapters",
)


@pytest.mark.timeout(420)
async def test_delegation_cards_are_seen_as_they_update_from_the_emulator_and_fit_a_teams_screen(
    tmp_path: Path,
) -> None:
    shots = {shot.name: shot for shot in await shoot_delegations(tmp_path / "work", tmp_path / "screens")}
    assert set(shots) == set(DELEGATION_CARDS)
    for shot in shots.values():
        assert shot.path.read_bytes().startswith(b"\x89PNG"), shot.name
        assert 400 <= shot.width <= 520, (shot.name, shot.width)
        assert shot.height <= HEIGHT_BUDGET_PX, (shot.name, shot.height)
        assert not re.search(r"\b0{8}-0{4}", shot.text), shot.name
        assert '{"' not in shot.text, shot.name  # no raw JSON
    shown = {name: " ".join(shot.text.split()) for name, shot in shots.items()}
    # The live card, updated in place while the agent reports, titled by its task; then the same card, its result.
    assert shown["progress"].startswith("Export the spring launch report Delegated to marketing: export_report")
    assert "Running What marketing reported as it went: 1/4: exported part 1" in shown["progress"]
    assert "It is back: check it, and mark the task done when it is. Done in" in shown["result"]
    assert "Show the whole answer" in shown["result"]
    assert "• Confirm (yes or no, required) • Audience Size" in shown["question"]
    assert "View evidence: the created brief" in shown["evidence"]
    assert shown["sign_in"].endswith("Sign in")
    assert "Retry" in shown["delegations_admin"]
    assert "Cancel" in shown["delegations_admin"]
    assert "is cancelled: nothing more will be sent to reports" in shown["delegations_cancelled"]
    assert "also capabilities, login, timeouts" in shown["adapters"]  # a recipe named, not spelled out
    assert (tmp_path / "screens" / "signed_in_page.png").exists()
