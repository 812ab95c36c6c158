"""Expected payouts: what a payment processor announces it will pay into the bank, as open items
(INTERFACES §1: kind ``payout``, + = money in, ``settlement_ref`` = the processor's payout id), so
that the payout's bank line is matched to it."""

from __future__ import annotations

import polars as pl

from schemas.money import MONEY_DTYPE


def payout_item_columns(*, source: str, processor: str, bank_account: str | None, issue_date: pl.Expr,
                        due_date: pl.Expr, amount: pl.Expr, currency: pl.Expr, expects_money: pl.Expr) -> list[pl.Expr]:
    """The ``open_item`` columns of a frame with one row per payout (its id in ``id``). A payout
    that ``expects_money`` is false for (failed, cancelled, reversed) keeps its item with nothing
    open: a match made before stays pointed at it, and nothing is left to match a bank line with."""
    return [
        pl.format("{}:{}", pl.lit(source), pl.col("id")).alias("item_id"),
        pl.lit("payout").alias("kind"),
        pl.col("id").alias("document_number"),
        issue_date.alias("issue_date"),
        due_date.alias("due_date"),
        pl.when(expects_money).then(amount.cast(MONEY_DTYPE)).otherwise(pl.lit(0).cast(MONEY_DTYPE))
        .cast(MONEY_DTYPE).alias("amount_open"),
        currency.alias("currency"),
        pl.lit(processor).alias("partner_name"),
        pl.lit(None, pl.String).alias("partner_iban"),
        pl.lit(None, pl.String).alias("partner_id"),
        pl.lit(None, pl.String).alias("company_id"),
        pl.lit(bank_account, pl.String).alias("bank_account"),
        pl.lit(None, pl.String).alias("structured_ref"),
        pl.col("id").alias("settlement_ref"),
    ]
