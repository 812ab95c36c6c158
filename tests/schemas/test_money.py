from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.money import (
    MoneyError,
    div_half_away,
    format_money,
    from_cents,
    parse_money,
    parse_rate,
    round_money,
    to_cents,
)

cents = st.integers(min_value=-(10**15), max_value=10**15)


@pytest.mark.parametrize("text, expected", [("12.50", "12.50"), ("-3", "-3.00"), ("0.1", "0.10"),
                                            (" 7.05 ", "7.05"), (125, "125.00"), (12.5, "12.50")])
def test_exact_amounts_are_read_as_written(text, expected):
    assert parse_money(text) == Decimal(expected)


@pytest.mark.parametrize("value, message", [
    ("12.345", "more than 2 decimals"),
    ("12,50", "'.' as separator"),
    ("1e3", "not a decimal number"),
    ("", "not a decimal number"),
    (None, "not a number"),
    (True, "not a number"),
    (0.1 + 0.2, "cannot be read exactly"),
    ("12345678901234567.00", "not a decimal number"),
])
def test_inexact_or_malformed_amounts_are_refused_with_the_reason(value, message):
    with pytest.raises(MoneyError, match=message):
        parse_money(value)


def test_rates_are_percentages_with_two_decimals():
    assert parse_rate("5.5") == Decimal("5.50")
    with pytest.raises(MoneyError):
        parse_rate("-1")


@pytest.mark.parametrize("value, expected", [("2.345", "2.35"), ("-2.345", "-2.35"), ("2.344", "2.34"),
                                             ("0.005", "0.01"), ("-0.005", "-0.01")])
def test_rounding_is_half_away_from_zero(value, expected):
    assert round_money(Decimal(value)) == Decimal(expected)


def test_money_is_printed_without_exponent():
    assert format_money(Decimal("1E+3")) == "1000.00"
    assert format_money(Decimal("-0.5")) == "-0.50"


@given(cents)
def test_cents_round_trip_exactly(value):
    frame = pl.DataFrame({"m": [Decimal(value) / 100]}, schema={"m": pl.Decimal(18, 2)})
    back = frame.select(from_cents(to_cents(pl.col("m")))).item()
    assert back == Decimal(value) / 100
    assert frame.select(to_cents(pl.col("m"))).item() == value


@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=1, max_value=10**6))
def test_integer_division_rounds_like_decimal_half_up(numerator, denominator):
    frame = pl.DataFrame({"n": [numerator]}, schema={"n": pl.Int64})
    ours = frame.select(div_half_away(pl.col("n"), denominator)).item()
    expected = (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert ours == int(expected)
