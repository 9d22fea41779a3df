"""Firing keys in an operator's words (`cos tick --at` names what would fire by them)."""

from __future__ import annotations

from datetime import date

import pytest

from bot.text.triggers import firing_label
from planner.domain.triggers import deadline_key, drift_key, health_change_key, milestone_key


@pytest.mark.parametrize(
    ("key", "said"),
    [
        (deadline_key("deadline_slipped", 1, date(2026, 2, 10)), "deadline slipped (T1, 2026-02-10)"),
        (milestone_key(4), "milestone completed (T4)"),
        (
            health_change_key(2, "on track", "at risk", date(2026, 2, 3)),
            "plan health (P2, on track to at risk, 2026-02-03)",
        ),
        (drift_key(1, "at risk", None, None), "metric drift (metric 1, at risk, no reading)"),
        (
            drift_key(3, "off track", date(2026, 2, 1), 140.0),
            "metric drift (metric 3, off track, the reading of 2026-02-01)",
        ),
        ("approval:1:decided", "approval (A1, decided)"),
        ("weekly_start:2026-W50", "weekly start (2026-W50)"),
    ],
)
def test_a_firing_key_reads_as_its_trigger_subject_and_window_with_the_chat_s_ids(key: str, said: str) -> None:
    assert firing_label(key) == said
