"""Stripe: the list endpoints faked on 127.0.0.1 (checked against the official spec3.json), the dlt
source loading a real DuckDB file through ``sources.extract``, and payouts staged as open items."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from schemas.tenant import PACKAGED_TENANTS, ConfigError, parse_tenant
from sources.extract import ExtractError, extract
from sources.stripe import PAYOUT_SETTLING
from sources.stripe.fake import API_KEY, LISTS, SpecCheck, StripeServer, StripeStore, payout, unix
from transforms.stage_stripe import minor_to_money
from warehouse.db import opened, query
from warehouse.stage_stripe import stage_stripe

IBAN = "FR7630006000011234567890189"
NOW = datetime(2026, 3, 20, 6, tzinfo=UTC)
RAW_TABLES = ("balance_transactions", "charges", "refunds", "disputes", "payouts", "payout_transactions")


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


@pytest.fixture(scope="module")
def spec_path(shared_dir):
    return shared_dir / "specs" / "stripe" / "spec3.json"


@pytest.fixture(scope="module")
def server(spec_path):
    with StripeServer(StripeStore(spec_path=spec_path)) as running:
        yield running


@pytest.fixture
def stripe(server, spec_path, monkeypatch) -> StripeStore:
    """A fresh Stripe account per test; whatever the test did, every request conformed to the spec."""
    monkeypatch.setenv("STRIPE_API_KEY", API_KEY)
    server.store = StripeStore(spec_path=spec_path)
    yield server.store
    assert server.store.spec_violations == []


def make_tenant(tmp_path, server, **settings):
    document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
    document.update(data_dir=str(tmp_path / "data"), destinations={})
    document["sources"] = {"stripe": {"type": "stripe", "base_url": server.url, "page_size": 100,
                                      "payout_bank_account": IBAN, **settings}}
    return parse_tenant(document, "test tenant")


@pytest.fixture
def tenant(tmp_path, server):
    return make_tenant(tmp_path, server)


def run_source(tenant, *, since: datetime | None = None, window: tuple[datetime, datetime] | None = None,
               run_id: str = "run-1"):
    extracted = extract(tenant, "stripe", updated_since=since, posted_window=window)
    with opened(tenant.duckdb_path()) as con:
        staged = stage_stripe(con, tenant, "stripe", extracted.load_ids, run_id=run_id, now=NOW)
    return extracted, staged


def sql(tenant, text: str, params: list | None = None) -> pl.DataFrame:
    with opened(tenant.duckdb_path()) as con:
        return query(con, text, params)


def raw_counts(tenant) -> dict[str, int]:
    counts = dict(sql(tenant, "SELECT table_name, estimated_size FROM duckdb_tables() WHERE schema_name = "
                              "'raw_stripe'").rows())
    return {t: sql(tenant, f"SELECT count(*) AS n FROM raw_stripe.{t}")["n"][0] if t in counts else 0
            for t in RAW_TABLES}


def state(tenant) -> tuple:
    """Everything a run may change: raw rows, open items, rejects (resolved or not)."""
    return (raw_counts(tenant), sql(tenant, "SELECT * FROM open_item ORDER BY item_id").rows(),
            sql(tenant, "SELECT * EXCLUDE (rejected_at) FROM rejects ORDER BY reject_id").rows())


def a_week_of_business(store: StripeStore) -> dict:
    """Charges on three days (one of them malformed), a refund, a dispute, and a pending payout of
    the first day's takings."""
    first = [store.add_charge(2500, "eur", at(9, 10), fee=80), store.add_charge(4000, "eur", at(9, 15), fee=110)]
    second = store.add_charge(1200, "eur", at(10))
    store.add_charge(999, "eur", at(11))
    store.add_refund(second, 200, at(11, 9))
    store.add_dispute(first[0], at(12))
    store.put("charges", {**store.add_charge(700, "eur", at(12)), "amount": 7.5})
    paid_out = store.add_payout(at(11, 2), date(2026, 3, 13),
                                settles=[c["balance_transaction"] for c in first])
    return {"charges": first + [second], "payout": paid_out}


def test_a_daily_run_loads_every_list_page_by_page_and_a_second_run_adds_nothing(stripe, tmp_path, server):
    tenant = make_tenant(tmp_path, server, page_size=2)
    business = a_week_of_business(stripe)

    extracted, staged = run_source(tenant, since=at(8, 0))

    assert raw_counts(tenant) == {"balance_transactions": 7, "charges": 5, "refunds": 1, "disputes": 1,
                                  "payouts": 1, "payout_transactions": 3}
    pages = [dict(r.query).get("starting_after") for r in stripe.requests if r.path == "/v1/charges"]
    newest_first = sorted(stripe.objects["charges"], key=lambda i: (stripe.objects["charges"][i]["created"],
                                                                     i), reverse=True)
    assert pages == [None, newest_first[1], newest_first[3]]
    settled = sql(tenant, "SELECT payout, type, amount, fee, net FROM raw_stripe.payout_transactions "
                          "ORDER BY type, amount")
    assert settled.rows() == [(business["payout"]["id"], "charge", 2500, 80, 2420),
                              (business["payout"]["id"], "charge", 4000, 110, 3890),
                              (business["payout"]["id"], "payout", -6310, 0, -6310)]
    assert business["payout"]["amount"] == 6310 and staged.items == 1
    assert staged.rejects.select("table_name", "column_name", "value").rows() == [("charges", "amount", "7.5")]
    money = sql(tenant, "SELECT data_type FROM information_schema.columns WHERE table_schema = 'raw_stripe' "
                        "AND table_name = 'charges' AND column_name IN ('amount', 'created') ORDER BY column_name")
    assert money["data_type"].to_list() == ["BIGINT", "TIMESTAMP WITH TIME ZONE"]
    before = state(tenant)

    again, _ = run_source(tenant, since=at(8, 0), run_id="run-2")

    assert again.duplicates == []
    assert state(tenant) == before


def test_a_pending_payout_that_is_paid_or_fails_is_seen_by_the_next_daily_run(stripe, tenant):
    charges = [stripe.add_charge(10000, "eur", at(2)), stripe.add_charge(5000, "eur", at(2))]
    paid = stripe.add_payout(at(3), date(2026, 3, 6), settles=[charges[0]["balance_transaction"]])
    failed = stripe.add_payout(at(3), date(2026, 3, 6), settles=[charges[1]["balance_transaction"]])
    run_source(tenant, since=at(1, 0))
    stripe.update("payouts", paid["id"], status="paid")
    stripe.update("payouts", failed["id"], status="failed", failure_code="account_closed")

    # Six days after creation, beyond a three-day lookback on created: payouts are read by arrival date.
    since = at(9, 0) - timedelta(days=3)
    run_source(tenant, since=since, run_id="run-2")

    versions = sql(tenant, "SELECT id, status FROM raw_stripe.payouts ORDER BY id, _dlt_load_id")
    assert versions.rows() == sorted([(paid["id"], "pending"), (paid["id"], "paid"), (failed["id"], "pending"),
                                      (failed["id"], "failed")], key=lambda r: r[0])
    items = sql(tenant, "SELECT document_number, amount_open FROM open_item ORDER BY document_number")
    assert dict(items.rows()) == {paid["id"]: Decimal("100.00"), failed["id"]: Decimal("0.00")}
    asked = [r.query for r in stripe.requests if r.path == "/v1/payouts"][-1]
    assert ("arrival_date[gte]", str(unix(since - PAYOUT_SETTLING))) in asked


def test_backfill_windows_overlapping_or_arbitrary_never_duplicate(stripe, tenant):
    for day in range(1, 29, 3):
        charge = stripe.add_charge(1000 + day, "eur", at(day))
        stripe.add_payout(at(day, 20), date(2026, 3, day + 2), settles=[charge["balance_transaction"]],
                          status="paid")

    for number, window in enumerate([(at(5, 7), at(20, 13)), (at(1, 0), at(31, 0))]):
        run_source(tenant, window=window, run_id=f"backfill-{number}")

    counts = raw_counts(tenant)
    assert counts["charges"] == 10 and counts["payouts"] == 10 and counts["balance_transactions"] == 20
    assert counts["payout_transactions"] == 20
    for table in ("charges", "balance_transactions", "payouts", "payout_transactions"):
        assert sql(tenant, f"SELECT count(*) AS n FROM (SELECT DISTINCT id FROM raw_stripe.{table})")["n"][0] \
            == counts[table]
    assert sql(tenant, "SELECT count(*) AS n FROM open_item")["n"][0] == 10
    windowed = [dict(r.query) for r in stripe.requests if r.path == "/v1/charges"]
    assert {"created[gte]": str(unix(at(5, 7))), "created[lt]": str(unix(at(20, 13))), "limit": "100"} in windowed


def test_a_429_storm_without_retry_after_and_a_500_are_retried(stripe, server, tmp_path):
    tenant = make_tenant(tmp_path, server, retries=5, backoff_seconds=0.01)  # the waits as configured, short
    a_week_of_business(stripe)
    stripe.fail_next(429, 4)
    stripe.fail_next(500)

    run_source(tenant, since=at(8, 0))

    assert [r.status for r in stripe.requests[:6]] == [429, 429, 429, 429, 500, 200]
    assert raw_counts(tenant)["charges"] == 5


def test_an_expired_key_is_a_clear_error_and_loads_nothing(stripe, tenant, tmp_path, monkeypatch):
    a_week_of_business(stripe)
    log = tmp_path / "http.jsonl"
    monkeypatch.setenv("LEDGERFLOW_HTTP_LOG", str(log))
    stripe.revoke(API_KEY, after=3)  # mid-run: three lists were read already

    with pytest.raises(ExtractError, match=r"source stripe .*STRIPE_API_KEY.*expired"):
        extract(tenant, "stripe", updated_since=at(8, 0))

    assert [r.status for r in stripe.requests] == [200, 200, 200, 401]

    with opened(tenant.duckdb_path()) as con:
        assert query(con, "SELECT count(*) AS n FROM information_schema.tables "
                          "WHERE table_schema = 'raw_stripe' AND table_name NOT LIKE '_dlt%'")["n"][0] == 0
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert logged and all(entry["headers"]["Authorization"] == "***" for entry in logged)
    assert API_KEY not in log.read_text()
    # A new key: the next run loads everything, with nothing left over from the refused one.
    stripe.keys.add("rk_test_rotated")
    monkeypatch.setenv("STRIPE_API_KEY", "rk_test_rotated")
    run_source(tenant, since=at(8, 0))
    assert raw_counts(tenant)["charges"] == 5


def test_a_missing_key_variable_is_named(stripe, tenant, monkeypatch):
    monkeypatch.delenv("STRIPE_API_KEY")
    with pytest.raises(ExtractError, match="environment variable STRIPE_API_KEY .* is not set"):
        extract(tenant, "stripe", updated_since=at(8, 0))
    assert stripe.requests == []


def test_minor_units_become_exact_amounts_by_stripes_exponent():
    frame = pl.DataFrame({"amount": [1999, -5, 12345, 12340, 500, 1500],
                          "currency": ["eur", "eur", "jpy", "kwd", "isk", "ugx"]})
    amounts = frame.select(minor_to_money(pl.col("amount"), pl.col("currency")))["amount"].to_list()
    assert amounts == [Decimal("19.99"), Decimal("-0.05"), Decimal("12345.00"), Decimal("12.34"), Decimal("5.00"),
                       Decimal("1500.00")]


def test_payouts_become_open_items_and_invalid_records_are_quarantined_while_the_others_load(stripe, tmp_path,
                                                                                             server):
    tenant = make_tenant(tmp_path, server, account="acct_1LfConnected")
    charge = stripe.add_charge(25000, "eur", at(9))
    paid_out = stripe.add_payout(at(9, 22), date(2026, 3, 12), settles=[charge["balance_transaction"]],
                                 status="in_transit")
    in_yen = stripe.add_payout(at(9, 20), date(2026, 3, 11), amount=12345, currency="jpy")
    arrival = unix(date(2026, 3, 11))
    stripe.put("payouts", {**payout(id="po_bad_amount", amount="50.00", currency="eur", created=unix(at(9)),
                                    arrival_date=arrival), "automatic": False})
    stripe.put("payouts", payout(id="po_bad_currency", amount=700, currency="xyz", created=unix(at(9)),
                                 arrival_date=arrival))
    stripe.put("payouts", payout(id="po_third_decimal", amount=1235, currency="bhd", created=unix(at(9)),
                                 arrival_date=arrival))
    stripe.put("payouts", {k: v for k, v in payout(id="", amount=100, currency="eur", created=unix(at(9)),
                                                   arrival_date=arrival).items() if k != "id"})
    stripe.put("charges", {"id": "ch_bad_flag", "amount": 100, "currency": "eur", "created": unix(at(9)),
                           "paid": "yes"})

    _, staged = run_source(tenant, since=at(8, 0))

    items = sql(tenant, "SELECT * FROM open_item ORDER BY currency").to_dicts()
    assert items == [{"item_id": f"stripe:{paid_out['id']}", "kind": "payout", "document_number": paid_out["id"],
                      "issue_date": date(2026, 3, 12), "due_date": date(2026, 3, 12),
                      "amount_open": Decimal("250.00"), "currency": "EUR", "partner_name": "Stripe",
                      "partner_iban": None, "partner_id": None, "company_id": None, "bank_account": IBAN,
                      "structured_ref": None, "settlement_ref": paid_out["id"]},
                     {**items[1], "item_id": f"stripe:{in_yen['id']}", "amount_open": Decimal("12345.00"),
                      "currency": "JPY"}]
    rejects = sql(tenant, "SELECT table_name, record_id, column_name, value, reason, business_date FROM rejects "
                          "WHERE resolved_run_id IS NULL ORDER BY table_name, record_id")
    found = {(r[1], r[2]): (r[3], r[4]) for r in rejects.rows()}
    assert found[("po_bad_amount", "amount")] == ("'50.00'", "is not an integer amount in the currency's minor units")
    assert found[("po_bad_currency", "currency")] == ("xyz", "is not an ISO 4217 currency")
    assert found[("po_third_decimal", "amount")][1].startswith("has a third decimal")
    assert found[("ch_bad_flag", "paid")] == ("'yes'", "is not true or false")
    assert [r for r in found if r[0].startswith("(no id")] and staged.rejects.height == len(found) == 5
    assert set(rejects["business_date"]) == {date(2026, 3, 11), date(2026, 3, 9)}
    assert {r.headers.get("stripe-account") for r in stripe.requests} == {"acct_1LfConnected"}
    with pytest.raises(ConfigError, match="account"):
        make_tenant(tmp_path, server, account="1LfConnected")


def test_the_fakes_objects_have_the_fields_of_stripes_fixtures(stripe, spec_path):
    fixtures = json.loads((spec_path.parent / "fixtures3.json").read_text(encoding="utf-8"))["resources"]
    charge = stripe.add_charge(1000, "eur", at(9))
    stripe.add_refund(charge, 100, at(10))
    stripe.add_dispute(charge, at(10))
    stripe.add_payout(at(10), date(2026, 3, 12), settles=[charge["balance_transaction"]])

    for listing, kind in LISTS.items():
        for obj in stripe.objects[listing].values():
            assert set(obj) == set(fixtures[kind]), listing


def test_the_spec_check_names_what_stripe_does_not_declare(spec_path):
    check = SpecCheck(spec_path)
    bearer = {"authorization": "Bearer sk_test_x"}

    assert check.errors("GET", "/v1/payouts", [("arrival_date[gte]", "1"), ("limit", "3")], bearer) == []
    assert check.errors("GET", "/v1/charges", [("created", "1700000000"), ("expand[]", "data.customer")], bearer) == []
    assert check.errors("GET", "/v1/charges", [("updated[gte]", "1"), ("limit", "ten"), ("created[since]", "1"),
                                               ("customer[id]", "x")], {}) == [
        "GET /v1/charges: Authorization scheme '(none)' is not one of ['basic', 'bearer']",
        "GET /v1/charges: query parameter 'updated[gte]' is not declared",
        "GET /v1/charges: limit='ten' is not an integer",
        "GET /v1/charges: created[since]='1' has no key 'since' in the spec",
        "GET /v1/charges: customer[id]='x' uses brackets but the parameter is not a deepObject",
    ]
    assert check.errors("GET", "/v1/charged", [], bearer) == ["GET /v1/charged: no such operation in spec3.json"]
