"""Posting a hotel's journal entries to QuickBooks Online (the stateful fake on 127.0.0.1, every
payload checked against the official XSD), connected through `ledgerflow auth`'s code exchange."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from destinations.apis.fakes.qbo import CLIENT_ID, CLIENT_SECRET, FakeQbo
from destinations.apis.oauth import FileTokenStore
from flows.post import api_for, journals_from_ledger, post_period
from schemas.tenant import load_tenant
from tests.destinations.apis.test_limiter import instant_limiter
from tests.hotel import Hotel
from tests.test_cli import ledgerflow
from warehouse.db import opened

START, END = date(2026, 3, 1), date(2026, 3, 2)
ACCOUNTS = {account.number: account.name for account in load_tenant("demo").accounts}


@pytest.fixture(scope="module")
def server(shared_dir):
    with FakeQbo(xsd_dir=shared_dir / "specs" / "qbo") as fake:
        yield fake


@pytest.fixture(scope="module")
def closed(tmp_path_factory, server):
    root = tmp_path_factory.mktemp("qbo-hotel")
    hotel = Hotel(root, **{"destinations.books": {
        "type": "qbo", "organisation": server.realm, "schedule": "monthly", "base_url": server.url,
        "token_url": server.token_url, "client_id_env": "TEST_QBO_CLIENT_ID",
        "client_secret_env": "TEST_QBO_CLIENT_SECRET", "timeout_seconds": 2,
        "accounts": {number: f"9{number}" for number in ACCOUNTS}}})
    for day in (START, END):
        hotel.close_day(day)
    hotel.stop()
    hotel.closed_data = hotel.tenant.data_path()
    return hotel


@pytest.fixture
def hotel(closed, server, monkeypatch, tmp_path):
    monkeypatch.setenv("TEST_QBO_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TEST_QBO_CLIENT_SECRET", CLIENT_SECRET)
    server.reset()
    for number, name in ACCOUNTS.items():
        server.add_account(f"9{number}", name)
    copy = tmp_path / "data"
    shutil.copytree(closed.closed_data, copy, ignore=shutil.ignore_patterns("dlt", "tokens"))
    closed.reconfigure(lambda doc: doc.update(data_dir=str(copy)))
    connected = ledgerflow("auth", "qbo", "--tenant", str(closed.tenant_file), "--code", server.issue_code(),
                           "--redirect-uri", "https://example.org/callback")
    assert connected.returncode == 0, connected.stderr
    yield closed
    assert server.spec_violations == []


def post(hotel: Hotel):
    api = api_for(hotel.tenant, "books", limiter=instant_limiter(), sleep=lambda _: None, backoff=0.01)
    return post_period(hotel.tenant, "books", START, END, run_id="test", api=api)


def journals(hotel: Hotel):
    with opened(hotel.tenant.duckdb_path()) as con:
        return journals_from_ledger(con, hotel.tenant, "books", START, END)[0]


def test_the_auth_bootstrap_stores_tokens_and_posting_twice_posts_nothing_new(hotel, server):
    assert FileTokenStore(hotel.tenant.data_path() / "tokens" / f"qbo-{server.realm}.json").load() is not None
    todo = journals(hotel)
    first = post(hotel)
    assert (len(first.posted), len(first.failed)) == (len(todo), 0)
    assert len(server.entities["JournalEntry"]) == len(todo)
    entry = next(iter(server.entities["JournalEntry"].values()))
    assert len(entry["DocNumber"]) <= 21 and entry["PrivateNote"].startswith("ledgerflow ")
    again = post(hotel)
    assert (len(again.posted), again.skipped) == (0, len(todo))
    assert len(server.entities["JournalEntry"]) == len(todo)


def test_an_account_without_a_qbo_id_fails_its_entries_naming_it(hotel, server):
    todo = journals(hotel)
    account = todo[0].lines[0].account
    hotel.reconfigure(lambda doc: doc["destinations"]["books"]["accounts"].pop(account))
    summary = post(hotel)
    using = {j.entry_id for j in todo if any(line.account == account for line in j.lines)}
    assert {o.object_id for o in summary.failed} == using
    assert all(f"account {account} has no QBO account id" in o.message for o in summary.failed)
    assert len(summary.posted) == len(todo) - len(using)
    hotel.reconfigure(lambda doc: doc["destinations"]["books"]["accounts"].update({account: f"9{account}"}))


def test_faults_neither_lose_nor_duplicate(hotel, server):
    todo = journals(hotel)
    server.fail_next("429", count=3)
    server.fail_next("500", count=2)
    server.fail_next("timeout_after_commit", delay=3.0)
    server.expire_access_tokens()
    summary = post(hotel)
    assert len(summary.posted) == len(todo)
    assert len(server.entities["JournalEntry"]) == len(todo)  # requestid made the retries safe


def test_a_validation_fault_names_the_entry_and_qbos_message(hotel, server):
    todo = journals(hotel)
    victim = todo[0].entry_id
    server.fail_next("validation", marker=victim)
    summary = post(hotel)
    failed = {o.object_id: o.message for o in summary.failed}
    assert list(failed) == [victim] and failed[victim].startswith("QBO: ")
    assert len(summary.posted) == len(todo) - 1
    again = post(hotel)  # corrected on the other side: a fresh requestid, or QBO would replay its refusal
    assert [o.object_id for o in again.posted] == [victim]
    assert len(server.entities["JournalEntry"]) == len(todo)


def test_when_the_days_quota_runs_out_what_was_posted_is_recorded_and_the_rest_waits(hotel, server):
    from destinations.apis.limiter import DailyLimitReached, Limits, RateLimiter

    todo = journals(hotel)
    assert len(todo) >= 2
    api = api_for(hotel.tenant, "books", limiter=RateLimiter({"qbo": Limits(((1, 86_400.0),), concurrent=5)}))
    with pytest.raises(DailyLimitReached) as stopped:
        post_period(hotel.tenant, "books", START, END, run_id="quota", api=api)
    assert len(stopped.value.summary.posted) == 1  # one call per journal: each recorded as it came back
    assert hotel.sql("SELECT count(*) FROM export_log WHERE system_id = 'books'").item() == 1
    rest = post(hotel)  # the next day
    assert len(rest.posted) == len(todo) - 1 and rest.skipped == 1 and not rest.found
    assert len(server.entities["JournalEntry"]) == len(todo)
