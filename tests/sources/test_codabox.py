"""CodaBox: the Delivery API faked on 127.0.0.1, the dlt source loading a real DuckDB file,
acknowledgement only after a successful load, and the SODA payroll journal parser."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, date
from decimal import Decimal

import dlt
import duckdb
import httpx
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sources.codabox import (
    ENV_SOFTWARE_COMPANY,
    ENV_TOKEN,
    CodaboxAuthError,
    CodaboxError,
    acknowledge,
    codabox_source,
    load_codabox,
)
from sources.codabox.fake import (
    SOFTWARE_COMPANY,
    TOKEN,
    CodaboxServer,
    CodaboxStore,
    Fault,
    coda_file,
    payroll_lines,
    soda_file,
)
from sources.codabox.soda import SodaError, soda_built_lines, soda_journal_lines
from transforms.journal import BUILT_LINE_SCHEMA

BAKERY, GARAGE = "BE0477472701", "BE0403200393"


@pytest.fixture(scope="module")
def server():
    with CodaboxServer(CodaboxStore()) as running:
        yield running


@pytest.fixture
def store(server) -> CodaboxStore:
    """Each test starts from the demo office: two clients, a CODA, a SODA and an invoice each."""
    server.store = CodaboxStore.demo()
    return server.store


@pytest.fixture
def waits() -> list[float]:
    return []


def make_pipeline(tmp_path, name: str = "codabox"):
    destination = dlt.destinations.duckdb(str(tmp_path / "tenant.duckdb"))
    return dlt.pipeline(pipeline_name=f"test_{name}", destination=destination,
                        dataset_name="raw_codabox", pipelines_dir=str(tmp_path / "dlt" / name))


def load(pipeline, server, waits: list[float], **options):
    return load_codabox(pipeline, server.url, TOKEN, software_company=SOFTWARE_COMPANY, sleep=waits.append, **options)


def query(tmp_path, sql: str) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "tenant.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone='UTC'")
        return con.execute(sql).fetchall()


def all_ids(store: CodaboxStore) -> list[str]:
    return [d.feed_index for c in store.clients for d in c.feed]


# --- extraction --------------------------------------------------------------------------------

def test_the_office_feed_loads_every_document_of_every_client_then_acknowledges_it(store, server, tmp_path, waits):
    result = load(make_pipeline(tmp_path), server, waits)

    assert sorted(result.downloaded) == sorted(result.acknowledged) == sorted(all_ids(store))
    assert store.pending() == [] and not result.not_acknowledged and not result.parse_errors
    assert sorted(store.acks) == [(c.feed_id, c.feed[-1].feed_index) for c in store.clients]  # one PUT per feed
    documents = query(tmp_path, "SELECT id, client_vat, type, format, file_name, sha256, size, content, received_at "
                                "FROM raw_codabox.document ORDER BY received_at")
    assert [(d[1], d[2], d[3]) for d in documents] == [
        (BAKERY, "coda", "cod"), (BAKERY, "soda", "xml"), (BAKERY, "invoice", "xml"),
        (GARAGE, "coda", "cod"), (GARAGE, "soda", "xml"), (GARAGE, "invoice", "xml")]
    served = {d.feed_index: d for c in store.clients for d in c.feed}
    for doc_id, _, _, file_format, file_name, sha256, size, content, received_at in documents:
        name, body = served[doc_id].files[file_format]
        assert (file_name, bytes(content), size, sha256) == (name, body, len(body), hashlib.sha256(body).hexdigest())
        assert received_at.astimezone(UTC) == served[doc_id].created_at
    coda = bytes(documents[0][7]).decode("latin-1").splitlines()
    assert coda[0][0] == "0" and coda[-1][0] == "9"  # the raw CODA file, ready for the bank-file parser
    sums = query(tmp_path, "SELECT document_id, count(*), sum(debit), sum(credit) FROM raw_codabox.soda_line "
                           "GROUP BY ALL ORDER BY 1")
    assert [(n, debit == credit) for _, n, debit, credit in sums] == [(5, True), (5, True)]
    money_types = query(tmp_path, "SELECT data_type FROM information_schema.columns WHERE table_schema = "
                                  "'raw_codabox' AND table_name = 'soda_line' AND column_name IN ('debit', 'credit')")
    assert money_types == [("DECIMAL(18,2)",)] * 2


def test_one_client_is_chosen_by_its_vat_number_however_it_is_written(store, server, tmp_path, waits):
    result = load(make_pipeline(tmp_path), server, waits, vat_number="BE 0403.200.393")

    garage, bakery = store.client(GARAGE), store.client(BAKERY)
    assert sorted(result.downloaded) == sorted(d.feed_index for d in garage.feed)
    assert store.pending(garage) == [] and len(store.pending(bakery)) == 3
    assert query(tmp_path, "SELECT DISTINCT client_vat FROM raw_codabox.document") == [(GARAGE,)]
    with pytest.raises(CodaboxError, match=r"no client with VAT number '0999999999'.*BE0403200393, BE0477472701"):
        load(make_pipeline(tmp_path, "other"), server, waits, vat_number="0999999999")


def test_a_rerun_downloads_nothing_and_then_only_a_new_document(store, server, tmp_path, waits):
    pipeline = make_pipeline(tmp_path)
    load(pipeline, server, waits)
    downloads = len(store.downloads())

    again = load(pipeline, server, waits)
    assert again.downloaded == again.acknowledged == [] and len(store.downloads()) == downloads

    new = store.add_coda(store.client(GARAGE), iban="BE71096123456769", statement_no=13, day=date(2026, 3, 2),
                         old_balance=Decimal("2379.60"), movements=[(Decimal("-79.60"), "Fuel card")])
    third = load(pipeline, server, waits)
    assert third.downloaded == third.acknowledged == [new.feed_index]
    assert len(store.downloads()) == downloads + 1 and store.pending() == []
    assert query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM raw_codabox.document") == [(7, 7)]


def test_feed_pages_are_followed_without_acknowledging_between_them(store, server, tmp_path, waits):
    result = load(make_pipeline(tmp_path), server, waits, page_size=2)

    assert len(result.downloaded) == 6
    feed_reads = [path for method, path in store.requests if method == "GET" and "/delivery/feed/" in path]
    assert any("after=" in path for path in feed_reads)
    first_ack = next(i for i, (method, _) in enumerate(store.requests) if method == "PUT")
    assert all("/delivery/download/" not in path for _, path in store.requests[first_ack:])


# --- acknowledging only what was loaded --------------------------------------------------------

def test_the_source_alone_never_acknowledges_and_a_crash_before_the_ack_costs_no_duplicate(store, server, tmp_path,
                                                                                            waits):
    pipeline = make_pipeline(tmp_path)
    pipeline.run(codabox_source(server.url, TOKEN, software_company=SOFTWARE_COMPANY, sleep=waits.append))
    assert store.acks == [] and sorted(store.pending()) == sorted(all_ids(store))  # as if we died before the ack

    result = load(pipeline, server, waits)  # the feed delivers the same six documents again
    assert result.downloaded == [] and sorted(result.acknowledged) == sorted(all_ids(store))
    assert store.pending() == []
    assert query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM raw_codabox.document") == [(6, 6)]
    assert query(tmp_path, "SELECT count(*) FROM raw_codabox.soda_line") == [(10,)]


def test_without_the_pipeline_state_a_redelivered_document_merges_onto_itself(store, server, tmp_path, waits):
    make_pipeline(tmp_path, "first").run(codabox_source(server.url, TOKEN, software_company=SOFTWARE_COMPANY))
    result = load(make_pipeline(tmp_path, "second"), server, waits)  # another pipeline: no state, same tables

    assert len(result.downloaded) == 6 and store.pending() == []
    assert query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM raw_codabox.document") == [(6, 6)]
    assert query(tmp_path, "SELECT count(*) FROM raw_codabox.soda_line") == [(10,)]


def test_a_failed_run_acknowledges_nothing_and_the_next_run_loads_everything_once(store, server, tmp_path, waits):
    broken = store.client(GARAGE).feed[1].feed_index
    store.broken_downloads.add(broken)
    pipeline = make_pipeline(tmp_path)
    with pytest.raises(CodaboxError, match=rf"GET /delivery/download/{broken}/xml/: HTTP 500 .* 5 times"):
        load(pipeline, server, waits)
    assert waits == [0.5, 1.0, 2.0, 4.0]
    assert store.acks == [] and len(store.pending()) == 6

    store.broken_downloads.clear()
    result = load(pipeline, server, waits)
    assert len(result.downloaded) == len(result.acknowledged) == 6 and store.pending() == []
    assert query(tmp_path, "SELECT count(*), count(DISTINCT id) FROM raw_codabox.document") == [(6, 6)]


def test_acknowledging_stops_at_the_first_document_that_was_not_loaded(store, server):
    bakery = store.client(BAKERY)
    first, second, third = (d.feed_index for d in bakery.feed)

    done = acknowledge(server.url, TOKEN, [first, third], software_company=SOFTWARE_COMPANY)

    assert done == [first] and store.pending(bakery) == [second, third]
    assert store.acks == [(bakery.feed_id, first)]


def test_every_call_goes_to_the_audit_log_without_the_credentials(store, server, tmp_path, monkeypatch):
    log = tmp_path / "http.jsonl"
    monkeypatch.setenv("LEDGERFLOW_HTTP_LOG", str(log))
    first = store.client(BAKERY).feed[0].feed_index

    acknowledge(server.url, TOKEN, [first], software_company=SOFTWARE_COMPANY)  # reads pod-client, then feeds

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    bakery, garage = store.client(BAKERY).feed_id, store.client(GARAGE).feed_id
    assert [(c["method"], c["url"].split("/v2")[1].split("?")[0], c["status"]) for c in calls] == [
        ("GET", "/delivery/pod-client/", 200), ("GET", f"/delivery/feed/{bakery}/", 200),
        ("PUT", f"/delivery/feed/{bakery}/", 200), ("GET", f"/delivery/feed/{garage}/", 200)]
    assert calls[2]["json"] == {"feed_offset": first}
    assert {c["headers"]["Authorization"] for c in calls} == {c["headers"]["X-Software-Company"] for c in calls} \
        == {"***"}
    assert SOFTWARE_COMPANY not in log.read_text() and TOKEN.split(":")[1] not in log.read_text()


def test_a_soda_file_that_does_not_balance_is_kept_with_the_reason_and_no_lines(store, server, tmp_path, waits):
    lines = payroll_lines(Decimal("1000.00"))
    lines[0] = (lines[0][0], lines[0][1], Decimal("999.99"), lines[0][3])
    bad = store.add_soda(store.client(BAKERY), seq_number=77, period="202603", gross=Decimal("0"),
                         content=soda_file(source="group_s", seq_number=77, enterprise="0477472701",
                                           company="Bakkerij", period="202603", lines=lines))

    result = load(make_pipeline(tmp_path), server, waits)

    assert "does not balance" in result.parse_errors[bad.feed_index] and bad.feed_index in result.acknowledged
    assert query(tmp_path, f"SELECT type FROM raw_codabox.document WHERE id = '{bad.feed_index}' "
                           "AND parse_error LIKE '%debits 1249.99 != credits 1250.00%'") == [("soda",)]
    assert query(tmp_path, f"SELECT count(*) FROM raw_codabox.soda_line WHERE document_id = '{bad.feed_index}'") \
        == [(0,)]


# --- faults ------------------------------------------------------------------------------------

def test_429_waits_as_long_as_retry_after_says_and_5xx_backs_off(store, server, tmp_path, waits):
    store.faults += [Fault(429, retry_after="7", path="/delivery/feed/"), Fault(503, path="/delivery/download/")]

    result = load(make_pipeline(tmp_path), server, waits)

    assert waits == [7.0, 0.5] and len(result.downloaded) == 6 and store.pending() == []


def test_a_retry_after_too_far_away_fails_the_run_instead_of_waiting(store, server, tmp_path, waits):
    store.faults.append(Fault(429, retry_after="3600", path="/delivery/pod-client/"))
    with pytest.raises(CodaboxError, match="asked to wait 3600 s"):
        load(make_pipeline(tmp_path), server, waits)
    assert waits == [] and store.acks == []


def test_expired_credentials_fail_with_the_name_of_the_setting_to_fix(store, server, tmp_path, waits):
    store.credentials_revoked = True
    with pytest.raises(CodaboxAuthError, match=rf"HTTP 401 .*{ENV_TOKEN} are invalid or expired"):
        load(make_pipeline(tmp_path), server, waits)
    store.credentials_revoked = False
    with pytest.raises(CodaboxAuthError, match=rf"HTTP 403 .*{ENV_SOFTWARE_COMPANY}"):
        load_codabox(make_pipeline(tmp_path, "vendor"), server.url, TOKEN, software_company="not-our-key")
    with pytest.raises(CodaboxAuthError, match=rf"'username:password' \(set {ENV_TOKEN}\)"):
        codabox_source(server.url, "just-a-token", software_company=SOFTWARE_COMPANY)
    assert store.acks == [] and waits == []


def test_the_fake_refuses_what_the_api_does_not_know(store, server):
    basic = base64.b64encode(TOKEN.encode()).decode()
    headers = {"X-Software-Company": SOFTWARE_COMPANY, "Authorization": f"Basic {basic}"}
    feed = store.client(BAKERY).feed_id
    page = httpx.get(f"{server.url}/delivery/feed/{feed}/", params={"page": 2}, headers=headers)
    assert page.status_code == 400 and "page" in page.json()["detail"]
    soda = store.client(BAKERY).feed[1].feed_index
    coda_format = httpx.get(f"{server.url}/delivery/download/{soda}/cod/", headers=headers)
    assert coda_format.status_code == 400 and "available: pdf, xml" in coda_format.json()["detail"]
    ack = httpx.put(f"{server.url}/delivery/feed/{feed}/", json={"feed_offset": "nope"}, headers=headers)
    assert ack.status_code == 400 and store.acks == []


def test_the_fake_coda_files_are_128_column_records_whose_balances_add_up():
    data = coda_file(iban="BE68539007547034", holder="Bakkerij", statement_no=41, day=date(2026, 2, 27),
                     old_balance=Decimal("12500.00"),
                     movements=[(Decimal("1830.25"), "invoice 112"), (Decimal("-415.60"), "rent")])
    records = data.decode("latin-1").splitlines()
    assert [r[0] for r in records] == ["0", "1", "2", "2", "8", "9"] and {len(r) for r in records} == {128}

    def amount(text: str, sign: str) -> Decimal:
        return Decimal(text) / 1000 * (-1 if sign == "1" else 1)

    old, new = amount(records[1][43:58], records[1][42]), amount(records[4][42:57], records[4][41])
    moves = [amount(r[32:47], r[31]) for r in records[2:4]]
    assert (old, moves, new) == (Decimal("12500"), [Decimal("1830.25"), Decimal("-415.60")], Decimal("13914.65"))
    assert records[5][16:22] == "000003" and amount(records[5][22:37], "0") == Decimal("415.60")
    assert amount(records[5][37:52], "0") == Decimal("1830.25")


# --- SODA --------------------------------------------------------------------------------------

PAYROLL = soda_file(source="group_s", seq_number=8908749, enterprise="0477472701", company="Bakkerij Peeters BV",
                    period="202602", lines=payroll_lines(Decimal("15655.10")))


def test_a_soda_payroll_journal_becomes_exact_lines_booked_at_the_end_of_its_month():
    lines = soda_journal_lines(PAYROLL, "SODA_202602.xml")

    assert [(x["line_no"], x["account"], x["description"], x["debit"], x["credit"]) for x in lines] == [
        (1, "620200", "Remuneration employees", Decimal("15655.10"), Decimal("0.00")),
        (2, "621000", "Employer social security", Decimal("3913.78"), Decimal("0.00")),
        (3, "453000", "Withholding tax", Decimal("0.00"), Decimal("3402.24")),
        (4, "454000", "ONSS payable", Decimal("0.00"), Decimal("5959.90")),
        (5, "455000", "Net pay", Decimal("0.00"), Decimal("10206.74")),
    ]
    assert {(x["reference"], x["business_date"], x["currency"], x["enterprise_number"]) for x in lines} == {
        ("group_s-8908749-2026/02", date(2026, 2, 28), "EUR", "BE0477472701")}


def test_soda_lines_become_the_daily_journal_columns_balanced_per_day_in_a_stable_order():
    other = soda_file(source="sd_worx", seq_number=12, enterprise="0477472701", company="Bakkerij",
                      period="202603", lines=[("620200", "Gross", Decimal("100.00"), Decimal("-20.00")),
                                              ("455000", "Net", Decimal("0.00"), Decimal("120.00")),
                                              ("499000", "Nothing", Decimal("0.00"), Decimal("0.00"))])
    lines = soda_journal_lines(PAYROLL, "a.xml") + soda_journal_lines(other, "b.xml")

    built = soda_built_lines(lines, account_map={"620200": "6200"})

    assert built.schema == pl.Schema(BUILT_LINE_SCHEMA)
    assert built.equals(soda_built_lines(list(reversed(lines)), account_map={"620200": "6200"}))
    march = built.filter(pl.col("business_date") == date(2026, 3, 31))
    assert march.select("line_no", "account", "debit", "credit").rows() == [
        (1, "6200", Decimal("100.00"), Decimal("0.00")), (2, "6200", Decimal("20.00"), Decimal("0.00")),
        (3, "455000", Decimal("0.00"), Decimal("120.00"))]
    assert march["description"][0] == "Gross (SODA sd_worx-12-2026/03)"
    per_day = built.group_by("business_date").agg(pl.col("debit").sum(), pl.col("credit").sum(), pl.len())
    assert all(row["debit"] == row["credit"] for row in per_day.iter_rows(named=True))
    assert ((built["debit"] > 0) ^ (built["credit"] > 0)).all()


def _line_of(text: bytes, needle: bytes) -> int:
    return text[:text.index(needle)].count(b"\n") + 1


@pytest.mark.parametrize("mutate, expected", [
    (lambda x: x[:200], r"x\.xml: line \d+: is not well-formed XML"),
    (lambda x: x.replace(b"<Debit>15655.10</Debit>", b"<Debit>15655,10</Debit>"),
     r"line {line}: <Debit> '15655,10' is not an amount"),
    (lambda x: x.replace(b"<Debit>15655.10</Debit>", b"<Debit>15655.11</Debit>"),
     r"line \d+: <Transactions> .* entry group_s-8908749-2026/02 does not balance: debits 19568.89 != credits "
     r"19568.88 \(difference 0.01\)"),
    (lambda x: x.replace(b"<Account>620200</Account>", b""), r"line {line}: <Accounting> has no <Account>"),
    (lambda x: x.replace(b"<AccountPeriod>202602", b"<AccountPeriod>202613"),
     r"<AccountPeriod> '202613' is not a month written YYYYMM"),
    (lambda x: x.replace(b"SocialDocument", b"Statement"), r"root element must be <SocialDocument>"),
    (lambda x: x.replace(b"<SocialDocument ", b'<!DOCTYPE d [<!ENTITY a "aaaa">]>\n<SocialDocument ', 1),
     r"a DOCTYPE is not allowed"),
])
def test_a_malformed_soda_document_is_refused_saying_where_and_why(mutate, expected):
    broken = mutate(PAYROLL)
    line = _line_of(PAYROLL, b"<Debit>15655.10") if "Debit" in expected else _line_of(PAYROLL, b"<Accounting>")
    with pytest.raises(SodaError, match=expected.format(line=line)):
        soda_journal_lines(broken, "x.xml")


_VALUE = re.compile(rb">([^<>]*[^<>\s][^<>]*)<")
_ODD_VALUES = [b"", b"-", b"0", b"-0.00", b".5", b"1e3", b"12,50", b"1.005", b"99999999999999999.99", b"NaN",
               b"&amp;", b"\xff", b"202600", b"000001", b"<Social>", b"<!-- -->", b"9" * 40]


def _mutated(data: st.DataObject) -> bytes:
    """The payroll file with a few values, lines or bytes changed: mostly still XML, often still SODA."""
    text = PAYROLL
    for _ in range(data.draw(st.integers(1, 3))):
        how = data.draw(st.sampled_from(["value", "value", "line", "bytes"]))
        if how == "value":
            start, end = data.draw(st.sampled_from([m.span(1) for m in _VALUE.finditer(text)]))
            new = data.draw(st.sampled_from(_ODD_VALUES) | st.text(max_size=12).map(str.encode))
            text = text[:start] + new + text[end:]
        elif how == "line":
            lines = text.split(b"\n")
            at = data.draw(st.integers(0, len(lines) - 1))
            lines[at:at + 1] = [] if data.draw(st.booleans()) else [lines[at], lines[at]]
            text = b"\n".join(lines)
        else:
            start = data.draw(st.integers(0, len(text)))
            text = text[:start] + data.draw(st.binary(max_size=8)) + text[start + data.draw(st.integers(0, 8)):]
    return text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_soda_parser_either_books_a_balanced_journal_or_says_why_not(data):
    raw = data.draw(st.binary(max_size=300)) if data.draw(st.booleans()) else _mutated(data)
    try:
        lines = soda_journal_lines(raw, "fuzz.xml")
    except SodaError as exc:
        assert str(exc).startswith("fuzz.xml")
        return
    for reference in {x["reference"] for x in lines}:
        entry = [x for x in lines if x["reference"] == reference]
        assert sum(x["debit"] for x in entry) == sum(x["credit"] for x in entry)
    assert all(x["debit"] == x["debit"].quantize(Decimal("0.01")) for x in lines)
    built = soda_built_lines(lines)
    assert built.schema == pl.Schema(BUILT_LINE_SCHEMA)

