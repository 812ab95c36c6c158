"""The close against a real DuckDB file and the demo PMS over HTTP: the acceptance scenarios of
the walking skeleton, run through the same orchestration the flows use (plain steps here)."""

import csv
import io
import json
import shutil
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from tests.hotel import Hotel
from transforms.trial_balance import trial_balance
from warehouse.db import opened, query
from warehouse.journals import entry_lines

D1, D2, D3 = date(2026, 3, 10), date(2026, 3, 11), date(2026, 3, 12)


def journal_rows(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


def lines_of(hotel: Hotel, start: date, end: date) -> pl.DataFrame:
    with opened(hotel.tenant.duckdb_path()) as con:
        return entry_lines(con, hotel.tenant, start, end)


def test_every_entry_balances_and_running_a_day_twice_changes_nothing(hotel):
    for day in (D1, D2, D3):
        hotel.close_day(day)
    lines = lines_of(hotel, D1, D3)
    per_entry = lines.group_by("entry_id").agg(pl.col("debit").sum(), pl.col("credit").sum())
    assert per_entry.height >= 3 and (per_entry["debit"] == per_entry["credit"]).all()
    counts, files = hotel.counts(), hotel.export_bytes()
    mtimes = {p.name: p.stat().st_mtime_ns for p in hotel.export_dir().iterdir()}

    summary = hotel.close_day(D3)
    assert hotel.counts() == counts
    assert hotel.export_bytes() == files
    assert {p.name: p.stat().st_mtime_ns for p in hotel.export_dir().iterdir()} == mtimes
    assert [f.new_batch for e in summary.exports for f in e.files] == [False]


def test_a_backfill_twice_adds_no_row_and_no_byte(hotel):
    hotel.backfill(D1, D3)
    counts, files = hotel.counts(), hotel.export_bytes()
    assert sorted(files) == [f"journal-demo-{d}{ext}" for d in (D1, D2, D3) for ext in (".csv", ".manifest.json")]
    hotel.backfill(D1, D3, run_id="second")
    assert hotel.counts() == counts and hotel.export_bytes() == files


def test_a_months_trial_balance_equals_the_sum_of_its_daily_journals(tmp_path):
    daily = Hotel(tmp_path / "daily")
    monthly = Hotel(tmp_path / "monthly")
    try:
        daily.backfill(date(2026, 3, 1), date(2026, 3, 31), "day")
        monthly.backfill(date(2026, 3, 1), date(2026, 3, 31), "month")
        days = [trial_balance(lines_of(daily, d, d)) for d in (date(2026, 3, 1) + timedelta(n) for n in range(31))]
        summed = (pl.concat(days).group_by("account").agg(pl.col("debit").sum(), pl.col("credit").sum())
                  .sort("account"))
        month = trial_balance(lines_of(monthly, date(2026, 3, 1), date(2026, 3, 31)))
        assert summed.rows() == month.select("account", "debit", "credit").rows()
        assert month["debit"].sum() == month["credit"].sum()
        monthly_file = monthly.export_bytes("journal_csv_monthly")["journal-demo-2026-03.csv"]
        assert len(journal_rows(monthly_file)) == sum(len(journal_rows(c)) for n, c in daily.export_bytes().items()
                                                      if n.endswith(".csv"))
    finally:
        daily.stop()
        monthly.stop()


def test_a_change_to_an_exported_day_is_reversed_and_corrected_in_the_next_export(late_fix_hotel):
    hotel = late_fix_hotel  # the LATE-FIX food ticket of D1, D1 closed and exported
    first_file = hotel.export_bytes()["journal-demo-2026-03-10.csv"]
    # The next morning the restaurant reclassifies the ticket: drinks, 20 % VAT.
    hotel.add_charge("LATE-FIX", hotel.local(D1, 20), amount="40.00", category="BEVERAGE", vat_rate="20.00",
                     updated=hotel.local(D2, 10))
    summary = hotel.close_day(D2)
    assert summary.journals[0].reversed == ["demo-pms-20260310-v1"]
    files = hotel.export_bytes()
    assert files["journal-demo-2026-03-10.csv"] == first_file  # exported stays as it was
    # The next export carries the change in a supplementary file of the day it belongs to.
    late = journal_rows(files["journal-demo-2026-03-10_2.csv"])
    assert list(dict.fromkeys(r["entry_id"] for r in late)) == ["demo-pms-20260310-v1-R", "demo-pms-20260310-v2"]
    assert {r["entry_date"] for r in late} == {"2026-03-10"}
    manifest = json.loads(files["journal-demo-2026-03-10_2.manifest.json"])
    assert manifest["period"] == {"kind": "day", "start": "2026-03-10", "end": "2026-03-10"}
    assert {r["entry_id"] for r in journal_rows(files["journal-demo-2026-03-11.csv"])} == {"demo-pms-20260311-v1"}
    assert [f.path.name for e in summary.exports for f in e.files] == ["journal-demo-2026-03-10_2.csv",
                                                                       "journal-demo-2026-03-11.csv"]
    # The books for D1 now say what the PMS says: original + reversal + correction = correction.
    booked = trial_balance(lines_of(hotel, D1, D1)).filter(pl.col("balance") != 0)
    v2 = hotel.sql("SELECT account, sum(debit) - sum(credit) AS balance FROM journal_line "
                   "WHERE entry_id = 'demo-pms-20260310-v2' GROUP BY account ORDER BY account")
    assert booked.select("account", "balance").rows() == v2.rows()


def test_a_malformed_record_is_quarantined_its_day_held_back_and_the_rest_exported(hotel):
    hotel.add_charge("BAD-AMOUNT", hotel.local(D2, 13), amount="12,50")
    hotel.close_day(D1)
    summary = hotel.close_day(D2)
    state = summary.final_state()
    assert state.name == "CompletedWithRejects" and "2026-03-11" in state.message
    reject = hotel.sql("SELECT record_id, column_name, value, reason, business_date FROM rejects").row(0)
    assert reject == ("BAD-AMOUNT", "amount", "12,50", "amount '12,50' is not a decimal number with '.' as "
                      "separator", D2)
    files = hotel.export_bytes()
    assert len(journal_rows(files["journal-demo-2026-03-10.csv"])) > 0
    assert journal_rows(files["journal-demo-2026-03-11.csv"]) == []  # held back: nothing of D2 left the building
    assert hotel.sql("SELECT count(*) FROM journal_entry WHERE business_date = ?", [D2]).item() == 1  # draft kept

    # The PMS fixes the record: the reject is resolved and D2 goes out with the next export.
    hotel.add_charge("BAD-AMOUNT", hotel.local(D2, 13), amount="12.50", updated=hotel.local(D3, 9))
    summary = hotel.close_day(D3)
    assert summary.final_state().name == "Completed"
    assert hotel.sql("SELECT resolved_run_id FROM rejects").item() == "test-2026-03-12"
    files = hotel.export_bytes()
    assert {r["entry_id"] for r in journal_rows(files["journal-demo-2026-03-11_2.csv"])} == {"demo-pms-20260311-v1"}
    assert {r["entry_id"] for r in journal_rows(files["journal-demo-2026-03-12.csv"])} == {"demo-pms-20260312-v1"}


def test_a_payment_in_another_currency_is_rejected_with_its_value(hotel):
    hotel.add_payment("USD-1", hotel.local(D1, 11), amount="100.00", currency="USD", method="CARD")
    summary = hotel.close_day(D1)
    assert hotel.sql("SELECT table_name, record_id, column_name, value, reason FROM rejects").row(0) == (
        "payments", "USD-1", "currency", "USD", "is not the tenant's currency EUR")
    assert summary.held_back == [("pms", D1)]


def test_an_unmapped_category_posts_to_suspense_and_is_reported(hotel):
    hotel.add_charge("MINI-1", hotel.local(D1, 22), amount="12.00", category="MINIBAR", vat_rate="20.00")
    summary = hotel.close_day(D1)
    assert summary.final_state().name == "CompletedWithWarnings"
    assert summary.suspense.get_column("reason").to_list() == [
        "category MINIBAR is not in mapping.revenue or mapping.taxes"]
    suspense = hotel.sql("SELECT description, credit FROM journal_line WHERE account = '471000'").row(0)
    assert suspense == ("Unmapped category MINIBAR (V20 20.00 %)", Decimal("10.00"))
    assert len(journal_rows(hotel.export_bytes()["journal-demo-2026-03-10.csv"])) > 0  # not held back


def test_an_empty_day_publishes_a_header_only_file(hotel):
    empty = date(2026, 4, 15)  # after the hotel's history
    hotel.store.set_clock(datetime(2026, 4, 16, 6, tzinfo=hotel.tenant.tz))
    summary = hotel.close_day(empty)
    assert summary.final_state().name == "Completed"
    files = hotel.export_bytes()
    assert files["journal-demo-2026-04-15.csv"].startswith(b"entry_id,journal_code,entry_date,")
    assert journal_rows(files["journal-demo-2026-04-15.csv"]) == []
    manifest = json.loads(files["journal-demo-2026-04-15.manifest.json"])
    assert (manifest["entries"], manifest["lines"], manifest["total_debit"]) == (0, 0, "0.00")


def test_duplicate_deliveries_count_once_and_conflicting_ones_are_rejected(hotel):
    duplicate = hotel.add_charge("DUP", hotel.local(D1, 12), amount="30.00")
    hotel.store.also_deliver["DUP"] = [duplicate]
    hotel.close_day(D1)
    assert hotel.sql("SELECT count(*) FROM sales_line WHERE source_id = 'DUP'").item() == 1

    conflict = hotel.add_charge("CONFLICT", hotel.local(D2, 12), amount="30.00")
    hotel.store.also_deliver["CONFLICT"] = [{**conflict, "amount": "31.00"}]
    summary = hotel.close_day(D2)
    rejects = hotel.sql("SELECT value, reason FROM rejects WHERE record_id = 'CONFLICT'")
    assert rejects.rows() == [("CONFLICT", "was delivered 2 times with different content for the same version")] * 2
    assert hotel.sql("SELECT count(*) FROM sales_line WHERE source_id = 'CONFLICT'").item() == 0
    assert summary.held_back == [("pms", D2)]


SPRING_DST = [  # (record, local wall-clock time, fold, business day it belongs to)
    ("DST-0359", (date(2026, 3, 29), time(3, 59)), 0, date(2026, 3, 28)),
    ("DST-0400", (date(2026, 3, 29), time(4, 0)), 0, date(2026, 3, 29)),
    ("DST-0130", (date(2026, 3, 29), time(1, 30)), 0, date(2026, 3, 28)),
]


@pytest.fixture(scope="module")
def spring_dst_books(tmp_path_factory) -> Path:
    """One close of 29 March with every posting of the cases below (a close takes seconds); the
    postings are independent records, so each case reads its own row from a copy of the file."""
    hotel = Hotel(tmp_path_factory.mktemp("spring-dst"))
    try:
        for record_id, (day, clock), fold, _ in SPRING_DST:
            hotel.add_charge(record_id, datetime.combine(day, clock, tzinfo=hotel.tenant.tz).replace(fold=fold),
                             amount="9.00")
        hotel.close_day(date(2026, 3, 29))
    finally:
        hotel.stop()
    return hotel.tenant.duckdb_path()


@pytest.mark.parametrize("record_id, local_time, fold, expected", SPRING_DST)
def test_spring_dst_day_postings_land_on_the_right_business_day(spring_dst_books, tmp_path, record_id, local_time,
                                                                 fold, expected):
    books = Path(shutil.copy(spring_dst_books, tmp_path / "books.duckdb"))
    with opened(books) as con:
        assert query(con, "SELECT business_date FROM sales_line WHERE source_id = ?", [record_id]).item() == expected


def test_autumn_dst_both_passes_of_the_repeated_hour_belong_to_the_day_before(tmp_path):
    hotel = Hotel(tmp_path, start=date(2026, 10, 20), end=date(2026, 10, 31))
    try:
        night = date(2026, 10, 25)
        hotel.add_charge("FIRST", hotel.local(night, 2, 30, fold=0), amount="5.00", category="BEVERAGE",
                         vat_rate="20.00")
        hotel.add_charge("SECOND", hotel.local(night, 2, 30, fold=1), amount="6.00", category="BEVERAGE",
                         vat_rate="20.00")
        hotel.close_day(date(2026, 10, 24))
        hotel.close_day(night)
        days = dict(hotel.sql("SELECT source_id, business_date FROM sales_line WHERE source_id IN "
                              "('FIRST', 'SECOND')").rows())
        assert days == {"FIRST": date(2026, 10, 24), "SECOND": date(2026, 10, 24)}
        lines = lines_of(hotel, date(2026, 10, 24), night)
        sums = lines.group_by("entry_id").agg(pl.col("debit").sum(), pl.col("credit").sum())
        assert (sums["debit"] == sums["credit"]).all()
    finally:
        hotel.stop()


def test_a_day_that_is_not_over_cannot_be_closed(hotel):
    from datetime import UTC

    from flows.closing import open_business_date

    today = open_business_date(hotel.tenant, datetime.now(UTC))
    with pytest.raises(ValueError, match=f"business day {today} is not over yet: in Europe/Paris the day"):
        hotel.close_day(today)


def test_a_database_from_an_older_version_gets_new_optional_columns_and_a_clear_refusal_otherwise(tmp_path):
    import duckdb

    from warehouse.db import SchemaDrift, connect

    path = tmp_path / "old.duckdb"
    old = duckdb.connect(str(path))
    old.execute("CREATE TABLE export_log (tenant VARCHAR, system_id VARCHAR, object_type VARCHAR, "
                "object_id VARCHAR, content_hash VARCHAR, exported_at TIMESTAMPTZ)").fetchall()
    old.close()
    con = connect(path)  # optional columns (external_id, note, batch_id) are added
    columns = {row[0] for row in con.execute("DESCRIBE export_log").fetchall()}
    con.close()
    assert {"external_id", "note", "batch_id"} <= columns

    old = duckdb.connect(str(path))
    old.execute("DROP TABLE rejects").fetchall()
    old.execute("CREATE TABLE rejects (reject_id VARCHAR)").fetchall()
    old.close()
    with pytest.raises(SchemaDrift, match=r"old\.duckdb: table rejects has no column problem_id"):
        connect(path)
