"""Golden files for the generic journal CSV: tests/golden/journal_csv/<case>.in -> <case>.out.

`make golden` (LEDGERFLOW_REGENERATE_GOLDEN=1) rewrites the .out files for review.
"""

import os
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from destinations.exports import journal_csv
from schemas.tables import JournalLine, polars_schema

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "journal_csv"
CASES = sorted(p.stem for p in GOLDEN.glob("*.in"))


def read_in(case: str) -> pl.DataFrame:
    frame = pl.read_csv(GOLDEN / f"{case}.in", infer_schema=False)
    return frame.with_columns(pl.col("entry_date").str.to_date(), pl.col("line_no").cast(pl.Int64),
                              pl.col("debit", "credit").cast(pl.Decimal(18, 2))).cast(polars_schema(JournalLine))


def check_golden(path: Path, content: bytes) -> None:
    if os.environ.get("LEDGERFLOW_REGENERATE_GOLDEN"):
        path.write_bytes(content)
    assert path.read_bytes() == content, f"{path.name} differs; run `make golden` and review the diff"


@pytest.mark.parametrize("case", CASES)
def test_golden_journal_csv(case):
    lines = read_in(case)
    content = journal_csv.render(lines)
    check_golden(GOLDEN / f"{case}.out", content)
    manifest = journal_csv.manifest(tenant="demo", system_id="journal_csv", batch_id=f"journal_csv:{case}",
                                    period_kind="day", period_start=date(2026, 3, 14), period_end=date(2026, 3, 14),
                                    file=f"{case}.csv", content=content, lines=lines, currency="EUR")
    check_golden(GOLDEN / f"{case}.manifest.out", manifest)


def test_columns_are_exactly_the_interface_contract():
    assert journal_csv.COLUMNS == ("entry_id", "journal_code", "entry_date", "account", "account_name",
                                   "partner_id", "partner_name", "description", "debit", "credit", "currency",
                                   "vat_code", "document_ref")


def test_file_names_number_supplementary_batches():
    assert journal_csv.file_name("journal", "demo", "2026-03-14", 1) == "journal-demo-2026-03-14.csv"
    assert journal_csv.file_name("journal", "demo", "2026-W11", 2) == "journal-demo-2026-W11_2.csv"
