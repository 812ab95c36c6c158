"""The close with issue 8's sources (plain steps, no Prefect): a PMS described in the tenant file
(tenants/examples/folio-cloud.toml) is journalled like the demo PMS, a Stripe account beside it
becomes expected payouts, backfill and daily closes agree, and a rerun changes nothing."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import tomli_w

from flows.closing import PLAIN_STEPS, close_periods
from schemas.tenant import PACKAGED_TENANTS, load_tenant
from sources.demo_pms.generator import HotelSpec, generate
from sources.extract import ExtractError
from sources.rest_pms.fake import API_KEY, FolioCloudServer, FolioStore
from sources.stripe.fake import API_KEY as STRIPE_KEY
from sources.stripe.fake import StripeServer, StripeStore
from transforms.periods import Period
from warehouse.db import opened, query

SPEC = HotelSpec(seed=5, timezone="Europe/Paris", history_start=date(2026, 3, 2), history_end=date(2026, 3, 4),
                 rooms=3)
CLOCK = datetime(2026, 3, 6, 6, tzinfo=UTC)
DAYS = [Period(date(2026, 3, d), date(2026, 3, d), "day") for d in (2, 3, 4)]


@pytest.fixture(scope="module")
def systems(shared_dir):
    folio = FolioStore.from_demo(*generate(SPEC), timezone=SPEC.timezone)
    folio.set_clock(CLOCK)
    stripe = StripeStore(spec_path=shared_dir / "specs" / "stripe" / "spec3.json")
    charge = stripe.add_charge(25_000, "eur", datetime(2026, 3, 2, 20, tzinfo=UTC), fee=400)
    stripe.add_payout(datetime(2026, 3, 3, tzinfo=UTC), date(2026, 3, 5), settles=[charge["balance_transaction"]],
                      status="paid")
    with FolioCloudServer(folio) as pms, StripeServer(stripe) as processor:
        yield pms, processor


def tenant(tmp_path, systems, monkeypatch):
    pms, processor = systems
    monkeypatch.setenv("FOLIO_CLOUD_API_KEY", API_KEY)
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_KEY)
    document = tomllib.loads((PACKAGED_TENANTS / "examples" / "folio-cloud.toml").read_text(encoding="utf-8"))
    document["data_dir"] = str(tmp_path / "data")
    document["destinations"] = {}
    document["sources"]["pms"]["base_url"] = pms.url
    document["sources"]["cards"] = {"type": "stripe", "base_url": processor.url, "lookback_days": 10}
    document.pop("reconciliation", None)  # the close's reconcile step is tested elsewhere
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "tenant.toml"
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return load_tenant(path)


def books(config) -> tuple:
    with opened(config.duckdb_path()) as con:
        entries = query(con, "SELECT e.source, e.business_date, count(*) AS lines, sum(l.debit) AS debit, "
                             "sum(l.credit) AS credit FROM journal_line l JOIN journal_entry e USING (entry_id) "
                             "GROUP BY ALL ORDER BY ALL").rows()
        items = query(con, "SELECT item_id, kind, amount_open FROM open_item ORDER BY item_id").rows()
    return entries, items


def test_a_configured_pms_and_a_processor_close_like_the_demo(tmp_path, systems, monkeypatch):
    daily = tenant(tmp_path / "daily", systems, monkeypatch)
    summary = close_periods(daily, DAYS, window=False, run_id="daily-1", steps=PLAIN_STEPS)
    assert sorted(s.source for s in summary.stages) == ["cards", "pms"]
    assert [j.source for j in summary.journals] == ["pms"]  # only sales are journalled per day
    assert summary.open_rejects == 0 and summary.export_problems == []
    entries, items = books(daily)
    assert {(source, day) for source, day, *_ in entries} == {("pms", d.start) for d in DAYS}
    assert all(debit == credit for *_, debit, credit in entries)
    assert [(kind, amount) for _, kind, amount in items] == [("payout", Decimal("246.00"))]
    assert summary.trial_balance is not None and summary.trial_balance.height

    close_periods(daily, DAYS, window=False, run_id="daily-2", steps=PLAIN_STEPS)
    assert books(daily) == (entries, items)

    backfilled = tenant(tmp_path / "backfill", systems, monkeypatch)
    close_periods(backfilled, DAYS, window=True, run_id="backfill-1", steps=PLAIN_STEPS)
    assert books(backfilled) == (entries, items)


def test_a_processor_that_cannot_be_read_is_named_and_the_sales_are_closed(tmp_path, systems, monkeypatch):
    config = tenant(tmp_path, systems, monkeypatch)
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_revoked")
    summary = close_periods(config, DAYS, window=False, run_id="daily-1", steps=PLAIN_STEPS)
    assert [name for name, _ in summary.unread] == ["cards"] and "STRIPE_API_KEY" in summary.unread[0][1]
    entries, items = books(config)
    assert {source for source, *_ in entries} == {"pms"} and items == []
    state = summary.final_state()
    assert state.name == "CompletedWithWarnings" and "source cards not read" in state.message

    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_KEY)  # renewed: the next close brings what waited
    close_periods(config, DAYS, window=False, run_id="daily-2", steps=PLAIN_STEPS)
    assert [kind for _, kind, _ in books(config)[1]] == ["payout"]


def test_a_pms_that_cannot_be_read_stops_the_close_with_its_name(tmp_path, systems, monkeypatch):
    config = tenant(tmp_path, systems, monkeypatch)
    monkeypatch.setenv("FOLIO_CLOUD_API_KEY", "revoked")
    with pytest.raises(ExtractError, match="FOLIO_CLOUD_API_KEY"):
        close_periods(config, DAYS, window=False, run_id="daily-1", steps=PLAIN_STEPS)
