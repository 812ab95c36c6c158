"""What every ledger export format receives (INTERFACES §3), and the one error it raises.

A format module offers ``NAME`` and ``write(export: LedgerExport) -> list[tuple[str, bytes]]``
(file name, content). It gets a journal that is already checked: typed columns, every entry
balanced, every line inside the period, sorted by (entry_date, entry_id, line order). It must
be a pure function of ``export``: timestamps inside files come from ``export.generated_at``
(the period, or SOURCE_DATE_EPOCH), never the clock, so the same input gives the same bytes.
Data the format cannot carry is refused with ``ExportRefused`` naming the entry and field;
nothing is written then.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import polars as pl

from schemas.company import Company
from schemas.money import MONEY_DTYPE

JOURNAL_SCHEMA = {
    "entry_id": pl.String, "journal_code": pl.String, "entry_date": pl.Date, "account": pl.String,
    "account_name": pl.String, "partner_id": pl.String, "partner_name": pl.String, "description": pl.String,
    "debit": MONEY_DTYPE, "credit": MONEY_DTYPE, "currency": pl.String, "vat_code": pl.String,
    "document_ref": pl.String,
}
OPENING_SCHEMA = {"account": pl.String, "opening_debit": MONEY_DTYPE, "opening_credit": MONEY_DTYPE}


class ExportRefused(ValueError):
    """Data the format cannot carry; the message names the entry (or account) and the field."""


@dataclass(frozen=True)
class LedgerExport:
    company: Company
    period_start: date
    period_end: date
    journal: pl.DataFrame  # JOURNAL_SCHEMA, checked and sorted (see the module docstring)
    opening: pl.DataFrame  # OPENING_SCHEMA: one row per account with an opening balance (may be empty)
    generated_at: datetime  # UTC; from SOURCE_DATE_EPOCH, else the end of the period

    def fiscal_year(self) -> tuple[date, date]:
        """The fiscal year that contains the period's first day (from ``fiscal_year_start`` MM-DD)."""
        month, day = (int(x) for x in self.company.fiscal_year_start.split("-"))
        start = date(self.period_start.year, month, day)
        if start > self.period_start:
            start = date(self.period_start.year - 1, month, day)
        return start, date(start.year + 1, month, day) - timedelta(days=1)


def generated_at(period_end: date) -> datetime:
    """SOURCE_DATE_EPOCH when set (reproducible builds' convention), else the period's last day, 00:00 UTC."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    return datetime.combine(period_end, time(0, 0), UTC)


def _journal_columns():
    from sources.recon_csv import Column

    return [Column("entry_id", True), Column("journal_code", True), Column("entry_date", True, "date"),
            Column("account", True), Column("account_name", False), Column("partner_id", False),
            Column("partner_name", False), Column("description", False), Column("debit", True, "money"),
            Column("credit", True, "money"), Column("currency", True, "currency"), Column("vat_code", False),
            Column("document_ref", False)]


def read_journal(path: Path, period_start: date, period_end: date) -> pl.DataFrame:
    """JOURNAL.csv, checked completely: every value typed (errors name line and column), debit and
    credit non-negative with exactly one of them non-zero, every line inside the period, one date
    per entry, every entry balanced per currency. Sorted by (entry_date, entry_id, line order)."""
    from sources.recon_csv import InputError, read_table

    frame = read_table(path, _journal_columns()).with_row_index("line", offset=2)
    for row in frame.iter_rows(named=True):
        where = f"{path}: line {row['line']}"
        if row["debit"] < 0 or row["credit"] < 0:
            raise InputError(f"{where}, column debit/credit: amounts are non-negative "
                             f"(got {row['debit']} / {row['credit']})")
        if (row["debit"] == 0) == (row["credit"] == 0):
            raise InputError(f"{where}, entry {row['entry_id']}: exactly one of debit and credit must be non-zero "
                             f"(got {row['debit']} / {row['credit']})")
        if not period_start <= row["entry_date"] <= period_end:
            raise InputError(f"{where}, column entry_date: {row['entry_date']} is outside the period "
                             f"{period_start}..{period_end}")
    dates = frame.group_by("entry_id").agg(pl.col("entry_date").n_unique().alias("n")).filter(pl.col("n") > 1)
    if dates.height:
        raise InputError(f"{path}: entry {dates['entry_id'][0]} has lines on more than one date")
    totals = frame.group_by("entry_id", "currency", maintain_order=True).agg(
        pl.col("debit").sum(), pl.col("credit").sum(), pl.col("line").min()).filter(
        pl.col("debit") != pl.col("credit"))
    if totals.height:
        bad = totals.row(0, named=True)
        raise InputError(f"{path}: line {bad['line']}: entry {bad['entry_id']} does not balance "
                         f"(debit {bad['debit']}, credit {bad['credit']} {bad['currency']})")
    return frame.sort("entry_date", "entry_id", "line").drop("line").cast(JOURNAL_SCHEMA)


def read_opening(path: Path | None) -> pl.DataFrame:
    """OPENING.csv (``account,opening_debit,opening_credit``); none given: no opening balances."""
    if path is None:
        return pl.DataFrame(schema=OPENING_SCHEMA)
    from sources.recon_csv import Column, read_table

    frame = read_table(path, [Column("account", True, "id"), Column("opening_debit", True, "money"),
                              Column("opening_credit", True, "money")])
    return frame.cast(OPENING_SCHEMA)
