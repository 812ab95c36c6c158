"""Building LedgerExports for the format tests: a golden case from its files, and small changes
to its company or to one journal line (for the refusal tests)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from destinations.exports.ledger import LedgerExport, generated_at, read_journal, read_opening
from schemas.company import load_company


def golden_export(folder: Path, case: str, start: date, end: date, *, opening: bool = True) -> LedgerExport:
    balances = folder / f"{case}.opening.csv"
    return LedgerExport(load_company(folder / f"{case}.company.toml"), start, end,
                        read_journal(folder / f"{case}.journal.csv", start, end),
                        read_opening(balances if opening and balances.exists() else None), generated_at(end))


def with_company(export: LedgerExport, **changes) -> LedgerExport:
    company = export.company.model_validate({**export.company.model_dump(), **changes})
    return LedgerExport(company, export.period_start, export.period_end, export.journal, export.opening,
                        export.generated_at)


def with_line(export: LedgerExport, entry_id: str, account: str, /, **changes) -> LedgerExport:
    where = (pl.col("entry_id") == entry_id) & (pl.col("account") == account)
    journal = export.journal.with_columns(
        *(pl.when(where).then(pl.lit(value, dtype=export.journal.schema[column])).otherwise(pl.col(column))
          .alias(column) for column, value in changes.items()))
    return LedgerExport(export.company, export.period_start, export.period_end, journal, export.opening,
                        export.generated_at)
