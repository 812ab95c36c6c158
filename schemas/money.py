"""Money and rate types, and the only places where money is parsed, rounded or printed.

Money is exact everywhere: ``Decimal`` in Python, ``DECIMAL(18,2)`` in DuckDB and
``pl.Decimal(18, 2)`` in Polars. Rounding is explicit and half away from zero
(``ROUND_HALF_UP`` in Python's decimal module means exactly that); Polars' own
``round`` is half-to-even, so Polars code rounds through integer cents instead.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated

import polars as pl

MONEY_DTYPE = pl.Decimal(18, 2)
RATE_DTYPE = pl.Decimal(5, 2)
QUANTITY_DTYPE = pl.Decimal(12, 3)

# Pandera annotations (a bare pl.Decimal would mean Decimal(28, 0)).
Money = Annotated[pl.Decimal, 18, 2]
Rate = Annotated[pl.Decimal, 5, 2]
Quantity = Annotated[pl.Decimal, 12, 3]

CENT = Decimal("0.01")
_MONEY_TEXT = re.compile(r"^[+-]?\d{1,16}(\.\d{1,2})?$")
_RATE_TEXT = re.compile(r"^\d{1,3}(\.\d{1,2})?$")
_QUANTITY_TEXT = re.compile(r"^[+-]?\d{1,9}(\.\d{1,3})?$")


class MoneyError(ValueError):
    """A value that is not an exact amount; the message says what is wrong with it."""


def _exact_text(value: object, what: str) -> str:
    """Text of a numeric value as the sender wrote it, refusing anything inexact."""
    if isinstance(value, bool) or value is None:
        raise MoneyError(f"{what} {value!r} is not a number")
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        # JSON numbers reach us as doubles. repr() gives the shortest text that
        # reads back as the same double, which is the sender's literal as long as
        # it has at most 15 significant digits; beyond that we cannot know it.
        text = repr(value)
        if "e" in text or "inf" in text or "nan" in text or len(text.lstrip("-").replace(".", "")) > 15:
            raise MoneyError(f"{what} {value!r} cannot be read exactly")
        return text
    if isinstance(value, str):
        return value.strip()
    raise MoneyError(f"{what} {value!r} is not a number")


def parse_money(value: object) -> Decimal:
    """An amount with at most two decimals, e.g. ``"-1234.50"``; anything else is refused."""
    text = _exact_text(value, "amount")
    if not _MONEY_TEXT.match(text):
        if re.match(r"^[+-]?\d+\.\d{3,}$", text):
            raise MoneyError(f"amount {text!r} has more than 2 decimals")
        raise MoneyError(f"amount {text!r} is not a decimal number with '.' as separator")
    return Decimal(text).quantize(CENT)


def parse_rate(value: object) -> Decimal:
    """A percentage such as a VAT rate: ``"21"``, ``"5.5"``, ``"10.00"`` (0 to 999.99)."""
    text = _exact_text(value, "rate")
    if not _RATE_TEXT.match(text):
        raise MoneyError(f"rate {text!r} is not a percentage with at most 2 decimals")
    return Decimal(text).quantize(CENT)


def parse_quantity(value: object) -> Decimal:
    text = _exact_text(value, "quantity")
    if not _QUANTITY_TEXT.match(text):
        raise MoneyError(f"quantity {text!r} is not a number with at most 3 decimals")
    return Decimal(text).quantize(Decimal("0.001"))


def round_money(value: Decimal) -> Decimal:
    """Round to cents, half away from zero (2.345 -> 2.35, -2.345 -> -2.35)."""
    try:
        return value.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:  # pragma: no cover - only for absurd magnitudes
        raise MoneyError(f"amount {value} cannot be rounded to cents") from exc


def format_money(value: Decimal) -> str:
    """``-1234.50``: two decimals, '.' separator, never scientific notation."""
    return f"{round_money(Decimal(value)):f}"


# --- Polars helpers: integer cents keep arithmetic exact and rounding ours ---

def to_cents(expr: pl.Expr) -> pl.Expr:
    """Decimal money -> Int64 cents (exact: scale is 2)."""
    return (expr.cast(MONEY_DTYPE) * 100).cast(pl.Int64)


def from_cents(expr: pl.Expr) -> pl.Expr:
    """Int64 cents -> Decimal(18, 2)."""
    return (expr.cast(pl.Decimal(20, 2)) / 100).cast(MONEY_DTYPE)


def div_half_away(numerator: pl.Expr, denominator: pl.Expr | int) -> pl.Expr:
    """Integer division rounded half away from zero; the denominator must be positive."""
    return ((numerator.abs() * 2 + denominator) // (denominator * 2)) * numerator.sign()
