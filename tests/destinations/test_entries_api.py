"""The export ledger for systems that pull entries (destinations.entries_api): pending, since and mark,
through the library, the ``ledgerflow exports`` command and the HTTP API, on books a real close built."""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
import tomli_w

from destinations import entries_api
from destinations.entries_http import SystemTokens, serve
from schemas.tenant import ConfigError, Tenant, load_tenant
from tests.hotel import Hotel
from tests.test_cli import ROOT, ledgerflow_here
from warehouse.db import opened

D1, D2, D3 = date(2026, 3, 10), date(2026, 3, 11), date(2026, 3, 12)
ERP_TOKEN, BI_TOKEN = "erp-token-1f6c", "bi-token-77a0"
NOW = datetime(2026, 3, 13, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Books:
    tenant: Tenant
    tenant_file: Path

    def pending_ids(self, system_id: str = "erp") -> list[str]:
        with opened(self.tenant.duckdb_path()) as con:
            return [e["entry_id"] for e in entries_api.pending(con, "demo", system_id, limit=500).entries]

    def mark(self, ids: list[str], note: str | None = "import 1") -> list[tuple[str, str]]:
        with opened(self.tenant.duckdb_path()) as con:
            return [(r.id, r.status) for r in entries_api.mark(con, "demo", "erp", ids, note, now=NOW, actor="test")]

    def rows(self, sql: str, params: list | None = None) -> list[tuple]:
        with opened(self.tenant.duckdb_path()) as con:
            return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def closed_hotel(tmp_path_factory) -> Hotel:
    """Three days closed once for the module (a close takes seconds); each test works on a copy."""
    hotel = Hotel(tmp_path_factory.mktemp("hotel"))
    try:
        for day in (D1, D2, D3):
            hotel.close_day(day)
    finally:
        hotel.stop()
    return hotel


@pytest.fixture
def books(closed_hotel, tmp_path) -> Books:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(closed_hotel.tenant.duckdb_path(), data / "demo.duckdb")
    tenant_file = tmp_path / "demo.toml"
    tenant_file.write_text(tomli_w.dumps({**closed_hotel.document, "data_dir": str(data)}), encoding="utf-8")
    return Books(load_tenant(tenant_file), tenant_file)


@pytest.fixture
def api(books):
    """The HTTP API of the copied books on 127.0.0.1, with two systems: erp and bi."""
    environ = {"LF_ERP": hashlib.sha256(ERP_TOKEN.encode()).hexdigest(),
               "LF_BI": hashlib.sha256(BI_TOKEN.encode()).hexdigest()}
    tokens = SystemTokens.from_env({"erp": "LF_ERP", "bi": "LF_BI"}, environ)
    with serve(books.tenant, tokens) as server:
        yield server.url


def client(url: str, token: str | None = ERP_TOKEN) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=10)


# --- the library -------------------------------------------------------------------------------

def test_pending_lists_every_unexported_entry_with_balanced_lines_page_by_page(books):
    everything = books.pending_ids()
    assert everything[0] == "demo-pms-20260310-v1" and len(everything) >= 4
    assert len(set(everything)) == len(everything)
    walked, cursor = [], None
    with opened(books.tenant.duckdb_path()) as con:
        while True:
            page = entries_api.pending(con, "demo", "erp", limit=2, after=cursor)
            walked += page.entries
            cursor = page.next_cursor
            if cursor is None:
                break
    assert [e["entry_id"] for e in walked] == everything
    for entry in walked:
        assert len(entry["lines"]) == entry["line_count"]
        assert sum(line["debit"] for line in entry["lines"]) == sum(line["credit"] for line in entry["lines"])


def test_marking_three_entries_shrinks_pending_and_notes_each_in_its_timeline(books):
    before = books.pending_ids()
    assert books.mark(before[:3], "ERP import 2026-03-13") == [(i, "marked") for i in before[:3]]
    assert books.pending_ids() == before[3:]
    assert books.pending_ids("bi") == before  # another system's marks are its own
    timeline = books.rows("SELECT entry_id, system_id, event, note, actor, recorded_at FROM entry_timeline "
                          "ORDER BY entry_id")
    assert timeline == [(i, "erp", "exported", "ERP import 2026-03-13", "test", NOW) for i in sorted(before[:3])]
    logged = books.rows("SELECT l.object_id FROM export_log l JOIN journal_entry e ON e.entry_id = l.object_id "
                        "AND e.content_hash = l.content_hash WHERE l.system_id = 'erp' ORDER BY 1")
    assert logged == [(i,) for i in sorted(before[:3])]


def test_marking_again_answers_already_marked_and_an_unknown_id_is_reported_without_failing_the_rest(books):
    first, second = books.pending_ids()[:2]
    books.mark([first])
    assert books.mark([first, "demo-pms-20990101-v1", second]) == [
        (first, "already_marked"), ("demo-pms-20990101-v1", "unknown"), (second, "marked")]
    assert books.rows("SELECT count(*) FROM entry_timeline WHERE entry_id = ?", [first]) == [(1,)]


def test_more_than_ten_ids_are_refused_naming_the_limit_and_nothing_is_marked(books):
    ids = books.pending_ids()[:1] * 11
    with pytest.raises(entries_api.EntriesRequestError, match="11 given, at most 10 entries can be marked per call"):
        books.mark(ids)
    assert books.rows("SELECT count(*) FROM entry_timeline") == [(0,)]


def test_since_returns_the_reversal_and_correction_of_a_day_changed_after_it_was_exported(late_fix_hotel):
    hotel = late_fix_hotel  # the LATE-FIX food ticket of D1, D1 closed and exported
    hotel.close_day(D2)
    with opened(hotel.tenant.duckdb_path()) as con:
        entries_api.mark(con, "demo", "erp", ["demo-pms-20260310-v1"], "ERP import 1", now=NOW, actor="test")
    exported_at = datetime.now(UTC)
    # The next morning the restaurant reclassifies the ticket: drinks, 20 % VAT.
    hotel.add_charge("LATE-FIX", hotel.local(D1, 20), amount="40.00", category="BEVERAGE", vat_rate="20.00",
                     updated=hotel.local(D3, 10))
    hotel.close_day(D3)
    with opened(hotel.tenant.duckdb_path()) as con:
        changed = entries_api.since(con, "demo", "erp", exported_at).entries
        pending = [e["entry_id"] for e in entries_api.pending(con, "demo", "erp").entries]
    by_id = {e["entry_id"]: e for e in changed}
    assert by_id["demo-pms-20260310-v1-R"]["kind"] == "reversal"
    assert by_id["demo-pms-20260310-v1-R"]["reverses"] == "demo-pms-20260310-v1"
    assert by_id["demo-pms-20260310-v2"]["kind"] == "correction"
    assert "demo-pms-20260312-v1" in by_id
    assert "demo-pms-20260310-v1" not in by_id  # exported, and unchanged: it stays as it was
    assert "demo-pms-20260311-v1" in pending and "demo-pms-20260311-v1" not in by_id  # built before the instant


def test_a_cursor_that_was_not_given_out_is_refused(books):
    with opened(books.tenant.duckdb_path()) as con, pytest.raises(entries_api.EntriesRequestError,
                                                                   match="not a cursor this ledger gave out"):
        entries_api.pending(con, "demo", "erp", after="bm90LWEtY3Vyc29y")


# --- ledgerflow exports (in this process; the serve test below starts the real command) ----------

def test_the_command_lists_pending_entries_as_json_lines_and_mark_exits_1_on_an_unknown_id(books):
    listed = ledgerflow_here("exports", "pending", "--tenant", str(books.tenant_file), "--system", "erp")
    assert listed.returncode == 0, listed.stderr
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [e["entry_id"] for e in entries] == books.pending_ids()
    assert isinstance(entries[0]["lines"][0]["debit"], str)  # money as exact decimal text
    marked = ledgerflow_here("exports", "mark", "--tenant", str(books.tenant_file), "--system", "erp", "--note",
                             "n", entries[0]["entry_id"], "no-such-entry")
    assert marked.returncode == 1
    assert [json.loads(line) for line in marked.stdout.splitlines()] == [
        {"id": entries[0]["entry_id"], "status": "marked"}, {"id": "no-such-entry", "status": "unknown"}]
    table = ledgerflow_here("exports", "pending", "--tenant", str(books.tenant_file), "--system", "erp",
                            "--format", "table", "--limit", "1")
    assert table.returncode == 0 and entries[1]["entry_id"] in table.stdout and "--cursor" in table.stderr


def test_the_command_refuses_eleven_ids_with_exit_2_and_the_limit_named(books):
    result = ledgerflow_here("exports", "mark", "--tenant", str(books.tenant_file), "--system", "erp",
                             *[f"id-{n}" for n in range(11)])
    assert result.returncode == 2 and "at most 10 entries can be marked per call" in result.stderr


# --- the HTTP API ------------------------------------------------------------------------------

def test_a_system_pages_through_its_pending_entries_and_marks_them_over_http(api, books):
    with client(api) as erp:
        first = erp.get("/v1/systems/erp/entries", params={"status": "pending", "limit": 3}).json()
        rest = erp.get("/v1/systems/erp/entries", params={"cursor": first["next_cursor"], "limit": 500}).json()
        ids = [e["entry_id"] for e in first["entries"] + rest["entries"]]
        assert ids == books.pending_ids() and rest["next_cursor"] is None
        reply = erp.post("/v1/systems/erp/entries/mark", json={"ids": ids[:3] + ["nope"], "note": "ERP run 42"})
        assert reply.status_code == 200
        assert reply.json() == {"results": [*({"id": i, "status": "marked"} for i in ids[:3]),
                                            {"id": "nope", "status": "unknown"}],
                                "marked": 3, "already_marked": 0, "unknown": 1}
        after = erp.get("/v1/systems/erp/entries").json()
        assert [e["entry_id"] for e in after["entries"]] == ids[3:]
    assert books.rows("SELECT DISTINCT actor, note FROM entry_timeline") == [("api:erp", "ERP run 42")]


def test_since_over_http_takes_an_iso_instant(api):
    with client(api) as erp:
        assert erp.get("/v1/systems/erp/entries", params={"not_exported_since": "2099-01-01T00:00:00Z"}).json() == {
            "entries": [], "next_cursor": None}
        reply = erp.get("/v1/systems/erp/entries", params={"not_exported_since": "yesterday"})
        assert reply.status_code == 400 and "expected an ISO 8601 instant" in reply.json()["error"]


def test_a_missing_or_wrong_token_is_401_and_another_systems_token_is_403(api, books):
    for token in (None, "guess"):
        with client(api, token) as stranger:
            reply = stranger.get("/v1/systems/erp/entries")
            assert reply.status_code == 401 and reply.headers["WWW-Authenticate"].startswith("Bearer")
    with client(api, BI_TOKEN) as bi:
        assert bi.get("/v1/systems/erp/entries").status_code == 403
        refused = bi.post("/v1/systems/erp/entries/mark", json={"ids": books.pending_ids()[:1]})
        assert refused.status_code == 403 and "system 'erp'" in refused.json()["error"]
        assert bi.get("/v1/systems/bi/entries").status_code == 200
    assert books.rows("SELECT count(*) FROM export_log WHERE system_id = 'erp'") == [(0,)]


def test_eleven_ids_are_a_422_and_a_body_that_is_not_json_a_400(api):
    with client(api) as erp:
        too_many = erp.post("/v1/systems/erp/entries/mark", json={"ids": [f"id-{n}" for n in range(11)]})
        assert too_many.status_code == 422
        assert too_many.json()["error"].startswith("ids: 11 given, at most 10 entries can be marked per call")
        broken = erp.post("/v1/systems/erp/entries/mark", content=b'{"ids": [',
                          headers={"Content-Type": "application/json"})
        assert broken.status_code == 400 and broken.json()["error"].startswith("request body is not valid JSON")
        shapeless = erp.post("/v1/systems/erp/entries/mark", json=["demo-pms-20260310-v1"])
        assert shapeless.status_code == 422 and '"ids"' in shapeless.json()["error"]


def test_a_token_variable_that_is_missing_or_not_a_hash_is_named_at_start_up():
    with pytest.raises(ConfigError, match="system 'erp': environment variable LF_ERP is not set"):
        SystemTokens.from_env({"erp": "LF_ERP"}, {})
    with pytest.raises(ConfigError, match="LF_ERP is not a hex SHA-256"):
        SystemTokens.from_env({"erp": "LF_ERP"}, {"LF_ERP": ERP_TOKEN})


def test_the_serve_command_answers_on_the_port_it_was_given(books):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LF_ERP": hashlib.sha256(ERP_TOKEN.encode()).hexdigest()}
    server = subprocess.Popen([sys.executable, "-m", "flows.cli", "exports", "serve", "--tenant",
                               str(books.tenant_file), "--port", str(port), "--token-env", "erp=LF_ERP"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with client(f"http://127.0.0.1:{port}") as erp:
                    reply = erp.get("/v1/systems/erp/entries", params={"limit": 1})
                break
            except httpx.ConnectError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr and server.stderr.read()
                time.sleep(0.1)
        assert reply.status_code == 200 and len(reply.json()["entries"]) == 1
    finally:
        server.terminate()
        server.wait(timeout=10)
