from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.grammar import GrammarError, parse
from bot.parsing import ParseError, parse_date, parse_fraction, parse_number, parse_ref

TODAY = date(2026, 2, 11)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-31", date(2026, 3, 31)),
        ("2026-3-1", date(2026, 3, 1)),
        ("today", TODAY),
        ("Tomorrow", date(2026, 2, 12)),
        ("friday", date(2026, 2, 13)),
        ("next wednesday", date(2026, 2, 18)),
        ("31 March", date(2026, 3, 31)),
        ("March 31, 2027", date(2027, 3, 31)),
        ("1st Jan", date(2027, 1, 1)),  # already past this year: the next one
        ("15 feb 2026", date(2026, 2, 15)),
        ("Fri 13 Feb", date(2026, 2, 13)),  # as the bot's messages write a day
        ("Wednesday, 31 March 2027", date(2027, 3, 31)),
        ("Sat 1 Jan 2028", date(2028, 1, 1)),
    ],
)
def test_dates_are_read_in_the_forms_people_type(text: str, expected: date) -> None:
    assert parse_date(text, today=TODAY) == expected


@pytest.mark.parametrize("text", ["", "2026-02-30", "31/03/2026", "soon", "32 March", "Smarch 3", "fri soon"])
def test_unreadable_dates_say_which_forms_work(text: str) -> None:
    with pytest.raises(ParseError, match="YYYY-MM-DD"):
        parse_date(text, today=TODAY)


@pytest.mark.parametrize(
    ("text", "expected"), [("500", 500), ("1,200", 1200), ("2.5k", 2500), ("1.2m", 1_200_000), ("15%", 0.15)]
)
def test_numbers_as_people_write_them(text: str, expected: float) -> None:
    assert parse_number(text) == pytest.approx(expected)


def test_bad_numbers_and_tolerances() -> None:
    with pytest.raises(ParseError, match="500"):
        parse_number("lots")
    with pytest.raises(ParseError):
        parse_number("nan")
    assert parse_fraction("10%") == pytest.approx(0.1)
    assert parse_fraction("0.2") == pytest.approx(0.2)
    assert parse_fraction("15") == pytest.approx(0.15)


@pytest.mark.parametrize("text", ["T12", "t12", "#12", "12", "T#12", 12])
def test_task_references(text: str | int) -> None:
    assert parse_ref(text, "T", "a task") == 12


def test_bad_reference_shows_an_example() -> None:
    with pytest.raises(ParseError, match=r"e\.g\. P12"):
        parse_ref("the launch", "P", "a plan")


@pytest.mark.parametrize("text", [2**31, "A2147483648", 10**30, "#999999999999999999"])
def test_a_reference_beyond_any_id_the_store_holds_is_refused_with_an_example(text: str | int) -> None:
    """PostgreSQL's INTEGER ids stop at 2**31 - 1, and it refuses to compare a larger number with them."""
    with pytest.raises(ParseError, match=r"e\.g\. A12"):
        parse_ref(text, "A", "an approval request")
    assert parse_ref(2**31 - 1, "A", "an approval request") == 2**31 - 1


# ---- the grammar's window, read word by word -----------------------------------------------------------------------

_WINDOW_WORDS = ["from", "FROM", "to", "until", "UNTİL", "-", "launch", "2026-01-05", "tomorrow", "fromage", "a-b"]


def _window_as_the_regular_expression_read_it(head: str) -> tuple[str, str, str] | None:
    """The window as the grammar read it before it went word by word (quadratic on a long head; fine on a short one)."""
    match = re.match(r"^(?P<title>.+)\s+from\s+(?P<start>.+?)\s+(?:to|until|-)\s+(?P<end>.+)$", head, re.IGNORECASE)
    if not match:
        return None
    title, start, end = match.group("title", "start", "end")
    while re.search(r"\s+from\s+", start, re.IGNORECASE):
        more, start = re.split(r"\s+from\s+", start, maxsplit=1, flags=re.IGNORECASE)
        title = f"{title} from {more}"
    return title.strip(), start.strip(), end.strip()


@settings(max_examples=600, deadline=None)
@given(words=st.lists(st.sampled_from(_WINDOW_WORDS), max_size=9))
def test_a_plan_window_reads_as_it_did_before_the_grammar_went_word_by_word(words: list[str]) -> None:
    text = "new plan " + " ".join(words)
    expected = _window_as_the_regular_expression_read_it(" ".join(words))
    try:
        args = parse(text).args
    except GrammarError:
        assert expected is None
    else:
        assert (args["title"], args["start"], args["end"]) == expected


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("new plan Launch from 2026-01-05 to 2026-03-31", ("Launch", "2026-01-05", "2026-03-31")),
        ("new plan Away from home from 1 March until 31 March", ("Away from home", "1 March", "31 March")),
        ("new plan Q1 from today - friday", ("Q1", "today", "friday")),
        ("tactical From zero to one from 2026-01-05 to 2026-02-27", ("From zero to one", "2026-01-05", "2026-02-27")),
    ],
)
def test_a_title_may_say_from_and_to_and_the_last_window_wins(text: str, window: tuple[str, str, str]) -> None:
    args = parse(text).args
    assert (args["title"], args["start"], args["end"]) == window


def test_a_value_that_does_not_read_is_repeated_back_short_and_as_text() -> None:
    with pytest.raises(ParseError) as refused:
        parse_date("[✅ Approve](https://evil.example) " + "x" * 5000, today=TODAY)
    said = str(refused.value)
    assert len(said) < 200
    assert "…" in said
    assert "](" not in said
