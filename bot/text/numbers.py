"""Numbers as people read them, one style on every card and in every reply.

A quantity is one of four kinds, judged from its unit (and the KPI's name when the unit says little):
- currency (`USD`, `EUR`, `$`…): `money`, the one way money is written on every card and in every text: the symbol
  where it is unambiguous (`$250,000`, `€1,200`, `£80`), else the ISO code after the amount (`1,200 CAD`); cents only
  when there are some (`$12,500.50`); a KPI's money above a million as `$1.2M` / `$3.4B`, while the money people
  account for (budgets, allocations, spend: `exact`) keeps every digit, `$1,250,000`;
- a percentage (`%`, `percent`): at most one decimal, `12.5 %`;
- a rate (`rate`, `ratio`, `per`, `/`, `avg`…): at most one decimal, `3.2 per day`;
- anything else is counted (SQLs, leads, tasks, signups…): a whole number, `1,456,520 SQL`.
Never scientific notation, always thousands separators.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum

_CURRENCY_SYMBOLS = {
    "USD": "$",
    "$": "$",
    "DOLLAR": "$",
    "DOLLARS": "$",
    "EUR": "€",
    "€": "€",
    "EURO": "€",
    "EUROS": "€",
    "GBP": "£",
    "£": "£",
}
"""The currencies written with a symbol: those whose symbol a reader takes for one currency only (`¥` is the yen's
and the yuan's, so JPY and CNY keep their codes)."""
_OTHER_CURRENCIES = {"CAD", "AUD", "CHF", "SEK", "NOK", "DKK", "INR", "CNY", "JPY", "NZD", "SGD", "HKD", "BRL", "MXN"}
_PERCENT_UNITS = {"%", "percent", "pct", "percentage", "pp"}
_RATE_WORDS = re.compile(
    r"\b(rate|ratio|per|avg|average|mean|score|nps|ctr|cvr|roas|roi|multiple|index|x)\b|/", re.IGNORECASE
)
_PERCENT_WORDS = re.compile(r"%|\bpercent\b|\bshare\b", re.IGNORECASE)


NOT_A_NUMBER = "\u2013"
"""Shown for a value that is not a finite number."""


class Kind(Enum):
    CURRENCY = "currency"
    PERCENT = "percent"
    RATE = "rate"
    COUNT = "count"


def kind_of(unit: str = "", name: str = "") -> Kind:
    """What a quantity measured in `unit` (for a KPI called `name`) is: money, a percentage, a rate or a count."""
    word = unit.strip()
    if word.upper() in _CURRENCY_SYMBOLS or word in _CURRENCY_SYMBOLS or word.upper() in _OTHER_CURRENCIES:
        return Kind.CURRENCY
    if word.lower() in _PERCENT_UNITS:
        return Kind.PERCENT
    if _RATE_WORDS.search(word):
        return Kind.RATE
    if not word and _PERCENT_WORDS.search(name):
        return Kind.PERCENT
    if not word and _RATE_WORDS.search(name):
        return Kind.RATE
    return Kind.COUNT


def plain(value: float, *, decimals: int = 1) -> str:
    """A number with thousands separators and at most `decimals` decimals (none when it is whole): `673,913`."""
    if not math.isfinite(value):
        return NOT_A_NUMBER
    # Half away from zero, as people round (168.5 SQL is 169), not Python's half-to-even.
    rounded = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)  # no "-0"
    text = f"{rounded:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def whole(value: float) -> str:
    """A count: rounded to a whole number, with thousands separators: `189`, `1,456,520`."""
    return plain(value, decimals=0)


def percent(share: float) -> str:
    """A share as a whole percentage: `0.2` is `20 %`, `42` is `4,200 %`."""
    return f"{whole(share * 100)} %"


def money(value: float, unit: str = "USD", *, exact: bool = False) -> str:
    """An amount of money, as every card and text writes it: `$250,000`, `€1,200`, `1,200 CAD` (the ISO code when the
    currency has no symbol of its own); above a million `$1.2M` and `$3.4B`. `exact`: every digit and the cents when
    there are some, `$1,250,000`, `$12,500.50` (money people account for: a budget, an allocation, spend)."""
    if not math.isfinite(value):
        return NOT_A_NUMBER
    word = unit.strip()
    symbol = _CURRENCY_SYMBOLS.get(word.upper(), _CURRENCY_SYMBOLS.get(word, ""))
    size = abs(value)
    if exact:
        digits = plain(size, decimals=2)
        if "." in digits:
            digits = f"{digits:0<{digits.index('.') + 3}}"  # cents as two digits: `12,500.50`
    elif size >= 999_950_000:
        digits = f"{plain(size / 1e9)}B"
    elif size >= 999_950:
        digits = f"{plain(size / 1e6)}M"
    else:
        digits = whole(size)
    sign = "-" if value < 0 and digits.strip("0.,") else ""
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {word}".rstrip()


def money_in_cents(amount: int, currency: str) -> str:
    """An amount kept in minor units (a budget's, a spend's), written as `money` writes money people account for."""
    return money(amount / 100, currency, exact=True)


def quantity(value: float, unit: str = "", *, name: str = "") -> str:
    """`value` with its unit as people read it: `$2M`, `12.5 %`, `3.2 per day`, `1,456,520 SQL`, `189`."""
    kind = kind_of(unit, name)
    if kind is Kind.CURRENCY:
        return money(value, unit)
    if kind is Kind.PERCENT:
        return f"{plain(value)} %"
    text = plain(value) if kind is Kind.RATE else whole(value)
    return f"{text} {unit.strip()}".rstrip()


def figure(value: float, unit: str = "", *, name: str = "") -> str:
    """`value` rounded as `quantity` would, without its unit (for a unit said once after a pair: `12 of 30 SQL`)."""
    kind = kind_of(unit, name)
    if kind is Kind.CURRENCY:
        return money(value, unit)
    if kind is Kind.COUNT:
        return whole(value)
    return plain(value)
