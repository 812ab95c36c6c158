"""Trial balance: per account, the sum of debits and credits of a set of journal lines."""

from __future__ import annotations

import polars as pl

from schemas.money import MONEY_DTYPE

TRIAL_BALANCE_SCHEMA = {"account": pl.String, "account_name": pl.String, "debit": MONEY_DTYPE,
                        "credit": MONEY_DTYPE, "balance": MONEY_DTYPE}


def trial_balance(lines: pl.DataFrame) -> pl.DataFrame:
    """Accounts in order with debit, credit and balance (debit - credit); money stays Decimal(18, 2)."""
    if lines.is_empty():
        return pl.DataFrame(schema=TRIAL_BALANCE_SCHEMA)
    return (
        lines.group_by("account")
        .agg(pl.col("account_name").first(), pl.col("debit").sum(), pl.col("credit").sum())
        .with_columns((pl.col("debit") - pl.col("credit")).alias("balance"))
        .sort("account")
        .cast(TRIAL_BALANCE_SCHEMA)  # type: ignore[arg-type]
        .select(list(TRIAL_BALANCE_SCHEMA))
    )
