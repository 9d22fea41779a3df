"""Numbers for people: the bad examples a new user saw, and the style that replaces them."""

from __future__ import annotations

import pytest

from bot.text.numbers import Kind, figure, kind_of, money, money_in_cents, percent, plain, quantity


@pytest.mark.parametrize(
    ("value", "unit", "name", "shown"),
    [
        (2e6, "USD", "Pipeline", "$2M"),  # was `2e+06 USD`
        (1.45652e6, "", "Impressions", "1,456,520"),  # was `1.45652e+06`
        (673913.0, "", "Reach", "673,913"),  # was `673913` beside `673,913.0`
        (168.5, "SQL", "SQLs", "169 SQL"),  # was `168.5 SQL`: SQLs are counted
        (188.889, "", "SQLs", "189"),  # was `Expected by now: 188.889`
        (250_000, "USD", "Budget", "$250,000"),
        (1_234_567, "USD", "Pipeline", "$1.2M"),
        (3.4e9, "EUR", "Revenue", "€3.4B"),
        (999_999, "USD", "Pipeline", "$1M"),
        (1_500_000, "CAD", "Revenue", "1.5M CAD"),
        (12.345, "%", "Conversion", "12.3 %"),
        (0.1234, "", "Conversion rate", "0.1"),
        (3.25, "per day", "Signups", "3.3 per day"),
        (42.0, "leads", "Leads", "42 leads"),
        (-1234.6, "", "Net new", "-1,235"),
        (1e21, "", "Views", "1,000,000,000,000,000,000,000"),
    ],
)
def test_numbers_are_said_as_people_read_them(value: float, unit: str, name: str, shown: str) -> None:
    assert quantity(value, unit, name=name) == shown
    assert "e+" not in shown


def test_countable_unless_currency_percentage_or_rate() -> None:
    assert kind_of("SQL") is Kind.COUNT
    assert kind_of("signups") is Kind.COUNT
    assert kind_of("tasks") is Kind.COUNT
    assert kind_of("USD") is Kind.CURRENCY
    assert kind_of("$") is Kind.CURRENCY
    assert kind_of("%") is Kind.PERCENT
    assert kind_of("", name="Win rate") is Kind.RATE
    assert kind_of("", name="Share of voice %") is Kind.PERCENT
    assert kind_of("leads/week") is Kind.RATE


def test_plain_numbers_have_separators_and_at_most_one_decimal() -> None:
    assert plain(673913.0) == "673,913"
    assert plain(1234.56) == "1,234.6"
    assert plain(-0.01) == "0"
    assert plain(float("nan")) == "\u2013"
    assert money(-2_500_000) == "-$2.5M"


def test_a_figure_is_rounded_like_its_quantity_without_the_unit() -> None:
    assert figure(168.5, "SQL", name="SQLs") == "169"
    assert figure(12.34, "%") == "12.3"
    assert figure(2e6, "USD") == "$2M"


def test_a_share_is_a_whole_percentage_with_separators() -> None:
    assert [percent(share) for share in (0.2, 0.165, 0.004, 42.0)] == ["20 %", "17 %", "0 %", "4,200 %"]


@pytest.mark.parametrize(
    ("cents", "currency", "shown"),
    [
        (25_000_000, "USD", "$250,000"),  # was `250,000 USD` beside a KPI's `$250,000`
        (1_250_050, "USD", "$12,500.50"),  # cents only when there are some
        (125_000_000, "EUR", "€1,250,000"),  # money people account for keeps every digit
        (8_000, "GBP", "£80"),
        (123_456_789, "CAD", "1,234,567.89 CAD"),  # a currency without a symbol of its own: its code
        (500_000, "JPY", "5,000 JPY"),  # `¥` is also the yuan's
        (0, "USD", "$0"),
        (-5_000, "USD", "-$50"),
    ],
)
def test_money_kept_in_cents_is_written_as_every_other_amount_of_money(cents: int, currency: str, shown: str) -> None:
    assert money_in_cents(cents, currency) == shown
    if cents % 100 == 0 and abs(cents) < 100_000_000:
        assert money(cents / 100, currency) == shown  # a KPI's money, the same style
