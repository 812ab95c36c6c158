from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from schemas.tables import JournalLine, empty_frame, polars_schema
from schemas.validate import SchemaMismatch, validate_rows


def journal(rows: list[dict]) -> pl.DataFrame:
    base = {"line_no": 1, "journal_code": "VT", "entry_date": date(2026, 3, 1), "account": "706100",
            "account_name": "x", "partner_id": None, "partner_name": None, "description": "d",
            "currency": "EUR", "vat_code": None, "document_ref": "PMS-1"}
    frame = pl.DataFrame([{**base, **row} for row in rows])
    return frame.select(list(empty_frame(JournalLine).columns)).cast(polars_schema(JournalLine))


def test_valid_rows_pass_through():
    frame = journal([{"entry_id": "a", "debit": Decimal("5"), "credit": Decimal("0")},
                     {"entry_id": "a", "line_no": 2, "debit": Decimal("0"), "credit": Decimal("5")}])
    result = validate_rows(JournalLine, frame)
    assert result.ok and result.valid.height == 2


def test_unbalanced_entry_and_two_sided_line_are_reported_per_row():
    frame = journal([
        {"entry_id": "a", "debit": Decimal("5"), "credit": Decimal("0")},
        {"entry_id": "a", "line_no": 2, "debit": Decimal("0"), "credit": Decimal("5")},
        {"entry_id": "b", "debit": Decimal("5"), "credit": Decimal("0")},
        {"entry_id": "b", "line_no": 2, "debit": Decimal("1"), "credit": Decimal("4")},
        {"entry_id": "c", "currency": "XXX", "debit": Decimal("0"), "credit": Decimal("0")},
    ])
    result = validate_rows(JournalLine, frame)
    assert result.valid.get_column("entry_id").to_list() == ["a", "a"]
    reasons = result.failures.get_column("reason").to_list()
    assert "entry does not balance: sum(debit) != sum(credit) for its currency" in reasons
    assert "exactly one of debit and credit is non-zero" in reasons
    currency = result.failures.filter(pl.col("column") == "currency").row(0, named=True)
    assert (currency["row"], currency["value"], currency["reason"]) == (4, "XXX", "is not an allowed value")


def test_a_missing_column_is_a_schema_mismatch_not_a_bad_row():
    frame = journal([{"entry_id": "a", "debit": Decimal("5"), "credit": Decimal("0")}]).drop("currency")
    with pytest.raises(SchemaMismatch, match="currency"):
        validate_rows(JournalLine, frame)
