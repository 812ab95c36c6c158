"""Stripe's raw objects -> expected payouts (``open_item`` rows) and rejects. Pure Polars, no IO.

Stripe sends amounts as integers in the currency's minor units and currencies in lower case
(docs.stripe.com/currencies). The exponent is Stripe's, which is not always ISO 4217's: ISK,
HUF and TWD stay two-decimal in the API, UGX is zero-decimal. Three-decimal amounts must end in
0 at Stripe (card networks), so they fit our cents; one that does not is refused, not rounded.
"""

from __future__ import annotations

import json

import polars as pl

from schemas.currencies import ISO_4217
from schemas.money import from_cents
from schemas.tables import OpenItem, polars_schema
from schemas.validate import validate_rows
from transforms.payouts import payout_item_columns
from transforms.stage_pms import REJECT_SCHEMA

ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
PAYOUT_STATUSES = ("pending", "in_transit", "paid", "failed", "canceled")
NO_MONEY = ("failed", "canceled")
_LARGEST_CENTS = 10**16  # DECIMAL(18, 2)
REQUIRED = {"payouts": ("amount", "currency", "created", "arrival_date", "status")}


def exponent(currency: pl.Expr) -> pl.Expr:
    """Stripe's number of decimals of an (upper-case) currency."""
    return (pl.when(currency.is_in(sorted(ZERO_DECIMAL))).then(0)
            .when(currency.is_in(sorted(THREE_DECIMAL))).then(3).otherwise(2))


def to_cents(minor: pl.Expr, currency: pl.Expr) -> pl.Expr:
    """Minor units -> integer cents, exactly; null where a three-decimal amount has a third decimal."""
    places = exponent(currency)
    return (pl.when(places == 0).then(minor * 100)
            .when(places == 2).then(minor)
            .when(minor % 10 == 0).then(minor // 10))


def minor_to_money(minor: pl.Expr, currency: pl.Expr) -> pl.Expr:
    """Minor units of ``currency`` (Stripe's spelling or ours) -> Decimal(18, 2)."""
    return from_cents(to_cents(minor, currency.str.to_uppercase()))


def _problems(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """(row, column, value, reason) for every field that keeps a record out of the canonical tables."""
    currency = pl.col("currency").str.to_uppercase()
    rules: list[tuple[pl.Expr, str, pl.Expr, str]] = []
    for name in REQUIRED.get(table, ("amount", "currency", "created")):
        flagged = pl.col("lf_invalid").str.contains(f'"{name}":', literal=True).fill_null(False)
        rules.append((pl.col(name).is_null() & ~flagged, name, pl.lit(None, pl.String), "is missing"))
    rules.append((pl.col("currency").is_not_null() & ~currency.is_in(sorted(ISO_4217)), "currency",
                  pl.col("currency"), "is not an ISO 4217 currency"))
    cents = to_cents(pl.col("amount"), currency)
    rules.append((pl.col("amount").is_not_null() & currency.is_in(sorted(THREE_DECIMAL)) & cents.is_null(),
                  "amount", pl.col("amount").cast(pl.String),
                  "has a third decimal: Stripe's three-decimal amounts end in 0, and open items hold cents"))
    rules.append((cents.abs() >= _LARGEST_CENTS, "amount", pl.col("amount").cast(pl.String),
                  "is too large for DECIMAL(18,2)"))
    if table == "payouts":
        rules.append((pl.col("status").is_not_null() & ~pl.col("status").is_in(PAYOUT_STATUSES), "status",
                      pl.col("status"), f"is not one of {', '.join(PAYOUT_STATUSES)}"))
    found = [frame.filter(condition.fill_null(False)).select(
        "__row", pl.lit(column).alias("column_name"), value.cast(pl.String).alias("value"),
        pl.lit(reason).alias("reason")) for condition, column, value, reason in rules]
    flagged_rows = [{"__row": row, "column_name": column, "value": problem["value"], "reason": problem["reason"]}
                    for row, text in frame.filter(pl.col("lf_invalid").is_not_null()).select(
                        "__row", "lf_invalid").iter_rows()
                    for column, problem in sorted(json.loads(text).items())]
    found.append(pl.DataFrame(flagged_rows, schema={"__row": pl.UInt32, "column_name": pl.String,
                                                    "value": pl.String, "reason": pl.String}))
    found.append(frame.filter(pl.len().over("id") > 1).select(
        "__row", pl.lit("id").alias("column_name"), pl.col("id").alias("value"),
        pl.format("was delivered {} times with different content in one load", pl.len().over("id"))
        .alias("reason")))
    return pl.concat(found, how="vertical_relaxed").unique(maintain_order=True)


def _rejects(problems: pl.DataFrame, frame: pl.DataFrame, source: str, table: str) -> pl.DataFrame:
    day = "arrival_date" if table == "payouts" else "created"
    return problems.join(frame, on="__row", how="left").select(
        pl.lit(source).alias("source"), pl.lit(table).alias("table_name"), pl.col("id").alias("record_id"),
        pl.col("lf_record_hash").alias("record_version"), pl.col(day).dt.date().alias("business_date"),
        "column_name", "value", "reason", pl.col("lf_extra").alias("payload"),
    ).sort("record_id", "column_name", nulls_last=True).cast(REJECT_SCHEMA)


def check_records(raw: pl.DataFrame, table: str, *, source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the good records, rejects naming record, field, value and reason) of one raw table."""
    frame = raw.with_row_index("__row")
    problems = _problems(frame, table)
    good = frame.filter(~pl.col("__row").is_in(problems.get_column("__row").unique().implode()))
    return good, _rejects(problems, frame, source, table)


def payout_items(raw_payouts: pl.DataFrame, *, source: str,
                 bank_account: str | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each payout is one expected payout (``open_item`` kind ``payout``), replaced by its latest version.

    ``amount_open`` is the payout's amount, + = money into the bank account (Stripe debits the
    account with a negative payout when the balance is negative). A ``failed`` or ``canceled``
    payout expects no money: its item stays with ``amount_open`` 0, so a match made while it was
    ``paid`` keeps the item it points at, and nothing is left open to match a bank line against.
    ``issue_date`` and ``due_date`` are the arrival date, which Stripe gives as midnight UTC.
    """
    good, rejects = check_records(raw_payouts, "payouts", source=source)
    currency = pl.col("currency").str.to_uppercase()
    items = good.select("__row", *payout_item_columns(
        source=source, processor="Stripe", bank_account=bank_account, issue_date=pl.col("arrival_date").dt.date(),
        due_date=pl.col("arrival_date").dt.date(), amount=minor_to_money(pl.col("amount"), currency),
        currency=currency, expects_money=~pl.col("status").is_in(NO_MONEY)))
    schema = polars_schema(OpenItem)
    checked = validate_rows(OpenItem, items.drop("__row").cast(schema))  # type: ignore[arg-type]
    if not checked.ok:
        rows = items.get_column("__row")
        frame = raw_payouts.with_row_index("__row")
        failures = checked.failures.select(
            pl.col("row").map_elements(lambda i: rows[i], return_dtype=pl.UInt32).alias("__row"),
            pl.col("column").alias("column_name"), "value", "reason")
        rejects = pl.concat([rejects, _rejects(failures, frame, source, "payouts")])
    return checked.valid, rejects


def daily_fees(raw_balance: pl.DataFrame, *, source: str, timezone: str, currency: str) -> pl.DataFrame:
    """Fees of the readable balance transactions (FEE_SCHEMA) in the books' currency, by the local
    date Stripe created them (refused records are in rejects; a balance kept in another currency is
    not booked: ledgerflow keeps one currency)."""
    good, _ = check_records(raw_balance, "balance_transactions", source=source)
    return good.filter(pl.col("currency").str.to_uppercase() == currency).select(
        pl.col("created").dt.convert_time_zone(timezone).dt.date().alias("business_date"),
        pl.lit(currency).alias("currency"),
        minor_to_money(pl.col("fee"), pl.col("currency")).alias("fee"))

