"""A payment processor's fees as a daily journal: what it kept of the money it collected.

A payout arrives net of fees, so the processor's clearing account (``[reconciliation.accounts]
payout``) would keep the fees forever once the payout is matched. Per business day and currency:

    debit   the processor-fee account   the day's fees
    credit  the clearing account        the same amount

(sides swapped on a day whose fees were refunded). Fees come in already exact; nothing is rounded.
"""

from __future__ import annotations

import polars as pl

from schemas.money import MONEY_DTYPE
from transforms.journal import BUILT_LINE_SCHEMA

FEE_SCHEMA = {"business_date": pl.Date, "currency": pl.String, "fee": MONEY_DTYPE}  # fee > 0: a cost


def fee_journal_lines(fees: pl.DataFrame, *, processor: str, fee_account: str, clearing_account: str,
                      account_names: dict[str, str]) -> pl.DataFrame:
    """One two-line entry per business day (and currency) with fees; BUILT_LINE_SCHEMA."""
    daily = (fees.group_by("business_date", "currency").agg(pl.col("fee").sum().cast(MONEY_DTYPE))
             .filter(pl.col("fee") != 0).sort("business_date", "currency"))
    if daily.is_empty():
        return pl.DataFrame(schema=BUILT_LINE_SCHEMA)
    zero = pl.lit(0).cast(MONEY_DTYPE)
    cost, refund = pl.col("fee").clip(lower_bound=0), (-pl.col("fee")).clip(lower_bound=0)

    def side(account: str, debit: pl.Expr, credit: pl.Expr, what: str, order: int) -> pl.DataFrame:
        return daily.select(
            "business_date", pl.lit(order, pl.Int64).alias("order"), pl.lit(account).alias("account"),
            pl.lit(account_names.get(account, account)).alias("account_name"),
            pl.lit(None, pl.String).alias("partner_id"), pl.lit(processor).alias("partner_name"),
            pl.format("{} {} {} {}", pl.lit(processor), pl.lit(what), pl.col("business_date"),
                      pl.col("currency")).alias("description"),
            debit.cast(MONEY_DTYPE).alias("debit"), credit.cast(MONEY_DTYPE).alias("credit"), "currency",
            pl.lit(None, pl.String).alias("vat_code"))

    lines = pl.concat([side(fee_account, cost, refund, "fees", 1),
                       side(clearing_account, refund, cost, "fees kept from payouts", 2)])
    lines = lines.filter((pl.col("debit") != zero) | (pl.col("credit") != zero))
    return lines.sort("business_date", "currency", "order").with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("business_date").alias("line_no")
    ).select(list(BUILT_LINE_SCHEMA)).cast(BUILT_LINE_SCHEMA)  # type: ignore[arg-type]
