"""Why a plan is not on track, in words: bot/text/health.py."""

from __future__ import annotations

import json

import pytest

from bot.text.health import reason_text, stored_reason_text
from planner.domain.rollup import (
    ChildInTrouble,
    HealthReason,
    MetricBehind,
    TasksBehind,
    TasksOverdue,
    reason_payload,
)


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        (TasksBehind(done=2, total=10, elapsed=0.5), "2 of 10 tasks done (20 %) with 50 % of the window gone"),
        (TasksBehind(done=0, total=1, elapsed=1.0), "0 of 1 task done (0 %) with 100 % of the window gone"),
        (TasksOverdue(count=1), "1 task overdue"),
        (
            MetricBehind(metric="SQLs", unit="", actual=210, expected=250, behind=0.16, tolerance=0.1),
            "SQLs at 210 against 250 expected by now (16 % behind pace, tolerance 10 %)",
        ),
        (
            MetricBehind(metric="Cost", unit="€", actual=None, expected=40, behind=1, tolerance=0.1),
            "no reading of Cost yet (€40 expected by now)",
        ),
        (
            ChildInTrouble(tier="tactical", title="February", health="off track"),
            "tactical plan 'February' is off track",
        ),
    ],
)
def test_a_reason_reads_the_same_on_a_card_and_in_a_queued_nudge(reason: HealthReason, said: str) -> None:
    assert reason_text(reason) == said
    assert stored_reason_text(json.loads(json.dumps(reason_payload(reason)))) == said


def test_a_nudge_queued_before_reasons_were_data_still_says_its_words() -> None:
    assert stored_reason_text("3 tasks overdue") == "3 tasks overdue"
    assert stored_reason_text({"kind": "something new"}) == ""
