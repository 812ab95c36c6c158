"""Posting a hotel's journal entries to Xero (the stateful fake on 127.0.0.1, every request checked
against Xero's official OpenAPI): once, whatever goes wrong on the way."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest

from destinations.apis.fakes.xero import CLIENT_ID, CLIENT_SECRET, FakeXero
from destinations.apis.oauth import FileTokenStore, Tokens
from flows.post import _attempting, api_for, journals_from_ledger, post_period
from tests.destinations.apis.test_limiter import instant_limiter
from tests.hotel import Hotel
from warehouse.db import opened

START, END = date(2026, 3, 1), date(2026, 3, 3)


@pytest.fixture(scope="module")
def server(shared_dir):
    with FakeXero(tenants=("Hôtel du Lac SARL",), specs=shared_dir / "specs" / "xero") as fake:
        yield fake


@pytest.fixture(scope="module")
def closed(tmp_path_factory, server):
    """A hotel with three closed days and a Xero destination (monthly: the daily closes leave it alone)."""
    root = tmp_path_factory.mktemp("xero-hotel")
    hotel = Hotel(root, **{"destinations.xero": {
        "type": "xero", "organisation": server.tenant_id, "schedule": "monthly", "base_url": server.api_url,
        "token_url": server.token_url, "client_id_env": "TEST_XERO_CLIENT_ID",
        "client_secret_env": "TEST_XERO_CLIENT_SECRET", "token_store": "file:tokens/xero.json",
        "timeout_seconds": 2}})
    for day in (START, date(2026, 3, 2), END):
        hotel.close_day(day)
    hotel.stop()
    hotel.closed_data = hotel.tenant.data_path()  # each test works on a copy of this
    return hotel


@pytest.fixture
def hotel(closed, server, monkeypatch, tmp_path):
    """The closed hotel, its DuckDB file copied fresh for each test, connected to a fresh fake."""
    import shutil

    monkeypatch.setenv("TEST_XERO_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TEST_XERO_CLIENT_SECRET", CLIENT_SECRET)
    server.reset()
    copy = tmp_path / "data"
    shutil.copytree(closed.closed_data, copy, ignore=shutil.ignore_patterns("dlt", "tokens"))
    closed.reconfigure(lambda doc: doc.update(data_dir=str(copy)))
    tokens = server.issue_tokens([server.tenant_id])
    FileTokenStore(copy / "tokens" / "xero.json").save(Tokens(tokens["access_token"], tokens["refresh_token"],
                                                               time.time() + tokens["expires_in"]))
    return closed


def post(hotel: Hotel, **client):
    api = api_for(hotel.tenant, "xero", limiter=instant_limiter(), sleep=lambda _: None, backoff=0.01, **client)
    return post_period(hotel.tenant, "xero", START, END, run_id="test", api=api)


def pending(hotel: Hotel) -> int:
    with opened(hotel.tenant.duckdb_path()) as con:
        return len(journals_from_ledger(con, hotel.tenant, "xero", START, END)[0])


def test_posting_twice_posts_nothing_new(hotel, server):
    entries = pending(hotel)
    assert entries >= 3  # three days of sales and payments
    first = post(hotel)
    assert (len(first.posted), first.skipped, len(first.failed)) == (entries, 0, 0)
    assert len(server.manual_journals) == entries and server.spec_violations == []
    journal = server.manual_journals[0]
    assert journal["Narration"].endswith("]") and journal["Status"] == "POSTED"
    assert sum(float(line["LineAmount"]) for line in journal["JournalLines"]) == pytest.approx(0)
    second = post(hotel)
    assert (len(second.posted), second.skipped, len(second.failed)) == (0, entries, 0)
    assert second.requests == 0 and len(server.manual_journals) == entries
    recorded = hotel.sql("SELECT count(*) FROM export_log WHERE system_id = 'xero' AND external_id IS NOT NULL")
    assert recorded.item() == entries


def test_a_storm_of_429s_and_500s_delays_but_loses_and_duplicates_nothing(hotel, server):
    entries = pending(hotel)
    server.fail_next("429", count=6, retry_after=1)
    server.fail_next("500", count=3)
    server.fail_next("503", count=2)
    summary = post(hotel)
    assert len(summary.posted) == entries and not summary.failed
    assert len(server.manual_journals) == entries and server.spec_violations == []


def test_a_timeout_after_the_server_committed_makes_no_duplicate(hotel, server):
    entries = pending(hotel)
    server.fail_next("timeout_after_commit", delay=3.0)  # the client gives up after 2 s and retries
    summary = post(hotel)
    assert len(summary.posted) == entries
    assert len(server.manual_journals) == entries  # the retry's idempotency key got the original reply


def test_a_token_that_expires_mid_run_is_refreshed_and_the_rotated_one_kept(hotel, server):
    store = FileTokenStore(hotel.tenant.data_path() / "tokens" / "xero.json")
    before = store.load()
    server.expire_access_tokens()
    entries = pending(hotel)
    summary = post(hotel)
    assert len(summary.posted) == entries > 0 and not summary.failed
    after = store.load()
    assert after.refresh_token != before.refresh_token and after.access_token != before.access_token


def test_an_invalid_journal_is_reported_with_xeros_message_and_the_rest_goes_on(hotel, server):
    entries = pending(hotel)
    with opened(hotel.tenant.duckdb_path()) as con:
        victim = journals_from_ledger(con, hotel.tenant, "xero", START, END)[0][1].entry_id
    server.fail_next("validation", element_contains=victim, message="Account code '706100' is not a valid code")
    summary = post(hotel)
    assert [o.object_id for o in summary.failed] == [victim]
    assert "Account code '706100' is not a valid code" in summary.failed[0].message
    assert len(summary.posted) == entries - 1 and len(server.manual_journals) == entries - 1
    again = post(hotel)  # fixed on the other side: the next run posts what is left
    assert [o.object_id for o in again.posted] == [victim] and len(server.manual_journals) == entries


def test_after_a_crash_between_posting_and_recording_the_next_run_finds_instead_of_posting(hotel, server):
    from datetime import UTC, datetime

    with opened(hotel.tenant.duckdb_path()) as con:
        journals = journals_from_ledger(con, hotel.tenant, "xero", START, END)[0]
        api = api_for(hotel.tenant, "xero", limiter=instant_limiter(), sleep=lambda _: None)
        _attempting(con, hotel.tenant, "xero", journals[:2], "crashed", datetime.now(UTC))
        api.post_journals(journals[:2])  # sent, then the process died before recording
        api.close()
    summary = post(hotel)
    assert sorted(o.object_id for o in summary.found) == sorted(j.entry_id for j in journals[:2])
    assert len(server.manual_journals) == len(journals)  # no duplicate of the two
    assert hotel.sql("SELECT count(*) FROM post_attempt").item() == 0


def test_the_command_posts_prints_and_keeps_an_audit_log_without_secrets(hotel, server, tmp_path):
    from tests.test_cli import ledgerflow

    log = tmp_path / "http.jsonl"
    env = {"LEDGERFLOW_HTTP_LOG": str(log), "LEDGERFLOW_XERO_BASE_URL": server.api_url}
    args = ("post", "xero", "--tenant", str(hotel.tenant_file), "--period", f"{START}..{END}")
    dry = ledgerflow(*args, "--dry-run", env=env)
    assert dry.returncode == 0 and f"would post {pending(hotel)}" in dry.stdout
    done = ledgerflow(*args, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"posted {len(server.manual_journals)}, skipped 0 (already " \
                                                   "exported), failed 0"
    assert ledgerflow(*args, env=env).stdout.strip().endswith("failed 0")
    token = FileTokenStore(hotel.tenant.data_path() / "tokens" / "xero.json").load()
    text = log.read_text()
    assert token.access_token not in text and CLIENT_SECRET not in text
    entries = [json.loads(line) for line in text.splitlines()]
    puts = [e for e in entries if e["method"] == "PUT"]
    assert puts and puts[0]["headers"]["Authorization"] == "***" and "ManualJournals" in puts[0]["json"]
    assert {"ts", "method", "url", "headers", "status", "response_ms"} <= set(puts[0])


def test_missing_credentials_or_an_unknown_system_are_named(hotel, monkeypatch):
    from tests.test_cli import ledgerflow

    unknown = ledgerflow("post", "sage", "--tenant", str(hotel.tenant_file), "--period", f"{START}..{END}")
    assert unknown.returncode == 2 and "no API destination 'sage'; its API destinations: xero (xero)" in unknown.stderr
    files = ledgerflow("deliver", str(hotel.tenant_file), "xero", "--period", f"{START}..{END}")
    assert files.returncode == 2 and "xero is an API destination" in files.stderr
    monkeypatch.delenv("TEST_XERO_CLIENT_SECRET")
    missing = ledgerflow("post", "xero", "--tenant", str(hotel.tenant_file), "--period", f"{START}..{END}")
    assert missing.returncode == 2 and "TEST_XERO_CLIENT_SECRET is not set" in missing.stderr


def test_the_daily_close_posts_its_day_to_a_daily_xero_destination(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_XERO_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TEST_XERO_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("LEDGERFLOW_XERO_BASE_URL", server.api_url)
    server.reset()
    hotel = Hotel(tmp_path / "hotel", **{"destinations.xero": {
        "type": "xero", "organisation": server.tenant_id, "token_url": server.token_url,
        "client_id_env": "TEST_XERO_CLIENT_ID", "client_secret_env": "TEST_XERO_CLIENT_SECRET",
        "retries": 2, "backoff_seconds": 0.01}})
    try:
        tokens = server.issue_tokens([server.tenant_id])
        FileTokenStore(hotel.tenant.data_path() / "tokens" / f"xero-{server.tenant_id}.json").save(
            Tokens(tokens["access_token"], tokens["refresh_token"], time.time() + tokens["expires_in"]))
        summary = hotel.close_day(START)
        assert summary.final_state().name == "Completed", summary.final_state().message
        (result,) = [e for e in summary.exports if e.destination == "xero"]
        assert len(result.posted.posted) == len(server.manual_journals) > 0
        again = hotel.close_day(START)
        (result,) = [e for e in again.exports if e.destination == "xero"]
        assert not result.posted.posted and result.posted.skipped == len(server.manual_journals)
        server.expire_access_tokens()
        server.fail_next("500", count=99)  # the API is down: the close says so, the entries wait
        down = hotel.close_day(date(2026, 3, 2)).final_state()
        assert down.name == "CompletedWithWarnings" and "xero: posting stopped" in down.message
    finally:
        hotel.stop()


def test_two_organisations_get_their_own_tokens_limits_and_ledger(hotel, server):
    other = server.add_tenant("Hôtel du Lac, restaurant")
    settings = dict(hotel.document["destinations"]["xero"], organisation=other.tenant_id,
                    token_store=f"file:tokens/xero-{other.tenant_id}.json")
    hotel.reconfigure(lambda doc: doc["destinations"].update(restaurant=settings))
    tokens = server.issue_tokens([other.tenant_id])
    FileTokenStore(hotel.tenant.data_path() / "tokens" / f"xero-{other.tenant_id}.json").save(
        Tokens(tokens["access_token"], tokens["refresh_token"], time.time() + tokens["expires_in"]))
    entries = pending(hotel)
    first = post(hotel)
    api = api_for(hotel.tenant, "restaurant", limiter=instant_limiter(), sleep=lambda _: None)
    second = post_period(hotel.tenant, "restaurant", START, END, run_id="test", api=api)
    assert len(first.posted) == len(second.posted) == entries
    assert len(other.collections["ManualJournals"]) == len(server.manual_journals) == entries
    logged = hotel.sql("SELECT system_id, count(*) FROM export_log WHERE system_id IN ('xero', 'restaurant') "
                       "GROUP BY 1 ORDER BY 1").rows()
    assert logged == [("restaurant", entries), ("xero", entries)]
    hotel.reconfigure(lambda doc: doc["destinations"].pop("restaurant"))
