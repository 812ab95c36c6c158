"""An accounting-entries API as a source: one tenant's books (the "sender", served by
destinations.entries_http) feed another tenant's ("books") journals, marked exported 10 at a time.

The sender's API never answers 429 and its 401s are its own; a small ASGI middleware in front of
the real app adds rate limits and revoked tokens on demand, and keeps the log of what we asked."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs

import polars as pl
import pytest
import requests
from starlette.responses import JSONResponse

from destinations import entries_api, tracking
from destinations.entries_http import SystemTokens, create_app
from schemas.tables import JournalEntry, JournalLine
from schemas.tenant import PACKAGED_TENANTS, Tenant, parse_tenant
from sources.entries_api import EntriesApi, checked_entry, mark_loaded
from sources.extract import ExtractError, ExtractRequest, extract, extractor, pipeline_for
from sources.local_server import LocalServer
from sources.records import ExtractReport
from transforms.stage_entries import check_entries
from transforms.versions import content_hash
from warehouse import rejects as reject_store
from warehouse.db import insert, opened, query
from warehouse.stage_entries import stage_entries

TOKEN = "books-token-5d1e"
OTHER_TOKEN = "erp-token-90ab"  # the sender's other consumer
TOKEN_ENV = "LF_TEST_ENTRIES_TOKEN"
SYSTEM = "books"
SOURCE = "remote"
D0 = date(2026, 3, 2)
BUILT = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 13, 8, 0, tzinfo=UTC)
GOOD = [f"sender-pms-{D0 + timedelta(days=n // 3):%Y%m%d}-{n % 3}" for n in range(14)]  # 2 to 6 March
MAPPED, UNBALANCED, UNKNOWN_ACCOUNT = "sender-pos-20260305-1", "sender-pos-20260306-1", "sender-pos-20260307-1"
SENT, LANDED = len(GOOD) + 3, len(GOOD) + 1  # every entry the sender has; those that pass our checks


# --- the sender's books ------------------------------------------------------------------------

def _document(tenant_id: str, data_dir: Path) -> dict:
    document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
    for key in ("sources", "destinations", "reconciliation"):
        document.pop(key, None)
    return {**document, "id": tenant_id, "data_dir": str(data_dir)}


def _lines(entry_id: str, day: date, postings: list[tuple[str, str, str]]) -> list[dict]:
    return [{"entry_id": entry_id, "line_no": n, "journal_code": "VT", "entry_date": day, "account": account,
             "account_name": f"account {account}", "partner_id": None, "partner_name": None,
             "description": f"{entry_id} line {n}", "debit": Decimal(debit), "credit": Decimal(credit),
             "currency": "EUR", "vat_code": "V10" if account == "445710" else None, "document_ref": entry_id[7:]}
            for n, (account, debit, credit) in enumerate(postings, start=1)]


def _sender_entries() -> list[tuple[str, date, list[tuple[str, str, str]]]]:
    good = [(entry_id, D0 + timedelta(days=n // 3),
             [("512000", f"{110 + n}.00", "0"), ("706100", "0", f"{100 + n}.00"), ("445710", "0", "10.00")])
            for n, entry_id in enumerate(GOOD)]
    return good + [
        (MAPPED, date(2026, 3, 5), [("530000", "45.10", "0"), ("7063", "0", "41.00"), ("445710", "0", "4.10")]),
        (UNBALANCED, date(2026, 3, 6), [("530000", "100.00", "0"), ("706300", "0", "90.00")]),
        (UNKNOWN_ACCOUNT, date(2026, 3, 7), [("530000", "12.00", "0"), ("999999", "0", "12.00")]),
    ]


def write_entry(con, entry_id: str, day: date, postings: list[tuple[str, str, str]], created: datetime) -> None:
    lines = pl.DataFrame(_lines(entry_id, day, postings))
    insert(con, JournalLine, lines)
    insert(con, JournalEntry, pl.DataFrame([{
        "entry_id": entry_id, "tenant": "sender", "source": entry_id.split("-")[1], "business_date": day,
        "entry_date": day, "version": 1, "kind": "original", "reverses": None, "content_hash": content_hash(lines),
        "line_count": lines.height, "run_id": "sender-close", "created_at": created}]))


@pytest.fixture(scope="module")
def sender_template(tmp_path_factory) -> Path:
    """The sender's DuckDB with its journal entries, built once (inserting them takes milliseconds)."""
    path = tmp_path_factory.mktemp("template") / "sender.duckdb"
    with opened(path) as con:
        for n, (entry_id, day, postings) in enumerate(_sender_entries()):
            write_entry(con, entry_id, day, postings, BUILT + timedelta(minutes=n))
    return path


# --- the sender's API, with faults -------------------------------------------------------------

@dataclass
class Fault:
    status: int
    method: str = "GET"
    path_end: str = "/entries"
    times: int | None = 1  # None: every matching request
    after: int = 0  # matching requests let through first
    headers: dict = field(default_factory=dict)


class FaultyApi:
    """ASGI middleware around the real entries API: injected faults, and every exchange logged."""

    def __init__(self) -> None:
        self.app = None  # the sender's real app, set per test
        self.url = ""
        self.faults: list[Fault] = []
        self.exchanges: list[dict] = []

    async def __call__(self, scope, receive, send):
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        exchange = {"method": scope["method"], "path": scope["path"],
                    "query": parse_qs(scope["query_string"].decode()), "json": json.loads(body) if body else None,
                    "authorization": dict(scope["headers"]).get(b"authorization", b"").decode()}
        self.exchanges.append(exchange)

        async def noted(message):
            if message["type"] == "http.response.start":
                exchange["status"] = message["status"]
            await send(message)

        fault = next((f for f in self.faults if f.method == scope["method"] and scope["path"].endswith(f.path_end)),
                     None)
        if fault is not None and fault.after:
            fault.after -= 1
            fault = None
        if fault is not None:
            if fault.times is not None:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
            reason = "slow down" if fault.status == 429 else "token revoked"
            await JSONResponse({"error": reason}, fault.status, headers=fault.headers)(scope, receive, noted)
            return

        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, noted)

    def calls(self, method: str, path_end: str) -> list[dict]:
        return [e for e in self.exchanges if e["method"] == method and e["path"].endswith(path_end)]


@pytest.fixture(scope="module")
def api() -> FaultyApi:
    faulty = FaultyApi()
    with LocalServer(faulty) as server:
        faulty.url = server.url
        yield faulty


@dataclass
class World:
    sender: Tenant
    books: Tenant
    api: FaultyApi

    def pull(self, run_id: str = "run-1"):
        extracted = extract(self.books, SOURCE)
        with opened(self.books.duckdb_path()) as con:
            staged = stage_entries(con, self.books, SOURCE, extracted.load_ids, run_id=run_id, now=NOW)
        return extracted, staged

    def sender_pending(self) -> list[str]:
        with opened(self.sender.duckdb_path()) as con:
            return [e["entry_id"] for e in entries_api.pending(con, "sender", SYSTEM, limit=500).entries]

    def books_sql(self, sql: str, params: list | None = None) -> pl.DataFrame:
        with opened(self.books.duckdb_path()) as con:
            return query(con, sql, params)


def make_world(root: Path, template: Path, api: FaultyApi, books_file: Path | None = None) -> World:
    """Copies of the sender's books (and of ours, if given), the sender's API serving the copy."""
    for tenant_id, copied in (("sender", template), ("books", books_file)):
        (root / tenant_id).mkdir(parents=True)
        if copied is not None:
            shutil.copy(copied, root / tenant_id / f"{tenant_id}.duckdb")
    sender = parse_tenant(_document("sender", root / "sender"), "sender.toml")
    books = parse_tenant({**_document("books", root / "books"), "sources": {SOURCE: {
        "type": "entries_api", "base_url": api.url, "system_id": SYSTEM, "token_env": TOKEN_ENV, "page_size": 6,
        "accounts": {"7063": "706300"}}}}, "books.toml")
    digests = {"LF_BOOKS_DIGEST": hashlib.sha256(TOKEN.encode()).hexdigest(),
               "LF_ERP_DIGEST": hashlib.sha256(OTHER_TOKEN.encode()).hexdigest()}
    tokens = SystemTokens.from_env({SYSTEM: "LF_BOOKS_DIGEST", "erp": "LF_ERP_DIGEST"}, digests)
    api.app = create_app(sender, tokens, clock=lambda: NOW)
    api.faults.clear()
    api.exchanges.clear()
    return World(sender, books, api)


@pytest.fixture
def world(tmp_path, sender_template, api, monkeypatch) -> World:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return make_world(tmp_path, sender_template, api)


@pytest.fixture
def pulled_world(pulled, tmp_path, api, monkeypatch) -> World:
    """Both books as the first pull left them (every entry marked at the sender), in copies."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    world = pulled["world"]
    return make_world(tmp_path, world.sender.duckdb_path(), api, books_file=world.books.duckdb_path())


@pytest.fixture(scope="module")
def pulled(tmp_path_factory, sender_template, api):
    """One pull (a 429 on the second page on the way, the audit log on) and an identical rerun."""
    root = tmp_path_factory.mktemp("pulled")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TOKEN_ENV, TOKEN)
        patch.setenv("LEDGERFLOW_HTTP_LOG", str(root / "http.jsonl"))
        world = make_world(root, sender_template, api)
        api.faults.append(Fault(429, after=1, headers={"Retry-After": "1"}))
        first = world.pull("run-1")
        exchanges_first = list(api.exchanges)
        journal_before = world.books_sql("SELECT * FROM journal_entry ORDER BY entry_id")
        lines_before = world.books_sql("SELECT * FROM journal_line ORDER BY entry_id, line_no")
        rerun = world.pull("run-2")
    return {"world": world, "first": first, "rerun": rerun, "exchanges": exchanges_first,
            "journal": journal_before, "lines": lines_before, "audit": (root / "http.jsonl").read_text()}


def _our_id(remote_id: str, version: int = 1) -> str:
    return f"books-{SOURCE}-{remote_id}-v{version}"


# --- a pull, and its rerun ---------------------------------------------------------------------

def test_pending_entries_land_as_balanced_journal_entries_of_the_source(pulled):
    journal, lines = pulled["journal"], pulled["lines"]
    assert journal.get_column("entry_id").to_list() == sorted(_our_id(i) for i in [*GOOD, MAPPED])
    assert set(journal.get_column("source")) == {SOURCE} and set(journal.get_column("kind")) == {"original"}
    totals = lines.group_by("entry_id", "currency").agg(pl.col("debit").sum(), pl.col("credit").sum())
    assert totals.filter(pl.col("debit") != pl.col("credit")).is_empty()
    assert lines.get_column("debit").sum() == sum(Decimal(f"{110 + n}.00") for n in range(len(GOOD))) + Decimal("45.10")
    mapped = lines.filter(pl.col("entry_id") == _our_id(MAPPED)).row(1, named=True)
    assert (mapped["account"], mapped["account_name"], mapped["credit"]) == ("706300", "Restauration", Decimal("41.00"))
    first = journal.filter(pl.col("entry_id") == _our_id(GOOD[0])).row(0, named=True)
    assert (first["business_date"], first["entry_date"], first["line_count"]) == (D0, D0, 3)
    raw = pulled["world"].books_sql(f"SELECT count(*) AS n, any_value(typeof(debit)) AS money "
                                    f"FROM raw_{SOURCE}.entry_lines")
    assert raw.row(0) == (3 * len(GOOD) + 3 + 2 + 2, "DECIMAL(18,2)")


def test_every_loaded_entry_is_marked_at_the_sender_at_most_ten_per_call(pulled):
    world = pulled["world"]
    marks = [e for e in pulled["exchanges"] if e["path"].endswith("/mark")]
    assert [len(m["json"]["ids"]) for m in marks] == [10, SENT - 10]
    assert sorted(i for m in marks for i in m["json"]["ids"]) == sorted([*GOOD, MAPPED, UNBALANCED, UNKNOWN_ACCOUNT])
    load_id = pulled["first"][0].load_ids[-1]
    assert {m["json"]["note"] for m in marks} == {
        f"imported by ledgerflow tenant books, source {SOURCE}, load {load_id}"}
    assert all(m["status"] == 200 for m in marks) and world.sender_pending() == []


def test_pages_follow_the_cursor_and_a_429_is_waited_out(pulled):
    pages = [e for e in pulled["exchanges"] if e["method"] == "GET"]
    assert pages[0]["query"] == {"status": ["pending"], "limit": ["6"]}
    assert [p["status"] for p in pages[:3]] == [200, 429, 200]
    assert pages[1]["query"] == pages[2]["query"] and "cursor" in pages[2]["query"]
    assert len([p for p in pages if p["status"] == 200]) == 3  # 17 entries, 6 a page
    assert pages[-1]["status"] == 200 and all(p["authorization"] == f"Bearer {TOKEN}" for p in pages)


def test_a_rerun_fetches_nothing_new_and_writes_nothing(pulled):
    world, (extracted, staged) = pulled["world"], pulled["rerun"]
    assert staged.entries == 0 and extracted.row_counts.get("entries", 0) == 0
    assert world.books_sql("SELECT * FROM journal_entry ORDER BY entry_id").equals(pulled["journal"])
    assert world.books_sql("SELECT * FROM journal_line ORDER BY entry_id, line_no").equals(pulled["lines"])
    assert world.books_sql(f"SELECT count(*) AS n FROM raw_{SOURCE}.entries").item() == SENT


def test_an_unbalanced_entry_and_an_unknown_account_are_rejected_naming_what_is_wrong(pulled):
    staged = pulled["first"][1]
    assert staged.entries == LANDED and staged.rejects.height == 2
    rejects = pulled["world"].books_sql("SELECT record_id, business_date, column_name, value, reason FROM rejects "
                                        "WHERE resolved_run_id IS NULL ORDER BY record_id")
    assert rejects.rows() == [
        (UNBALANCED, date(2026, 3, 6), "lines", "EUR",
         f"entry {UNBALANCED}: the entry does not balance in EUR: debit 100.00, credit 90.00 (difference 10.00)"),
        (UNKNOWN_ACCOUNT, date(2026, 3, 7), "lines[2].account", "999999",
         f"entry {UNKNOWN_ACCOUNT}: account 999999 is not in the chart of tenant books: add it to [[accounts]] or "
         f"map it in sources.{SOURCE}.accounts"),
    ]


def test_the_tenants_destinations_see_the_imported_entries_minus_the_days_rejects_hold_back(pulled):
    world = pulled["world"]
    with opened(world.books.duckdb_path()) as con:
        held = reject_store.held_back(con, world.books.sources)
        pending = tracking.pending_entries(con, "books", "journal_csv", date(2026, 3, 31), held)
    assert held == {SOURCE: {date(2026, 3, 6), date(2026, 3, 7)}}
    days = {D0 + timedelta(days=n // 3) for n in range(len(GOOD))} | {date(2026, 3, 5)}
    assert sorted(set(pending.get_column("entry_date"))) == sorted(days - held[SOURCE])
    assert pending.height == LANDED - 2  # the two imported entries of the 6th wait for the reject of that day


def test_staging_with_nothing_loaded_yet_writes_nothing(world):
    with opened(world.books.duckdb_path()) as con:
        staged = stage_entries(con, world.books, SOURCE, [], run_id="run-0", now=NOW)
    assert (staged.records, staged.entries, staged.rejects.height) == (0, 0, 0)


def test_the_audit_log_has_every_call_with_the_token_redacted(pulled):
    calls = [json.loads(line) for line in pulled["audit"].splitlines()]
    assert TOKEN not in pulled["audit"]
    assert {c["headers"]["Authorization"] for c in calls} == {"***"}
    assert [c["status"] for c in calls if c["method"] == "POST"] == [200, 200]
    assert [len(c["json"]["ids"]) for c in calls if c["method"] == "POST"] == [10, SENT - 10]
    assert 429 in [c["status"] for c in calls]


# --- crashes and failures ----------------------------------------------------------------------

def test_a_crash_between_load_and_mark_is_repaired_by_the_next_run_without_duplicates(world):
    from contextlib import ExitStack

    with ExitStack() as stack:
        request = ExtractRequest(world.books, SOURCE, world.books.sources[SOURCE], None, None, None,
                                 requests.Session(), ExtractReport(), stack)
        extraction = extractor("entries_api")(request)
        pipeline_for(world.books, SOURCE).run(extraction.source)  # ... and the process dies: no marks, no staging
    assert len(world.sender_pending()) == SENT and not world.api.calls("POST", "/mark")
    extracted, staged = world.pull()
    assert staged.entries == LANDED and world.sender_pending() == []
    assert world.books_sql("SELECT count(*) FROM journal_entry").item() == LANDED
    assert world.books_sql(f"SELECT count(*) FROM raw_{SOURCE}.entries").item() == SENT  # same versions, kept once
    assert len(world.books_sql("SELECT DISTINCT load_id FROM staged_load")) == 2  # the dead run's load, staged


def test_a_failing_mark_loses_nothing_and_the_next_run_marks(world, caplog):
    world.api.faults.append(Fault(401, method="POST", path_end="/mark", times=None))
    with caplog.at_level(logging.WARNING, "ledgerflow.sources.entries_api"):
        _, staged = world.pull("run-1")
    assert staged.entries == LANDED and len(world.sender_pending()) == SENT
    assert "10 entries loaded but not marked exported" in caplog.text and "HTTP 401" in caplog.text
    world.api.faults.clear()
    _, again = world.pull("run-2")
    assert again.entries == 0 and world.sender_pending() == []
    assert world.books_sql("SELECT count(*) FROM journal_entry").item() == LANDED


def test_a_revoked_or_wrong_token_is_a_clear_error_and_nothing_is_loaded_or_marked(world, monkeypatch):
    world.api.faults.append(Fault(401, times=None))
    with pytest.raises(ExtractError, match=f"HTTP 401 \\(token revoked\\): the token in {TOKEN_ENV} is wrong, "
                                           "expired or revoked"):
        extract(world.books, SOURCE)
    world.api.faults.clear()
    monkeypatch.setenv(TOKEN_ENV, "guess")  # the real server's own 401
    with pytest.raises(ExtractError, match="HTTP 401 \\(missing or unknown bearer token"):
        extract(world.books, SOURCE)
    monkeypatch.setenv(TOKEN_ENV, OTHER_TOKEN)
    with pytest.raises(ExtractError, match=f"HTTP 403 .*: the token in {TOKEN_ENV} is not one of system 'books'"):
        extract(world.books, SOURCE)
    assert not world.api.calls("POST", "/mark") and len(world.sender_pending()) == SENT


def test_a_missing_token_variable_is_named_before_any_call(world, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(ExtractError, match=f"environment variable {TOKEN_ENV} .* is not set"):
        extract(world.books, SOURCE)
    assert world.api.exchanges == []


def test_an_unknown_id_in_a_mark_answer_is_a_warning_not_a_failure(world, caplog):
    api = EntriesApi(world.api.url, SYSTEM, TOKEN, TOKEN_ENV, requests.Session(), 5)
    with caplog.at_level(logging.WARNING, "ledgerflow.sources.entries_api"):
        counts = mark_loaded(api, [(GOOD[0], "L1"), ("gone-entry", "L1")], tenant_id="books", source=SOURCE)
    assert counts == {"marked": 1, "already_marked": 0, "unknown": 1, "failed": 0}
    assert "the sender answered 'unknown' for entry gone-entry" in caplog.text
    with pytest.raises(ValueError, match="mark takes 1 to 10 ids per call, not 11"):
        api.mark([f"id-{n}" for n in range(11)], "too many")


# --- changes at the sender, and fixes at ours ----------------------------------------------------

def _change_at_sender(world: World, entry_id: str, amount: str) -> None:
    """What a system that edits entries in place does (ledgerflow itself would reverse and correct)."""
    with opened(world.sender.duckdb_path()) as con:
        con.execute("DELETE FROM journal_line WHERE entry_id = ?", [entry_id])
        con.execute("DELETE FROM journal_entry WHERE entry_id = ?", [entry_id])
        write_entry(con, entry_id, D0, [("512000", amount, "0"), ("706100", "0", amount)], BUILT + timedelta(hours=5))


def test_a_remote_entry_changed_after_we_exported_it_is_reversed_and_corrected(pulled_world):
    world = pulled_world
    with opened(world.books.duckdb_path()) as con:  # our ERP took GOOD[0]; GOOD[1] is still a draft
        entries_api.mark(con, "books", "erp", [_our_id(GOOD[0])], "ERP import", now=NOW, actor="test")
    _change_at_sender(world, GOOD[0], "150.00")
    _change_at_sender(world, GOOD[1], "160.00")
    assert world.sender_pending() == [GOOD[0], GOOD[1]]
    _, staged = world.pull("run-3")
    changed = world.books_sql("SELECT entry_id, version, kind, reverses, line_count FROM journal_entry "
                              "WHERE run_id = 'run-3' ORDER BY entry_id")
    assert changed.rows() == [(_our_id(GOOD[0]) + "-R", 1, "reversal", _our_id(GOOD[0]), 3),
                              (_our_id(GOOD[0], 2), 2, "correction", None, 2),
                              (_our_id(GOOD[1]), 1, "original", None, 2)]  # a draft: replaced in place
    amounts = world.books_sql("SELECT entry_id, sum(debit) AS debit, sum(credit) AS credit FROM journal_line "
                              "WHERE entry_id LIKE ? GROUP BY ALL ORDER BY ALL", [f"%{GOOD[0]}%"])
    assert amounts.rows() == [(_our_id(GOOD[0]), Decimal("110.00"), Decimal("110.00")),
                              (_our_id(GOOD[0]) + "-R", Decimal("110.00"), Decimal("110.00")),
                              (_our_id(GOOD[0], 2), Decimal("150.00"), Decimal("150.00"))]
    assert staged.entries == 3 and world.sender_pending() == []
    assert world.books_sql("SELECT count(*) FROM journal_entry").item() == LANDED + 2


def test_mapping_the_unknown_account_releases_the_entry_at_the_next_staging(pulled_world):
    world = pulled_world
    document = _document("books", world.books.data_path()) | {"sources": {SOURCE: {
        **world.books.sources[SOURCE].model_dump(exclude={"accounts"}), "accounts": {"7063": "706300",
                                                                                     "999999": "706300"}}}}
    books = parse_tenant(document, "books.toml")
    with opened(books.duckdb_path()) as con:
        staged = stage_entries(con, books, SOURCE, [], run_id="run-3", now=NOW)
    assert staged.entries == 1 and staged.rejects.get_column("record_id").to_list() == [UNBALANCED]
    released = world.books_sql("SELECT account, credit FROM journal_line WHERE entry_id = ? AND line_no = 2",
                               [_our_id(UNKNOWN_ACCOUNT)])
    assert released.rows() == [("706300", Decimal("12.00"))]
    resolved = world.books_sql("SELECT record_id FROM rejects WHERE resolved_run_id = 'run-3'")
    assert resolved.rows() == [(UNKNOWN_ACCOUNT,)]


# --- what the extractor and the checks refuse ----------------------------------------------------

def test_inexact_or_malformed_fields_are_loaded_nulled_with_the_reason():
    report = ExtractReport()
    header, lines = checked_entry({"entry_id": "e1", "business_date": "10/03/2026", "entry_date": "2026-03-10",
                                   "version": "one", "created_at": "2026-03-10T05:00:00", "lines": [
                                       {"line_no": 1, "account": "512000", "debit": "12.345", "credit": "0",
                                        "currency": "EUR"},
                                       {"account": 706100, "debit": 1.5e-3, "credit": "12.35", "currency": "EUR"},
                                       "not a line"]}, report)
    problems = json.loads(header["lf_invalid"])
    assert problems["business_date"] == {"value": "10/03/2026", "reason": "is not an ISO date (YYYY-MM-DD)"}
    assert problems["version"]["reason"] == "is not a whole number"
    assert problems["created_at"]["reason"] == "'2026-03-10T05:00:00' has no UTC offset"
    assert problems["lines[3]"]["reason"] == "is not an object"
    assert header["business_date"] is None and header["entry_date"] == date(2026, 3, 10)
    assert json.loads(lines[0]["lf_invalid"]) == {"debit": {"value": "12.345",
                                                            "reason": "amount '12.345' has more than 2 decimals"}}
    assert lines[0]["debit"] is None and lines[1]["credit"] == Decimal("12.35")
    second = json.loads(lines[1]["lf_invalid"])
    assert second["account"]["reason"] == "is not text" and second["line_no"]["reason"].startswith("is missing")
    assert lines[1]["line_no"] == 2
    nameless, _ = checked_entry({"lines": []}, report)
    assert nameless["entry_id"].startswith("(no id ") and "entry_id" in json.loads(nameless["lf_invalid"])


def test_the_checks_refuse_missing_dates_one_sided_lines_and_wrong_counts_and_keep_the_rest():
    entries = pl.DataFrame([
        {"entry_id": "ok", "business_date": D0, "entry_date": D0, "line_count": 2},
        {"entry_id": "no-date", "business_date": None, "entry_date": D0, "line_count": 2},
        {"entry_id": "two-sided", "business_date": D0, "entry_date": D0, "line_count": 2},
        {"entry_id": "short", "business_date": D0, "entry_date": D0, "line_count": 3},
        {"entry_id": "empty", "business_date": D0, "entry_date": D0, "line_count": 0},
        {"entry_id": "dollars", "business_date": D0, "entry_date": D0, "line_count": 2},
        {"entry_id": "usd", "business_date": D0, "entry_date": D0, "line_count": 2},
    ], schema={"entry_id": pl.String, "business_date": pl.Date, "entry_date": pl.Date, "line_count": pl.Int64})

    def line(entry_id, no, account, debit, credit, currency="EUR"):
        return {"entry_id": entry_id, "line_no": no, "journal_code": "VT", "account": account,
                "debit": Decimal(debit), "credit": Decimal(credit), "currency": currency}

    lines = pl.DataFrame([
        line("ok", 1, "512000", "5.00", "0"), line("ok", 2, "706100", "0", "5.00"),
        line("no-date", 1, "512000", "5.00", "0"), line("no-date", 2, "706100", "0", "5.00"),
        line("two-sided", 1, "512000", "5.00", "5.00"), line("two-sided", 2, "706100", "-5.00", "0"),
        line("short", 1, "512000", "5.00", "0"), line("short", 2, "706100", "0", "5.00"),
        line("dollars", 1, "512000", "5.00", "0", "XXY"), line("dollars", 2, "706100", "0", "5.00", "XXY"),
        line("usd", 1, "512000", "5.00", "0", "USD"), line("usd", 2, "706100", "0", "5.00", "USD"),
    ], schema_overrides={"debit": pl.Decimal(18, 2), "credit": pl.Decimal(18, 2)})
    chart = {"512000": "Banque", "706100": "Hébergement"}
    accepted, rejects = check_entries(entries, lines, chart=chart, accounts={}, journal_code=None, tenant="books",
                                      source=SOURCE, currency="EUR")
    assert accepted.get_column("entry_id").to_list() == ["ok"]
    found = {(r["record_id"], r["column_name"], r["reason"].split(": ", 1)[1]) for r in rejects.iter_rows(named=True)}
    assert found == {
        ("no-date", "business_date", "is missing"),
        ("two-sided", "lines[1]", "needs exactly one of debit and credit above zero and neither below "
                                  "(debit 5.00, credit 5.00)"),
        ("two-sided", "lines[2]", "needs exactly one of debit and credit above zero and neither below "
                                  "(debit -5.00, credit 0.00)"),
        ("two-sided", "lines", "the entry does not balance in EUR: debit 0.00, credit 5.00 (difference -5.00)"),
        ("short", "line_count", "says 3 lines but 2 were delivered"),
        ("empty", "lines", "the entry has no lines"),
        ("dollars", "lines[1].currency", "is not an ISO 4217 currency"),
        ("dollars", "lines[2].currency", "is not an ISO 4217 currency"),
        ("usd", "lines[1].currency", "is not the currency of tenant books's books (EUR): the sender must convert it"),
        ("usd", "lines[2].currency", "is not the currency of tenant books's books (EUR): the sender must convert it"),
    }
