"""PayPal raw transactions -> expected payouts (``open_item`` kind ``payout``) and rejects. Pure Polars.

A withdrawal from the PayPal balance to the bank (event group T04, "Bank withdrawal from PayPal
account"; PayPal's T-code reference says the event group is enough for reconciliation) is money
we expect on our bank account: one payout item per withdrawal, positive (+ = money in at our
bank), keyed ``<source>:<transaction id>``, with the transaction id as document number and
settlement reference. Payments, refunds and fees stay in the raw table for later use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl

from schemas.currencies import ISO_4217
from schemas.tables import OpenItem, polars_schema
from transforms.payouts import payout_item_columns
from transforms.stage_pms import REJECT_SCHEMA

WITHDRAWAL_GROUP = "T04"
UNDONE = ("V", "D")  # reversed, denied


@dataclass(frozen=True)
class StagedPaypal:
    items: pl.DataFrame  # OpenItem
    rejects: pl.DataFrame  # REJECT_SCHEMA


def _reject(row: dict, source: str, column: str | None, value: object, reason: str) -> dict:
    moment = row.get("initiated_at")
    return {"source": source, "table_name": "transactions", "record_id": row["id"],
            "record_version": row.get("lf_record_hash"), "business_date": moment.date() if moment else None,
            "column_name": column, "value": None if value is None else str(value), "reason": reason,
            "payload": row.get("lf_extra")}


def _problems(current: pl.DataFrame, source: str) -> list[dict]:
    """Fields the extraction could not read exactly, conflicting versions, and withdrawals that
    cannot be an expected payout."""
    problems: list[dict] = []
    conflicting = set(current.group_by("id").len().filter(pl.col("len") > 1).get_column("id").to_list())
    suspicious = current.filter(pl.col("lf_invalid").is_not_null() | pl.col("id").is_in(sorted(conflicting))
                                | pl.col("event_code").str.starts_with(WITHDRAWAL_GROUP).fill_null(False))
    for row in suspicious.iter_rows(named=True):
        for column, problem in json.loads(row["lf_invalid"] or "{}").items():
            problems.append(_reject(row, source, column, problem["value"], problem["reason"]))
        if row["id"] in conflicting:
            problems.append(_reject(row, source, "lf_record_hash", row["lf_record_hash"],
                                    "PayPal delivered two versions of this transaction at once; which one holds "
                                    "is unknown"))
        if row["lf_invalid"] or row["id"] in conflicting or not (row["event_code"] or "").startswith(WITHDRAWAL_GROUP):
            continue
        if row["initiated_at"] is None:
            problems.append(_reject(row, source, "transaction_info.transaction_initiation_date", None,
                                    "a withdrawal needs its date"))
        if row["amount"] is None:
            problems.append(_reject(row, source, "transaction_info.transaction_amount", None,
                                    "a withdrawal needs its amount"))
        elif row["amount"] > 0:
            problems.append(_reject(row, source, "transaction_info.transaction_amount", row["amount"],
                                    "a withdrawal takes money out of the PayPal balance: its amount must not be "
                                    "positive"))
        if row["currency"] is not None and row["currency"] not in ISO_4217:
            problems.append(_reject(row, source, "transaction_info.transaction_amount.currency_code",
                                    row["currency"], "is not an ISO 4217 currency code"))
    return problems


def stage_paypal(current: pl.DataFrame, *, source: str, bank_account: str | None) -> StagedPaypal:
    """The current version of each transaction -> payout items for the valid withdrawals, rejects for the rest.

    A reversed (``V``) or denied (``D``) withdrawal keeps its item with ``amount_open`` 0: the money
    never reaches the bank (or came back to PayPal), and an item that was open before must be
    replaced, not left expecting money that will not come.
    """
    rejects = pl.DataFrame(_problems(current, source), schema=REJECT_SCHEMA)
    refused = set(rejects.get_column("record_id").to_list())
    withdrawals = current.filter(pl.col("event_code").str.starts_with(WITHDRAWAL_GROUP).fill_null(False)
                                 & ~pl.col("id").is_in(sorted(refused)))
    items = withdrawals.select(payout_item_columns(
        source=source, processor="PayPal", bank_account=bank_account,
        issue_date=pl.col("initiated_at").dt.convert_time_zone("UTC").dt.date(), due_date=pl.lit(None, pl.Date),
        amount=-pl.col("amount"), currency=pl.col("currency"), expects_money=~pl.col("status").is_in(UNDONE),
    )).sort("item_id")
    return StagedPaypal(items.cast(polars_schema(OpenItem)), rejects)  # type: ignore[arg-type]


def daily_fees(current: pl.DataFrame, *, timezone: str, currency: str) -> pl.DataFrame:
    """The fees PayPal took (FEE_SCHEMA: ``fee_amount`` is negative when PayPal keeps money, so the
    cost is its opposite), by the local date of the transaction, in the books' currency; denied or
    reversed transactions and unreadable ones (in rejects) are left out."""
    return current.filter(pl.col("lf_invalid").is_null() & pl.col("fee_amount").is_not_null()
                          & (pl.col("fee_currency") == currency) & ~pl.col("status").is_in(UNDONE).fill_null(False)
                          & pl.col("initiated_at").is_not_null()).select(
        pl.col("initiated_at").dt.convert_time_zone(timezone).dt.date().alias("business_date"),
        pl.lit(currency).alias("currency"), (-pl.col("fee_amount")).alias("fee"))

