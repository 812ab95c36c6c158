"""PayPal's transaction search as a dlt source, against a stateful fake checked by PayPal's own
description: windows of at most 31 days, pages, tokens that run out, 429s, exact money, and
withdrawals that become expected payouts."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import polars as pl
import pytest

from schemas.money import MoneyError
from schemas.tenant import PACKAGED_TENANTS, parse_tenant
from sources.extract import ExtractError, extract
from sources.paypal import DATA_LAG, parse_amount, raw_row, windows
from sources.paypal.fake import CLIENT_ID, CLIENT_SECRET, FakePaypalServer, Fault, PaypalStore, transaction
from transforms.stage_paypal import stage_paypal as stage_frame
from warehouse.db import opened, query
from warehouse.stage_paypal import stage_paypal

NOW = datetime.now(UTC)
BANK = "BE68539007547034"


@pytest.fixture(scope="module")
def server(shared_dir):
    with FakePaypalServer(PaypalStore()) as running:
        yield running


@pytest.fixture
def paypal(server, tmp_path, monkeypatch):
    """A fresh account in the running fake, and a tenant whose only source is it."""
    server.store = PaypalStore.demo(NOW)
    monkeypatch.setenv("LF_TEST_PAYPAL_ID", CLIENT_ID)
    monkeypatch.setenv("LF_TEST_PAYPAL_SECRET", CLIENT_SECRET)
    document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
    document.update(data_dir=str(tmp_path / "data"), destinations={})
    document.pop("reconciliation", None)
    document["sources"] = {"paypal": {"type": "paypal", "base_url": server.url, "page_size": 20,
                                      "client_id_env": "LF_TEST_PAYPAL_ID",
                                      "client_secret_env": "LF_TEST_PAYPAL_SECRET", "payout_bank_account": BANK}}
    return server.store, parse_tenant(document, "test tenant")


def store_url(paypal) -> str:
    return paypal[1].sources["paypal"].base_url


def raw_transactions(tenant) -> pl.DataFrame:
    with opened(tenant.duckdb_path()) as con:
        return query(con, "SELECT * FROM raw_paypal.transactions ORDER BY id, lf_record_hash")


def staged(tenant, result, run_id="run-1"):
    with opened(tenant.duckdb_path()) as con:
        outcome = stage_paypal(con, tenant, "paypal", result.load_ids, run_id=run_id, now=NOW)
        items = query(con, "SELECT * FROM open_item ORDER BY item_id")
        rejects = query(con, "SELECT * FROM rejects WHERE resolved_run_id IS NULL ORDER BY record_id, column_name")
    return outcome, items, rejects


def expected_ids(store, start, end) -> set[str]:
    return {t["transaction_info"]["transaction_id"] for t in store.transactions
            if start <= datetime.fromisoformat(t["transaction_info"]["transaction_initiation_date"]) < end}


# --- pure parts -------------------------------------------------------------------------------

def test_windows_never_span_more_than_31_days_and_cover_the_period():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    cuts = windows(start, start + timedelta(days=70))
    assert [b - a for a, b in cuts] == [timedelta(days=31), timedelta(days=31), timedelta(days=8)]
    assert all(cuts[i][1] == cuts[i + 1][0] for i in range(len(cuts) - 1))
    assert windows(start, start) == []


def test_money_is_exact_and_never_has_more_decimals_than_its_currency():
    assert parse_amount({"currency_code": "EUR", "value": "-1234.50"}) == (Decimal("-1234.50"), "EUR")
    assert parse_amount({"currency_code": "JPY", "value": "1500"}) == (Decimal("1500"), "JPY")
    for bad, why in [({"currency_code": "JPY", "value": "1500.5"}, "JPY has 0"),
                     ({"currency_code": "EUR", "value": "1.005"}, "EUR has 2"),
                     ({"currency_code": "EUR", "value": 12.5}, "not a decimal string"),
                     ({"currency_code": "XXY", "value": "1.00"}, "ISO 4217"),
                     ({"currency_code": "EUR", "value": "1,00"}, "not a decimal number")]:
        with pytest.raises(MoneyError, match=why):
            parse_amount(bad)


def test_a_bad_field_is_described_not_rounded():
    detail = transaction("odd", NOW - timedelta(days=2), "T0400", "-10.005")
    row = raw_row(detail)
    assert row["amount"] is None and row["initiated_at"] == (NOW - timedelta(days=2)).replace(microsecond=0)
    problems = json.loads(row["lf_invalid"])
    assert "3 decimals" in problems["transaction_info.transaction_amount"]["reason"]


# --- against the fake -------------------------------------------------------------------------

def test_incremental_run_reads_up_to_now_minus_the_lag_and_a_rerun_adds_nothing(paypal):
    store, tenant = paypal
    since = NOW - timedelta(days=10)
    first = extract(tenant, "paypal", updated_since=since)
    assert set(raw_transactions(tenant)["id"]) == expected_ids(store, since, NOW - DATA_LAG)
    assert first.row_counts["transactions"] == len(expected_ids(store, since, NOW - DATA_LAG))
    too_recent = next(t for t in store.transactions if "sale-too-recent" in json.dumps(t))
    assert too_recent["transaction_info"]["transaction_id"] not in set(raw_transactions(tenant)["id"])
    assert all(datetime.fromisoformat(s["end_date"]) <= datetime.now(UTC) - DATA_LAG for s in store.searches())
    again = extract(tenant, "paypal", updated_since=since)
    assert again.rows == 0 and again.load_ids == []
    assert raw_transactions(tenant).height == first.rows
    assert store.spec_violations == []


def test_a_long_backfill_is_split_into_windows_of_at_most_31_days_read_page_by_page(paypal):
    store, tenant = paypal
    window = (NOW - timedelta(days=68), NOW - timedelta(days=1))
    extract(tenant, "paypal", posted_window=window)
    searches = store.searches()
    windows_asked = sorted({(s["start_date"], s["end_date"]) for s in searches})
    spans = [datetime.fromisoformat(b) - datetime.fromisoformat(a) for a, b in windows_asked]
    assert len(windows_asked) == 3 and max(spans) <= timedelta(days=31)
    for start, end in windows_asked:
        pages = [int(s["page"]) for s in searches if (s["start_date"], s["end_date"]) == (start, end)]
        assert pages == list(range(1, max(pages) + 1))
    assert max(int(s["page"]) for s in searches) >= 3
    assert all(s["fields"] == "all" and s["page_size"] == "20" for s in searches)
    assert set(raw_transactions(tenant)["id"]) == expected_ids(store, *window)
    assert raw_transactions(tenant).height == len(expected_ids(store, *window))
    assert store.spec_violations == []


def test_overlapping_backfills_store_each_transaction_once(paypal):
    store, tenant = paypal
    extract(tenant, "paypal", posted_window=(NOW - timedelta(days=30), NOW - timedelta(days=10)))
    extract(tenant, "paypal", posted_window=(NOW - timedelta(days=20), NOW - timedelta(days=2)))
    rows = raw_transactions(tenant)
    assert rows.height == rows["id"].n_unique() == len(expected_ids(store, NOW - timedelta(days=30),
                                                                   NOW - timedelta(days=2)))


def test_429s_a_503_and_a_token_running_out_mid_run_still_load_everything_and_log_no_secret(paypal, monkeypatch,
                                                                                         tmp_path):
    store, tenant = paypal
    log = tmp_path / "http.jsonl"
    monkeypatch.setenv("LEDGERFLOW_HTTP_LOG", str(log))
    store.faults += [Fault(429, "0", "/v1/reporting/transactions", times=2), Fault(503, "0", "page=3")]
    store.token_calls = 2
    window = (NOW - timedelta(days=30), NOW - timedelta(days=1))
    extract(tenant, "paypal", posted_window=window)
    assert raw_transactions(tenant).height == len(expected_ids(store, *window))
    assert store.faults == []
    answered = store.searches()
    pages = max(int(s["page"]) for s in answered)
    # 2 throttled + 1 failed + 1 refused token on top of one call a page
    assert pages >= 3 and len(answered) == pages + 4 and store.token_requests() == 2
    assert store.spec_violations == []
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum("/v1/oauth2/token" in e["url"] for e in entries) == 2
    assert all(e["headers"].get("Authorization") == "***" for e in entries)
    assert CLIENT_SECRET not in log.read_text() and "A21AA" not in log.read_text()  # no secret, no token


def test_a_failed_run_loads_nothing_and_the_next_loads_everything_once(paypal):
    store, tenant = paypal
    store.faults.append(Fault(400, None, "page=2"))
    window = (NOW - timedelta(days=30), NOW - timedelta(days=1))
    with pytest.raises(ExtractError, match="PayPal transaction search .*'page': 2.* answered 400 Request is not well-formed"):
        extract(tenant, "paypal", posted_window=window)
    with opened(tenant.duckdb_path()) as con:
        assert query(con, "SELECT count(*) AS n FROM information_schema.tables "
                          "WHERE table_schema = 'raw_paypal' AND table_name = 'transactions'")["n"][0] == 0
    extract(tenant, "paypal", posted_window=window)
    rows = raw_transactions(tenant)
    assert rows.height == rows["id"].n_unique() == len(expected_ids(store, *window))


def test_refused_credentials_name_the_variables(paypal, monkeypatch):
    _, tenant = paypal
    monkeypatch.setenv("LF_TEST_PAYPAL_SECRET", "wrong")
    with pytest.raises(ExtractError, match="LF_TEST_PAYPAL_ID and LF_TEST_PAYPAL_SECRET.*401"):
        extract(tenant, "paypal", updated_since=NOW - timedelta(days=2))
    monkeypatch.delenv("LF_TEST_PAYPAL_SECRET")
    with pytest.raises(ExtractError, match="set the environment variable.*LF_TEST_PAYPAL_SECRET"):
        extract(tenant, "paypal", updated_since=NOW - timedelta(days=2))


def test_the_fake_refuses_what_paypal_refuses(paypal):
    store, _ = paypal
    with httpx.Client(base_url=store_url(paypal)) as client:
        token = client.post("/v1/oauth2/token", auth=(CLIENT_ID, CLIENT_SECRET),
                            data={"grant_type": "client_credentials"}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        too_long = client.get("/v1/reporting/transactions", headers=headers, params={
            "start_date": "2026-01-01T00:00:00Z", "end_date": "2026-02-15T00:00:00Z"})
        assert too_long.status_code == 400 and too_long.json()["name"] == "INVALID_REQUEST"
        assert too_long.json()["details"][0]["field"] == "end_date"
        too_big = client.get("/v1/reporting/transactions", headers=headers, params={
            "start_date": "2026-01-01T00:00:00Z", "end_date": "2026-01-15T00:00:00Z", "page_size": 501})
        assert too_big.status_code == 400 and "maximum of 500" in store.spec_violations[0]
        assert client.get("/v1/reporting/transactions", params={
            "start_date": "2026-01-01T00:00:00Z", "end_date": "2026-01-15T00:00:00Z"}).status_code == 401


def test_a_window_older_than_three_years_is_refused_before_asking(paypal):
    store, tenant = paypal
    with pytest.raises(ExtractError, match="last three years"):
        extract(tenant, "paypal", posted_window=(NOW - timedelta(days=1200), NOW - timedelta(days=1190)))
    assert store.searches() == []


def test_withdrawals_become_expected_payouts_and_undone_ones_expect_nothing(paypal):
    store, tenant = paypal
    window = (NOW - timedelta(days=68), NOW - timedelta(days=1))
    result = extract(tenant, "paypal", posted_window=window)
    outcome, items, rejects = staged(tenant, result)
    # The demo's withdrawals fall at fixed hours of the day and NOW is the clock's: only those in the window.
    withdrawals = {t["transaction_info"]["transaction_id"]: t["transaction_info"] for t in store.withdrawals()
                   if window[0] <= datetime.fromisoformat(t["transaction_info"]["transaction_initiation_date"])
                   < window[1]}
    assert outcome.items == items.height == len(withdrawals) and rejects.is_empty()
    for item in items.iter_rows(named=True):
        info = withdrawals[item["document_number"]]
        assert item["item_id"] == f"paypal:{item['document_number']}" == f"paypal:{item['settlement_ref']}"
        assert (item["kind"], item["partner_name"], item["bank_account"], item["currency"]) == (
            "payout", "PayPal", BANK, "EUR")
        assert item["issue_date"] == datetime.fromisoformat(info["transaction_initiation_date"]).astimezone(UTC).date()
        expected = Decimal(0) if info["transaction_status"] in ("V", "D") else -Decimal(info["transaction_amount"]["value"])
        assert item["amount_open"] == expected
    assert {withdrawals[d]["transaction_status"] for d in items.filter(pl.col("amount_open") == 0)["document_number"]} \
        == {"V", "D"}
    again, items_again, _ = staged(tenant, result, run_id="run-2")
    assert items_again.equals(items)


def test_an_invalid_record_is_quarantined_and_the_rest_goes_on(paypal):
    store, tenant = paypal
    day = NOW - timedelta(days=5)
    bad = store.add(transaction("bad-withdrawal", day, "T0400", "-250.999"))
    store.add(transaction("bad-date", day, "T0006", "10.00"))["transaction_info"]["transaction_updated_date"] = "soon"
    positive = store.add(transaction("odd-withdrawal", day, "T0403", "80.00"))
    result = extract(tenant, "paypal", updated_since=NOW - timedelta(days=8))
    _, items, rejects = staged(tenant, result)
    by_record = {r["record_id"]: r for r in rejects.iter_rows(named=True)}
    bad_id, positive_id = bad["transaction_info"]["transaction_id"], positive["transaction_info"]["transaction_id"]
    assert by_record[bad_id]["column_name"] == "transaction_info.transaction_amount"
    assert "-250.999" in by_record[bad_id]["value"] and "3 decimals" in by_record[bad_id]["reason"]
    assert by_record[positive_id]["value"] == "80.00" and "must not be positive" in by_record[positive_id]["reason"]
    assert any(r["column_name"] == "transaction_info.transaction_updated_date" and r["value"] == "soon"
               for r in by_record.values())
    assert len(by_record) == 3
    assert {f"paypal:{bad_id}", f"paypal:{positive_id}"}.isdisjoint(set(items["item_id"]))
    good = {t["transaction_info"]["transaction_id"] for t in store.withdrawals()} - {bad_id, positive_id}
    assert set(items["document_number"]) == good & expected_ids(store, NOW - timedelta(days=8), NOW)


def test_staging_conflicting_versions_rejects_both():
    one = raw_row(transaction("w", NOW - timedelta(days=3), "T0400", "-10.00"))
    two = raw_row(transaction("w", NOW - timedelta(days=3), "T0400", "-11.00"))
    frame = pl.DataFrame([one, two])
    result = stage_frame(frame, source="paypal", bank_account=None)
    assert result.items.is_empty() and result.rejects.height == 2
    assert set(result.rejects["column_name"]) == {"lf_record_hash"}


def test_the_fees_paypal_kept_are_booked_per_day_against_the_clearing_account(server, tmp_path, monkeypatch):
    """Withdrawals arrive net of PayPal's fees: each day's fees leave the clearing account
    ([reconciliation.accounts] payout) for the processor-fee account, once, whatever the reruns."""
    store = server.store = PaypalStore.demo(NOW)
    monkeypatch.setenv("LF_TEST_PAYPAL_ID", CLIENT_ID)
    monkeypatch.setenv("LF_TEST_PAYPAL_SECRET", CLIENT_SECRET)
    document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
    document.update(data_dir=str(tmp_path / "data"), destinations={})
    document["sources"] = {"paypal": {"type": "paypal", "base_url": server.url, "page_size": 50,
                                      "client_id_env": "LF_TEST_PAYPAL_ID", "client_secret_env": "LF_TEST_PAYPAL_SECRET"}}
    tenant = parse_tenant(document, "test tenant")
    window = (NOW - timedelta(days=20), NOW - timedelta(days=1))
    staged(tenant, extract(tenant, "paypal", posted_window=window))
    expected: dict = {}
    for detail in store.transactions:
        info = detail["transaction_info"]
        moment = datetime.fromisoformat(info["transaction_initiation_date"])
        if "fee_amount" in info and info["transaction_status"] not in ("V", "D") and window[0] <= moment < window[1]:
            day = moment.astimezone(ZoneInfo("Europe/Paris")).date()
            expected[day] = expected.get(day, Decimal(0)) - Decimal(info["fee_amount"]["value"])
    with opened(tenant.duckdb_path()) as con:
        booked = query(con, "SELECT e.business_date, l.account, l.debit, l.credit FROM journal_line l JOIN journal_entry "
                            "e USING (entry_id) WHERE e.source = 'paypal' ORDER BY e.business_date, l.line_no").rows()
    assert expected and booked == [row for day, fee in sorted(expected.items()) if fee
                                   for row in ((day, "627000", fee, Decimal("0.00")), (day, "511200", Decimal("0.00"), fee))]
    staged(tenant, extract(tenant, "paypal", posted_window=window), run_id="run-2")
    with opened(tenant.duckdb_path()) as con:
        assert query(con, "SELECT count(*) AS n FROM journal_entry WHERE source = 'paypal'")["n"].item() == len(expected)
