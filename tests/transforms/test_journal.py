from datetime import date
from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.tables import JournalLine
from schemas.tenant import load_tenant
from schemas.validate import validate_rows
from transforms.journal import PAYMENT_TOTALS_SCHEMA, SALES_TOTALS_SCHEMA, build_daily_journals

TENANT = load_tenant("demo")
DAY = date(2026, 3, 14)
D = Decimal


def sales(*rows) -> pl.DataFrame:
    return pl.DataFrame([{"business_date": r[0] if len(r) > 4 else DAY, "category": r[-4], "vat_rate": D(r[-3]),
                          "amount": D(r[-2]), "lines": r[-1]} for r in rows], schema=SALES_TOTALS_SCHEMA)


def payments(*rows) -> pl.DataFrame:
    return pl.DataFrame([{"business_date": DAY, "kind": kind, "method": method, "partner_id": pid,
                          "partner_name": pname, "amount": D(amount), "lines": 1}
                         for kind, method, pid, pname, amount in rows], schema=PAYMENT_TOTALS_SCHEMA)


def lines_by(journal, account: str) -> list[tuple]:
    return journal.lines.filter(pl.col("account") == account).select(
        "description", "debit", "credit", "partner_id").rows()


def build(sales_frame, payment_frame=None):
    return build_daily_journals(sales_frame, payment_frame if payment_frame is not None else payments(), TENANT)


def balanced(journal) -> bool:
    by_day = journal.lines.group_by("business_date").agg(pl.col("debit").sum(), pl.col("credit").sum())
    return all(d == c for d, c in by_day.select("debit", "credit").rows())


def test_revenue_is_net_per_category_and_vat_is_computed_on_the_days_total_per_rate():
    journal = build(sales(("ROOM", "10", "1000.01", 8), ("FOOD", "10", "33.33", 3), ("BEVERAGE", "20", "55.55", 5)))
    assert lines_by(journal, "706100") == [("Revenue ROOM (V10 10.00 %)", D("0.00"), D("909.10"), None)]
    assert lines_by(journal, "445710") == [("VAT V10 10.00 %", D("0.00"), D("93.94"), None)]
    assert lines_by(journal, "445720") == [("VAT V20 20.00 %", D("0.00"), D("9.26"), None)]
    assert balanced(journal)


def test_rounding_cents_go_to_the_rounding_account():
    # 0.10 at 20 %: net 0.0833 -> 0.08 for each category (0.16); VAT on the day's 0.20 is 0.0333 -> 0.03.
    # 0.20 - 0.03 - 0.16 leaves 0.01, credited to the rounding account so the day still balances.
    journal = build(sales(("BEVERAGE", "20", "0.10", 1), ("SPA", "20", "0.10", 1)))
    assert lines_by(journal, "445720") == [("VAT V20 20.00 %", D("0.00"), D("0.03"), None)]
    assert lines_by(journal, TENANT.mapping.rounding_account) == [("VAT rounding V20", D("0.00"), D("0.01"), None)]
    assert balanced(journal)


def test_rounding_can_also_be_a_debit():
    journal = build(sales(("FOOD", "10", "0.05", 1), ("BREAKFAST", "10", "0.05", 1), ("ROOM", "10", "0.05", 1)))
    # nets 0.05/1.1 = 0.045 -> 0.05 each (0.15), VAT on 0.15 = 0.0136 -> 0.01, so 0.01 too much credited.
    assert lines_by(journal, TENANT.mapping.rounding_account) == [("VAT rounding V10", D("0.01"), D("0.00"), None)]
    assert balanced(journal)


def test_tourist_tax_is_a_liability_without_vat():
    journal = build(sales(("CITY_TAX", "0", "46.00", 20)))
    assert lines_by(journal, "467100") == [("CITY_TAX collected", D("0.00"), D("46.00"), None)]
    assert journal.lines.filter(pl.col("account").str.starts_with("4457")).is_empty()
    assert lines_by(journal, "411000") == [("Guest ledger: charged to folios less folio payments", D("46.00"),
                                            D("0.00"), None)]


def test_payments_go_to_clearing_accounts_and_city_ledger_to_each_company():
    journal = build(sales(("ROOM", "10", "880.00", 4)), payments(
        ("payment", "CARD", None, None, "300.00"), ("payment", "CASH", None, None, "80.00"),
        ("payment", "CITY_LEDGER", "C001", "Alpine Consulting SAS", "250.00"),
        ("payment", "CITY_LEDGER", "C002", "Lacroix Ingénierie", "250.00")))
    assert lines_by(journal, "511200") == [("Payments by CARD", D("300.00"), D("0.00"), None)]
    assert lines_by(journal, "530000") == [("Payments by CASH", D("80.00"), D("0.00"), None)]
    assert lines_by(journal, "411100") == [("Payments by CITY_LEDGER", D("250.00"), D("0.00"), "C001"),
                                           ("Payments by CITY_LEDGER", D("250.00"), D("0.00"), "C002")]
    assert lines_by(journal, "411000") == []  # charged 880, paid 880: nothing left on guest folios
    assert balanced(journal)


def test_deposits_are_a_liability_until_applied_to_the_stay():
    received = build(sales(), payments(("deposit", "BANK_TRANSFER", None, None, "150.00")))
    assert lines_by(received, "511500") == [("Deposits received by BANK_TRANSFER", D("150.00"), D("0.00"), None)]
    assert lines_by(received, "419100") == [("Deposits received (owed until the stay)", D("0.00"), D("150.00"), None)]
    applied = build(sales(("ROOM", "10", "150.00", 1)), payments(("payment", "DEPOSIT", None, None, "150.00")))
    assert lines_by(applied, "419100") == [("Payments by DEPOSIT", D("150.00"), D("0.00"), None)]
    assert balanced(received) and balanced(applied)


def test_refunds_and_cancelled_deposits_turn_to_the_credit_side():
    journal = build(sales(("BREAKFAST", "10", "-39.00", 1)), payments(
        ("payment", "CARD", None, None, "-39.00"), ("deposit", "CARD", None, None, "-120.00")))
    assert lines_by(journal, "511200") == [("Deposits received by CARD", D("0.00"), D("120.00"), None),
                                           ("Payments by CARD", D("0.00"), D("39.00"), None)]
    assert balanced(journal)


def test_unmapped_category_and_method_post_to_suspense_and_are_reported():
    journal = build(sales(("MINIBAR", "20", "12.00", 2)), payments(("payment", "VOUCHER", None, None, "12.00")))
    suspense = lines_by(journal, TENANT.mapping.suspense_account)
    assert ("Unmapped category MINIBAR (V20 20.00 %)", D("0.00"), D("10.00"), None) in suspense
    assert ("Unmapped payment method VOUCHER (payment)", D("12.00"), D("0.00"), None) in suspense
    assert lines_by(journal, "445720") == [("VAT V20 20.00 %", D("0.00"), D("2.00"), None)]
    reasons = journal.suspense.get_column("reason").to_list()
    assert reasons == ["category MINIBAR is not in mapping.revenue or mapping.taxes",
                       "payment method VOUCHER is not in mapping.payment_methods"]
    assert balanced(journal)


def test_a_vat_rate_other_than_the_mappings_is_rejected_and_left_out():
    journal = build(sales(("SPA", "10", "80.00", 1), ("ROOM", "10", "100.00", 1)))
    assert journal.rejects.get_column("reason").to_list() == [
        "SPA charged at 10.00 % but mapping.revenue.SPA uses VAT code V20 at 20.00 %"]
    assert lines_by(journal, "706500") == []
    assert lines_by(journal, "411000")[0][1] == D("100.00")  # the guest ledger only carries what was posted
    assert balanced(journal)


def test_an_unmapped_rate_that_no_vat_code_has_is_rejected():
    journal = build(sales(("MINIBAR", "7", "10.70", 1)))
    assert journal.rejects.get_column("reason").to_list() == [
        "MINIBAR is not mapped and no VAT code has the rate 7.00 %"]
    assert journal.lines.is_empty()


def test_an_empty_day_has_no_lines():
    journal = build(sales(), payments())
    assert journal.lines.is_empty() and journal.suspense.is_empty() and journal.rejects.is_empty()


def test_lines_pass_the_journal_line_schema_once_they_have_an_entry():
    journal = build(sales(("ROOM", "10", "110.00", 1)), payments(("payment", "CARD", None, None, "110.00")))
    frame = journal.lines.with_columns(pl.lit("e1").alias("entry_id"), pl.lit(DAY).alias("entry_date"),
                                       pl.lit("VT").alias("journal_code"), pl.lit("PMS").alias("document_ref"))
    assert validate_rows(JournalLine, frame.select(list(JournalLine.to_schema().columns))).ok


amounts = st.integers(min_value=-50_000, max_value=5_000_000).map(lambda c: D(c) / 100)
categories = st.sampled_from(["ROOM", "BREAKFAST", "FOOD", "BEVERAGE", "SPA", "CITY_TAX", "MINIBAR"])
RATES = {"ROOM": "10", "BREAKFAST": "10", "FOOD": "10", "BEVERAGE": "20", "SPA": "20", "CITY_TAX": "0",
         "MINIBAR": "20"}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), categories, amounts), max_size=25),
       st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["payment", "deposit"]),
                          st.sampled_from(["CARD", "CASH", "CITY_LEDGER", "DEPOSIT", "VOUCHER"]), amounts),
                max_size=15))
def test_every_day_balances_and_gross_is_fully_accounted_for(sale_rows, payment_rows):
    sales_frame = pl.DataFrame(
        [{"business_date": date(2026, 3, 1 + d), "category": c, "vat_rate": D(RATES[c]), "amount": a, "lines": 1}
         for d, c, a in sale_rows], schema=SALES_TOTALS_SCHEMA,
    ).group_by("business_date", "category", "vat_rate").agg(pl.col("amount").sum(), pl.col("lines").sum())
    payment_frame = pl.DataFrame(
        [{"business_date": date(2026, 3, 1 + d), "kind": k, "method": m, "partner_id": None, "partner_name": None,
          "amount": a, "lines": 1} for d, k, m, a in payment_rows], schema=PAYMENT_TOTALS_SCHEMA)
    journal = build_daily_journals(sales_frame.cast(SALES_TOTALS_SCHEMA), payment_frame, TENANT)
    assert journal.rejects.is_empty()
    assert balanced(journal)
    assert (journal.lines.filter((pl.col("debit") > 0) & (pl.col("credit") > 0))).is_empty()
    sales_side = journal.lines.filter(pl.col("account").is_in(
        ["706100", "706200", "706300", "706400", "706500", "445710", "445720", "467100", "658000"])
        | (pl.col("account") == "471000") & pl.col("description").str.starts_with("Unmapped category"))
    gross = sum((a for _, _, a in sale_rows), D(0))
    assert sales_side.get_column("credit").sum() - sales_side.get_column("debit").sum() == gross
