"""Reading what people type: dates, numbers, percentages and references to plans and tasks."""

from __future__ import annotations

import re
from datetime import date, timedelta

from bot.cards.markdown import excerpt, literal

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
WEEKDAYS = {
    name: number
    for number, names in enumerate(
        [
            ("monday", "mon"),
            ("tuesday", "tue"),
            ("wednesday", "wed"),
            ("thursday", "thu"),
            ("friday", "fri"),
            ("saturday", "sat"),
            ("sunday", "sun"),
        ]
    )
    for name in names
}
MAX_ID = 2**31 - 1
"""The largest id the store's id columns hold (INTEGER, 32 bits on PostgreSQL); a larger number names nothing, and
PostgreSQL refuses to compare one with them."""
DATE_FORMS = "YYYY-MM-DD (2026-03-31), 31 March [2026], March 31, today, tomorrow or a weekday"


class ParseError(ValueError):
    """Text that does not read as the value expected; the message shows the accepted forms."""

    def __init__(self, what: str, text: str, expected: str) -> None:
        self.what = what
        super().__init__(f"I can't read {literal(repr(excerpt(text)))} as {what}: use {expected}.")


def parse_date(text: str, *, today: date) -> date:
    """A calendar day from ISO text or a few natural forms; a day without a year is the next one to come. A weekday
    before a day and month ("Fri 9 Jan", as the bot's own messages write days) is read past: the day and month say
    which day it is."""
    raw = " ".join(text.strip().lower().replace(",", " ").split())
    named, _, rest = raw.partition(" ")
    if named in WEEKDAYS and re.match(r"\d|[a-z]+ \d", rest):
        raw = rest
    if not raw:
        raise ParseError("a date", text, DATE_FORMS)
    if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", raw):
        try:
            return date.fromisoformat("-".join(part.zfill(2) for part in raw.split("-")))
        except ValueError:
            raise ParseError("a date", text, DATE_FORMS) from None
    if raw == "today":
        return today
    if raw == "tomorrow":
        return today + timedelta(days=1)
    weekday = raw.removeprefix("next ").removeprefix("on ")
    if weekday in WEEKDAYS:
        ahead = (WEEKDAYS[weekday] - today.weekday()) % 7 or 7
        return today + timedelta(days=ahead)
    match = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)? ([a-z]+)(?: (\d{4}))?", raw) or None
    day_month: tuple[str, str, str | None] | None = None
    if match:
        day_month = (match.group(1), match.group(2), match.group(3))
    else:
        match = re.fullmatch(r"([a-z]+) (\d{1,2})(?:st|nd|rd|th)?(?: (\d{4}))?", raw)
        if match:
            day_month = (match.group(2), match.group(1), match.group(3))
    if day_month is None or day_month[1] not in MONTHS:
        raise ParseError("a date", text, DATE_FORMS)
    day, month, year = int(day_month[0]), MONTHS[day_month[1]], day_month[2]
    try:
        if year is not None:
            return date(int(year), month, day)
        candidate = date(today.year, month, day)
        return candidate if candidate >= today else date(today.year + 1, month, day)
    except ValueError:
        raise ParseError("a date", text, DATE_FORMS) from None


def parse_number(text: str, what: str = "a number") -> float:
    """A number as people write it: 500, 1,200, 2.5k, 1.2m, 15%."""
    raw = text.strip().lower().replace(",", "").replace("_", "")
    scale = 1.0
    if raw.endswith("%"):
        raw, scale = raw[:-1], 0.01
    elif raw.endswith("k"):
        raw, scale = raw[:-1], 1_000.0
    elif raw.endswith("m"):
        raw, scale = raw[:-1], 1_000_000.0
    try:
        value = float(raw) * scale
    except ValueError:
        raise ParseError(what, text, "a number such as 500, 1,200, 2.5k or 15%") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ParseError(what, text, "a finite number")
    return value


def parse_fraction(text: str) -> float:
    """A tolerance written as 10% or 0.1."""
    value = parse_number(text, "a tolerance")
    if not text.strip().endswith("%") and value >= 1:
        value /= 100
    return value


def parse_ref(text: str | int, prefix: str, what: str) -> int:
    """A plan (P12) or task (T12) reference; `#12` and a bare 12 are accepted too."""
    if isinstance(text, int) and not isinstance(text, bool) and abs(text) <= MAX_ID:
        return text
    raw = str(text).strip().upper().lstrip("#")
    if raw.startswith(prefix):
        raw = raw[len(prefix) :].lstrip("#")
    # ASCII digits only ("¹".isdigit() is true, but int() refuses it), and few enough to fit the database's ids.
    if not re.fullmatch(r"[0-9]{1,18}", raw) or int(raw) > MAX_ID:
        raise ParseError(what, str(text), f"its id, e.g. {prefix}12")
    return int(raw)
