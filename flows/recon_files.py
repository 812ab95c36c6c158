"""``ledgerflow reconcile-files``: BANK.csv + ITEMS.csv in, MATCHES.csv (+ REPORT.json) out.

Pure and offline (INTERFACES §1): no Prefect, no network, no tenant. Input is
checked completely before anything is written; the first problem is reported as
``FILE: line N, column C: what is wrong (got 'value')`` and nothing is written.
Outputs go to a temporary name and are renamed at the end, so a crash never
leaves half a file, and the same input always gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl

from destinations.delivery.local import publish
from sources.recon_csv import BANK_COLUMNS, DECISION_COLUMNS, ITEM_COLUMNS, InputError, read_table

__all__ = ["InputError", "reconcile_files", "matches_csv", "report_json", "split_decisions"]

# --------------------------------------------------------------------------- writing

def matches_csv(matches: pl.DataFrame) -> bytes:
    """MATCHES.csv bytes: RFC 4180, CRLF, money as plain decimals, confidence 0..1."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["bank_line_id", "item_id", "amount_applied", "rule", "confidence", "reason"])
    for bank_line_id, item_id, amount, rule, confidence, reason in matches.iter_rows():
        writer.writerow([bank_line_id, item_id or "", f"{Decimal(amount):f}", rule, f"{confidence:.2f}",
                         reason or ""])
    return out.getvalue().encode("utf-8")


def report_json(report: dict) -> bytes:
    return (json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")


# --------------------------------------------------------------------------- the command

@dataclass
class FilesResult:
    report: dict
    matches: int


def reconcile_files(bank: Path, items: Path, out: Path, *, tolerance_days: int = 45,
                    amount_tolerance: Decimal = Decimal("3"), report: Path | None = None,
                    decisions: Path | None = None, as_of: date | None = None) -> FilesResult:
    """Check both files completely, match, then write MATCHES.csv (and REPORT.json)."""
    from transforms.recon.engine import Rules, reconcile

    bank_frame = read_table(bank, BANK_COLUMNS)
    item_frame = read_table(items, ITEM_COLUMNS)
    confirmed = rejected = None
    if decisions is not None:
        confirmed, rejected = split_decisions(read_table(decisions, DECISION_COLUMNS))
    rules = Rules(tolerance_days=tolerance_days, amount_tolerance_pct=amount_tolerance)
    outcome = reconcile(bank_frame, item_frame, rules, confirmed=confirmed, rejected=rejected, as_of=as_of)
    matches = matches_csv(outcome.matches)
    summary = outcome.report()
    publish(out.parent, out.name, matches)  # temporary name, then renamed
    if report is not None:
        publish(report.parent, report.name, report_json(summary))
    return FilesResult(summary, outcome.matches.height)


def split_decisions(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A reviewer's decisions CSV: confirmations (with an optional amount) and rejections (a
    reversal is a rejection here: there is nothing earlier to undo in a one-off run)."""
    frame = frame.filter(pl.col("decision").is_not_null() & pl.col("item_id").is_not_null())
    confirm = frame.filter(pl.col("decision").str.starts_with("confirm")).select(
        "bank_line_id", "item_id", pl.col("amount_applied").cast(pl.String))
    reject = frame.filter(pl.col("decision").str.starts_with("reject") | pl.col("decision").str.starts_with("reverse")).select("bank_line_id", "item_id")
    return confirm, reject
