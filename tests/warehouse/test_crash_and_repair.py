"""Runs that die half-way, and problems fixed later: nothing may be lost or left stuck."""

import json
from datetime import UTC, date, datetime

import pytest

from sources.demo_pms import ExtractReport, demo_pms_source
from sources.extract import extract, pipeline_for
from tests.hotel import SavedHotel
from warehouse.db import opened
from warehouse.staging import stage_source

D1, D2, D3 = date(2026, 3, 10), date(2026, 3, 11), date(2026, 3, 12)


def reclassify_late(hotel) -> None:
    """On D2's morning the restaurant turns the D1 food ticket LATE-FIX into drinks (another VAT rate)."""
    hotel.add_charge("LATE-FIX", hotel.local(D1, 20), amount="40.00", category="BEVERAGE", vat_rate="20.00",
                     updated=hotel.local(D2, 10))


def late_rows(hotel) -> list[dict]:
    import csv
    import io

    content = hotel.export_bytes().get("journal-demo-2026-03-10_2.csv", b"")
    return list(csv.DictReader(io.StringIO(content.decode())))


def test_a_run_that_died_after_extracting_is_staged_and_closed_by_the_next_one(late_fix_hotel):
    hotel = late_fix_hotel  # the LATE-FIX food ticket of D1, D1 closed and exported
    reclassify_late(hotel)
    hotel.morning_after(D2)
    extract(hotel.tenant, "pms", updated_since=datetime(2026, 3, 3, tzinfo=UTC))  # ... and the worker died
    summary = hotel.close_day(D2)  # its own extraction finds nothing new: the cursor moved on
    assert summary.journals[0].reversed == ["demo-pms-20260310-v1"]
    assert {r["entry_id"] for r in late_rows(hotel)} == {"demo-pms-20260310-v1-R", "demo-pms-20260310-v2"}


def test_a_run_that_died_after_staging_still_re_closes_the_days_it_touched(late_fix_hotel):
    hotel = late_fix_hotel  # the LATE-FIX food ticket of D1, D1 closed and exported
    reclassify_late(hotel)
    hotel.morning_after(D2)
    loaded = extract(hotel.tenant, "pms", updated_since=datetime(2026, 3, 3, tzinfo=UTC))
    with opened(hotel.tenant.duckdb_path()) as con:
        stage_source(con, hotel.tenant, "pms", loaded.load_ids, run_id="died", now=datetime.now(UTC))
    assert D1 in hotel.sql("SELECT business_date FROM pending_day").get_column("business_date").to_list()
    summary = hotel.close_day(D2)
    assert summary.journals[0].reversed == ["demo-pms-20260310-v1"]
    assert hotel.sql("SELECT count(*) FROM pending_day").item() == 0


def test_a_load_package_left_pending_is_finished_and_the_window_still_extracted(hotel):
    hotel.morning_after(D3)
    pipeline = pipeline_for(hotel.tenant, "pms")
    pipeline.extract(demo_pms_source(hotel.server.url, page_size=500, report=ExtractReport(),
                                     updated_since=datetime(2026, 3, 2, tzinfo=UTC)))
    assert pipeline.has_pending_data  # a run died between dlt's extract and load steps
    hotel.backfill(D1, D3)
    days = hotel.sql("SELECT DISTINCT business_date FROM journal_entry ORDER BY 1").get_column("business_date")
    assert days.to_list() == [D1, D2, D3]
    assert all(len(rows) > 1 for name, rows in hotel.export_bytes().items() if name.endswith(".csv"))


def test_a_refused_new_version_without_a_usable_day_holds_back_the_day_it_had(hotel):
    hotel.add_charge("MOVED", hotel.local(D1, 20), amount="500.00")
    hotel.close_day(D1)
    hotel.add_charge("MOVED", hotel.local(D1, 20), amount="500.00", posted_at="2026-03-10T20:00:00",
                     updated=hotel.local(D2, 10))
    summary = hotel.close_day(D2)
    assert ("pms", D1) in summary.held_back
    reject = hotel.sql("SELECT record_id, column_name, value, business_date FROM rejects").row(0)
    assert reject == ("MOVED", "posted_at", "2026-03-10T20:00:00", D1)
    assert late_rows(hotel) == []  # nothing of D1 goes out without its charge

    hotel.add_charge("MOVED", hotel.local(D1, 20), amount="500.00", updated=hotel.local(D3, 10))
    summary = hotel.close_day(D3)
    assert summary.held_back == []
    entries = hotel.sql("SELECT entry_id FROM journal_entry WHERE business_date = ?", [D1])
    assert entries.get_column("entry_id").to_list() == ["demo-pms-20260310-v1"]  # the drafts went away
    assert late_rows(hotel) == []


def minibar_ticket(hotel) -> None:
    """A minibar ticket of D1 at 5.5 % VAT, a rate the demo tenant has no code for."""
    hotel.add_charge("MINI", hotel.local(D1, 22), amount="10.55", category="MINIBAR", vat_rate="5.50")


@pytest.fixture(scope="module")
def saved_minibar(tmp_path_factory) -> SavedHotel:
    return SavedHotel(tmp_path_factory.mktemp("minibar"), minibar_ticket, [D1])


@pytest.fixture
def minibar_hotel(saved_minibar):
    """D1 closed with the MINI ticket rejected (a fresh copy per test)."""
    with saved_minibar.copy() as hotel:
        yield hotel


def test_a_day_held_back_by_the_mapping_is_released_once_the_mapping_is_fixed(minibar_hotel):
    hotel = minibar_hotel
    assert hotel.close_day(D2).held_back == [("pms", D1)]

    def add_reduced_rate(document):
        document["accounts"].append({"number": "445705", "name": "TVA collectée 5,5 %", "type": "liability"})
        document["accounts"].append({"number": "707100", "name": "Minibar", "type": "income"})
        document["vat_codes"].append({"code": "V55", "rate": "5.50", "account": "445705"})
        document["mapping"]["revenue"]["MINIBAR"] = {"account": "707100", "vat_code": "V55"}

    hotel.reconfigure(add_reduced_rate)
    summary = hotel.close_day(D3)
    assert summary.held_back == [] and summary.final_state().name == "Completed"
    minibar = hotel.sql("SELECT credit FROM journal_line WHERE account = '707100'").item()
    assert str(minibar) == "10.00"
    assert {r["entry_id"] for r in _rows(hotel, "journal-demo-2026-03-10_2.csv")} == {"demo-pms-20260310-v1"}


def test_a_problem_that_comes_back_after_being_resolved_is_a_new_reject_row(minibar_hotel):
    hotel = minibar_hotel

    def reduced_rate(document):
        document["vat_codes"].append({"code": "V55", "rate": "5.50", "account": "445710"})

    hotel.reconfigure(reduced_rate)
    hotel.close_day(D2)  # MINIBAR now posts (to suspense, with its VAT): the reject is resolved
    hotel.reconfigure(lambda document: document["vat_codes"].pop())
    hotel.close_day(D1)  # D1 closed again without that VAT code: the same problem, again
    rows = hotel.sql("SELECT reject_id, problem_id, run_id, resolved_run_id FROM rejects "
                     "ORDER BY rejected_at").rows()
    assert len(rows) == 2 and rows[0][0] != rows[1][0] and rows[0][1] == rows[1][1]
    assert rows[0][3] == "test-2026-03-11"  # the first occurrence keeps its history
    assert rows[1][3] is None  # open again


def _rows(hotel, name: str) -> list[dict]:
    import csv
    import io

    return list(csv.DictReader(io.StringIO(hotel.export_bytes()[name].decode())))


def test_rejects_keep_the_record_as_delivered(hotel):
    hotel.add_charge("KEEP", hotel.local(D1, 12), amount="9.999", note="from terminal 3")
    hotel.close_day(D1)
    payload = json.loads(hotel.sql("SELECT payload FROM rejects").item())
    assert json.loads(payload["lf_extra"]) == {"note": "from terminal 3"}
    assert json.loads(payload["lf_invalid"])["amount"]["value"] == "9.999"
