"""The demo PMS: deterministic data, an HTTP API that pages and filters correctly, and a dlt
source that loads it exactly once, refusing inexact values instead of rounding them."""

import json
from datetime import UTC, date, datetime

import httpx
import pytest

from sources.demo_pms.generator import HotelSpec, generate, generate_day, versions
from sources.demo_pms.server import DemoPmsServer, PmsStore
from sources.extract import ExtractError, extract
from warehouse.db import opened, query

SPEC = HotelSpec(seed=7, timezone="Europe/Paris", history_start=date(2026, 3, 1), history_end=date(2026, 3, 10),
                 rooms=10)


def test_the_same_seed_gives_the_same_hotel():
    assert generate(SPEC) == generate(SPEC)
    other = HotelSpec(**{**SPEC.__dict__, "seed": 8})
    assert generate(other) != generate(SPEC)


def test_a_window_of_history_is_the_same_whichever_range_is_generated():
    longer = HotelSpec(**{**SPEC.__dict__, "history_end": date(2026, 4, 30)})
    short_ids = {r["id"] for r in generate(SPEC)[0]}
    long_ids = {r["id"] for r in generate(longer)[0]}
    assert short_ids <= long_ids
    assert generate_day(SPEC, date(2026, 3, 5)) == generate_day(longer, date(2026, 3, 5))


def test_the_hotel_has_every_case_the_journal_must_handle():
    charges, payments = generate(HotelSpec(**{**SPEC.__dict__, "history_end": date(2026, 4, 30), "rooms": 30}))
    categories = {r["category"] for r in charges}
    methods = {(r["kind"], r["method"]) for r in payments}
    assert {"ROOM", "BREAKFAST", "FOOD", "BEVERAGE", "SPA", "CITY_TAX", "CANCEL_FEE"} <= categories
    assert {("payment", "CASH"), ("payment", "CARD"), ("payment", "BANK_TRANSFER"), ("payment", "CITY_LEDGER"),
            ("deposit", "CARD"), ("payment", "DEPOSIT")} <= methods
    assert any(float(r["amount"]) < 0 for r in payments if r["kind"] == "deposit")  # refunded deposit
    assert any(float(r["amount"]) < 0 for r in payments if r["kind"] == "payment")  # card refund
    assert any(v["status"] == "void" for r in charges for v in versions(r))
    late = [r for r in charges if r.get("_versions") and r["_versions"][-1]["updated_at"][:10] > r["posted_at"][:10]]
    assert late, "corrections of past days"


@pytest.fixture
def served():
    store = PmsStore.from_spec(SPEC)
    store.set_clock(datetime(2026, 3, 20, tzinfo=UTC))
    with DemoPmsServer(store) as server:
        yield store, server


def fetch_all(server, resource: str, **params) -> list[dict]:
    records, cursor = [], None
    with httpx.Client(base_url=server.url) as client:
        while True:
            page = client.get(f"/{resource}", params={**params, **({"cursor": cursor} if cursor else {})}).json()
            records += page["data"]
            cursor = page["next_cursor"]
            if not cursor:
                return records


def test_pages_cover_every_record_once_in_update_order(served):
    store, server = served
    records = fetch_all(server, "charges", limit=37)
    assert len(records) == len({r["id"] for r in records}) == len(store.current("charges", store.clock())[1])
    keys = [(r["updated_at"], r["id"]) for r in records]
    assert keys == sorted(keys)


def test_updated_since_and_posting_window_filter(served):
    _, server = served
    since = fetch_all(server, "payments", updated_since="2026-03-08T00:00:00Z")
    assert since and all(r["updated_at"] >= "2026-03-08T00:00:00Z" for r in since)
    window = fetch_all(server, "charges", posted_from="2026-03-05T03:00:00Z", posted_to="2026-03-06T03:00:00Z",
                       limit=50)
    assert window and all("2026-03-05T03:00:00Z" <= r["posted_at"] < "2026-03-06T03:00:00Z" for r in window)


def test_the_clock_hides_what_has_not_happened_yet(served):
    store, server = served
    store.set_clock(datetime(2026, 3, 4, 5, 0, tzinfo=UTC))
    records = fetch_all(server, "charges")
    assert max(r["updated_at"] for r in records) <= "2026-03-04T05:00:00Z"


def test_bad_parameters_get_a_400_that_says_why(served):
    _, server = served
    with httpx.Client(base_url=server.url) as client:
        reply = client.get("/charges", params={"updated_since": "yesterday"})
        assert reply.status_code == 400 and "updated_since" in reply.json()["error"]
        assert client.get("/charges", params={"limit": 0}).status_code == 400
        assert client.get("/rooms").status_code == 404


# --- the dlt source, into a real DuckDB file ---

@pytest.fixture
def tenant(hotel):
    return hotel.tenant


def raw(hotel, sql: str):
    with opened(hotel.tenant.duckdb_path()) as con:
        return query(con, sql)


def test_incremental_extraction_loads_once_and_then_only_changes(hotel):
    hotel.morning_after(date(2026, 3, 10))
    since = datetime(2026, 3, 1, tzinfo=UTC)
    first = extract(hotel.tenant, "pms", updated_since=since)
    assert first.rows > 100 and first.load_ids
    again = extract(hotel.tenant, "pms", updated_since=since)
    assert again.rows == 0 and again.load_ids == []
    hotel.morning_after(date(2026, 3, 11))
    later = extract(hotel.tenant, "pms", updated_since=since)
    assert 0 < later.rows < first.rows
    counts = raw(hotel, "SELECT count(*) AS n, count(DISTINCT id || lf_record_hash) AS d FROM raw_pms.charges")
    assert counts.row(0) == (counts.item(0, "d"), counts.item(0, "d"))


def test_money_is_exact_in_duckdb_and_inexact_values_are_flagged_not_rounded(hotel):
    moment = hotel.local(date(2026, 3, 9), 20)
    hotel.add_charge("EXACT", moment, amount="1234567.89")
    hotel.add_charge("ROUNDED?", moment, amount="12.345")
    hotel.add_charge("COMMA", moment, amount="12,50")
    hotel.morning_after(date(2026, 3, 9))
    extract(hotel.tenant, "pms", updated_since=datetime(2026, 3, 9, tzinfo=UTC))
    rows = {r[0]: r[1:] for r in raw(hotel, "SELECT id, amount, lf_invalid FROM raw_pms.charges "
                                            "WHERE id IN ('EXACT', 'ROUNDED?', 'COMMA')").rows()}
    assert str(rows["EXACT"][0]) == "1234567.89"
    assert rows["ROUNDED?"][0] is None and "12.345" in rows["ROUNDED?"][1]
    assert rows["COMMA"][0] is None and json.loads(rows["COMMA"][1])["amount"]["value"] == "12,50"
    column = raw(hotel, "SELECT data_type FROM information_schema.columns WHERE table_schema = 'raw_pms' "
                        "AND table_name = 'charges' AND column_name = 'amount'").item()
    assert column == "DECIMAL(18,2)"


def test_a_malformed_update_time_does_not_move_the_cursor(hotel):
    moment = hotel.local(date(2026, 3, 9), 20)
    hotel.store.add("charges", {"id": "NOTIME", "amount": "5.00", "currency": "EUR", "category": "FOOD",
                                "vat_rate": "10.00", "status": "posted", "posted_at": moment.isoformat(),
                                "updated_at": "yesterday"}, visible_from=moment)
    hotel.morning_after(date(2026, 3, 9))
    result = extract(hotel.tenant, "pms", updated_since=datetime(2026, 3, 9, tzinfo=UTC))
    assert result.rows > 0
    flagged = raw(hotel, "SELECT lf_invalid FROM raw_pms.charges WHERE id = 'NOTIME'").item()
    assert "yesterday" in flagged
    # The next run still asks from the newest *valid* time, not from garbage.
    hotel.morning_after(date(2026, 3, 10))
    assert extract(hotel.tenant, "pms", updated_since=datetime(2026, 3, 9, tzinfo=UTC)).rows > 0


def test_a_record_delivered_twice_is_loaded_once_and_reported(hotel):
    moment = hotel.local(date(2026, 3, 9), 20)
    record = hotel.add_charge("TWICE", moment, amount="7.00")
    hotel.store.also_deliver["TWICE"] = [record]
    hotel.morning_after(date(2026, 3, 9))
    result = extract(hotel.tenant, "pms", updated_since=datetime(2026, 3, 9, tzinfo=UTC))
    assert raw(hotel, "SELECT count(*) FROM raw_pms.charges WHERE id = 'TWICE'").item() == 1
    assert ("charges", "TWICE", 2) in result.duplicates


def test_an_unreachable_pms_is_a_clear_error_and_loads_nothing(hotel):
    hotel.stop()
    with pytest.raises(ExtractError, match=r"source pms \(http://127\.0\.0\.1:\d+/api/v1\)"):
        extract(hotel.tenant, "pms", updated_since=datetime(2026, 3, 9, tzinfo=UTC))
    assert not hotel.tenant.duckdb_path().exists() or raw(
        hotel, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw_pms'").item() == 0


def test_a_pms_answering_garbage_is_a_clear_error(tmp_path):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from tests.hotel import Hotel

    hotel = Hotel(tmp_path)
    hotel.stop()
    import uvicorn  # a broken PMS: HTML where JSON should be

    app = Starlette(routes=[Route("/api/v1/{r}", lambda request: PlainTextResponse("<html>oops</html>"))])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=hotel.server.port, log_level="error"))
    import threading

    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        pass
    try:
        with pytest.raises(ExtractError, match="extract failed"):
            extract(hotel.tenant, "pms", updated_since=datetime(2026, 3, 9, tzinfo=UTC))
    finally:
        server.should_exit = True
        thread.join()
