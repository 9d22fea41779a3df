"""The plan card leads with labelled progress, the reason that matters most, and the next step for it."""

from __future__ import annotations

from bot.cards import plan_overview
from tests.bot.cards.test_cards import NAMES, TODAY, make_rollup, texts


def test_the_plan_card_says_progress_in_words_why_it_is_off_track_and_what_to_do_next() -> None:
    card = plan_overview(make_rollup(tacticals=2, overdue=4, sqls_reading=40), names=NAMES, today=TODAY)
    lines = texts(card)
    assert "62 of 100 tasks done, 62 %" in lines
    why = next(line for line in lines if line.startswith("Why: "))
    assert why.startswith("Why: SQLs at 40 against")  # the KPI furthest behind, before the overdue work
    step = next(line for line in lines if line.startswith("Next: "))
    assert "\u201crecord SQLs VALUE\u201d" in step
    assert "`" not in step
