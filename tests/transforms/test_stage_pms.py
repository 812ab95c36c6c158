import json
from datetime import UTC, date, datetime, time
from decimal import Decimal

import polars as pl

from transforms.stage_pms import stage_pms

T = datetime(2026, 3, 14, 19, 0, tzinfo=UTC)


def charges(*rows: dict) -> pl.DataFrame:
    base = {"id": "C1", "folio_id": "F1", "outlet": "restaurant", "category": "FOOD", "description": "x",
            "quantity": Decimal("1"), "amount": Decimal("10.00"), "vat_rate": Decimal("10.00"), "currency": "EUR",
            "status": "posted", "posted_at": T, "updated_at": T, "lf_invalid": None, "lf_extra": None,
            "lf_record_hash": "h1"}
    return pl.DataFrame([{**base, **row} for row in rows]).cast(
        {"amount": pl.Decimal(18, 2), "vat_rate": pl.Decimal(5, 2), "quantity": pl.Decimal(12, 3),
         "posted_at": pl.Datetime("us", "UTC"), "updated_at": pl.Datetime("us", "UTC"), "lf_invalid": pl.String,
         "lf_extra": pl.String})


NO_PAYMENTS = pl.DataFrame({"id": []}, schema={"id": pl.String})


def stage(frame: pl.DataFrame):
    return stage_pms(frame, NO_PAYMENTS, source="pms", currency="EUR", timezone="Europe/Paris", cutoff=time(4))


def test_good_charges_become_sales_lines_with_their_business_day():
    staged = stage(charges({"id": "C1"}, {"id": "C2", "posted_at": datetime(2026, 3, 15, 1, 0, tzinfo=UTC)}))
    assert staged.rejects.is_empty()
    assert staged.sales_lines.select("line_id", "business_date").rows() == [
        ("pms/C1", date(2026, 3, 14)), ("pms/C2", date(2026, 3, 14))]


def test_a_value_the_extractor_flagged_is_rejected_with_its_original_text():
    invalid = json.dumps({"amount": {"value": "12.345", "reason": "amount '12.345' has more than 2 decimals"}})
    staged = stage(charges({"id": "C1", "amount": None, "lf_invalid": invalid}, {"id": "C2"}))
    assert staged.sales_lines.get_column("source_id").to_list() == ["C2"]
    reject = staged.rejects.row(0, named=True)
    assert (reject["record_id"], reject["column_name"], reject["value"], reject["business_date"]) == (
        "C1", "amount", "12.345", date(2026, 3, 14))
    assert "more than 2 decimals" in reject["reason"]
    assert json.loads(reject["payload"])["lf_invalid"] == invalid  # the whole record is kept


def test_wrong_currency_missing_category_and_unknown_status_are_named():
    staged = stage(charges({"id": "C1", "currency": "USD"}, {"id": "C2", "category": None},
                           {"id": "C3", "status": "pending"}))
    found = staged.rejects.select("record_id", "column_name", "value", "reason").rows()
    assert ("C1", "currency", "USD", "is not the tenant's currency EUR") in found
    assert ("C2", "category", None, "is missing") in found
    assert ("C3", "status", "pending", "is not one of posted, void") in found
    assert staged.sales_lines.is_empty()


def test_two_different_deliveries_of_one_version_are_both_rejected():
    staged = stage(charges({"id": "C1", "lf_record_hash": "a"}, {"id": "C1", "amount": Decimal("11.00"),
                                                                 "lf_record_hash": "b"}))
    assert staged.sales_lines.is_empty()
    assert staged.rejects.get_column("reason").unique().to_list() == [
        "was delivered 2 times with different content for the same version"]


def test_a_voided_charge_is_not_a_sale():
    staged = stage(charges({"id": "C1", "status": "void"}))
    assert staged.sales_lines.is_empty() and staged.rejects.is_empty()
    assert staged.voided.rows() == [("charges", "C1")]


def test_a_charge_without_a_time_has_no_business_day_but_is_still_kept():
    invalid = json.dumps({"posted_at": {"value": "yesterday", "reason": "'yesterday' is not an ISO 8601 time"}})
    staged = stage(charges({"id": "C1", "posted_at": None, "lf_invalid": invalid}))
    reject = staged.rejects.row(0, named=True)
    assert reject["business_date"] is None and reject["value"] == "yesterday"
