"""A reconcile run with item sources (issue 8): it pulls Stripe's payouts and the training system's
invoices first, matches the bank's lines against them, tells the training system what the bank
paid, and settles the webhook events the pull covered. Real fakes on 127.0.0.1, a real DuckDB
file, the plain functions the reconcile flow wraps (no Prefect: its harness is tested elsewhere)."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from flows.reconcile import reconcile_tenant
from schemas.tenant import PACKAGED_TENANTS, parse_tenant
from sources.stripe.fake import API_KEY, StripeServer, StripeStore
from sources.training.fake import TOKEN, TrainingServer, TrainingStore
from warehouse.db import opened, query

OUR_IBAN = "FR7630006000011234567890189"
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def servers(shared_dir):
    spec = shared_dir / "specs" / "stripe" / "spec3.json"
    with StripeServer(StripeStore(spec_path=spec)) as stripe, TrainingServer(TrainingStore()) as training:
        yield stripe, training, spec


@pytest.fixture
def world(servers, tmp_path, monkeypatch):
    stripe_server, training_server, spec = servers
    stripe_server.store, training_server.store = StripeStore(spec_path=spec), TrainingStore()
    monkeypatch.setenv("STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("TRAINING_API_TOKEN", TOKEN)
    document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
    document.update(data_dir=str(tmp_path / "data"), destinations={})
    document["sources"] = {
        "stripe": {"type": "stripe", "base_url": stripe_server.url, "payout_bank_account": OUR_IBAN,
                   "lookback_days": 30},
        "courses": {"type": "training", "base_url": training_server.url, "bank_account": OUR_IBAN,
                    "lookback_days": 30, "retries": 1, "backoff_seconds": 0.01},
    }
    tenant = parse_tenant(document, "test tenant")
    stripe, training = stripe_server.store, training_server.store
    charge = stripe.add_charge(10_000, "eur", datetime(2026, 3, 3, 15, tzinfo=UTC), fee=320)
    payout = stripe.add_payout(datetime(2026, 3, 4, tzinfo=UTC), date(2026, 3, 6),
                               settles=[charge["balance_transaction"]], status="paid")
    invoice = training.add_invoice("TR-100", "1200.00")
    bank = tenant.inbox_path() / "bank"
    bank.mkdir(parents=True)
    (bank / "statement.csv").write_text(
        "bank_line_id,bank_account,booking_date,amount,currency,counterparty_name,remittance_info\n"
        f"B1,{OUR_IBAN},2026-03-06,96.80,EUR,STRIPE PAYMENTS EUROPE,STRIPE PAYOUT {payout['id']}\n"
        f"B2,{OUR_IBAN},2026-03-09,1200.00,EUR,Acme Training Buyers Ltd,Invoice TR-100\n", encoding="utf-8")
    events = tenant.inbox_path() / "webhooks" / "courses"
    events.mkdir(parents=True)
    (events / "evt_000001.json").write_text(json.dumps({"event": training.events[0]}), encoding="utf-8")
    return tenant, stripe, training, payout, invoice


def matches(tenant) -> list[tuple]:
    with opened(tenant.duckdb_path()) as con:
        return query(con, "SELECT bank_line_id, item_id, amount_applied FROM match WHERE item_id IS NOT NULL "
                          "ORDER BY bank_line_id").rows()


def test_payouts_and_invoices_from_sources_are_matched_and_the_training_system_is_told(world):
    tenant, _, training, payout, invoice = world
    summary = reconcile_tenant(tenant, run_id="run-1", now=NOW, notify=False)  # the daily close: no pull
    assert summary.sources.staged == [] and matches(tenant) == []

    summary = reconcile_tenant(tenant, run_id="run-2", now=NOW, notify=False, refresh=True)
    assert dict(summary.sources.staged) == {"stripe": 1, "courses": 1} and summary.sources.failed == []
    assert matches(tenant) == [("B1", f"stripe:{payout['id']}", Decimal("96.80")),
                               ("B2", f"courses:{invoice['id']}", Decimal("1200.00"))]
    assert [(p["source"], p["amount"]) for p in training.payments_of(invoice["id"])] == [("ledgerflow", "1200.00")]
    assert summary.pushes[0].payments_pushed == 1 and summary.push_problems == []
    assert summary.sources.events == [("courses", 1)]
    # The payout came net of Stripe's fee: the fee leaves the card clearing account for the fee account.
    with opened(tenant.duckdb_path()) as con:
        fees = query(con, "SELECT e.business_date, l.account, l.debit, l.credit FROM journal_line l JOIN journal_entry e "
                          "USING (entry_id) WHERE e.source = 'stripe' ORDER BY l.line_no").rows()
    assert fees == [(date(2026, 3, 3), "627000", Decimal("3.20"), Decimal("0.00")),
                    (date(2026, 3, 3), "511200", Decimal("0.00"), Decimal("3.20"))]
    processed = tenant.inbox_path() / "webhooks" / "courses" / "processed"
    assert (processed / "evt_000001.json").is_file()
    assert (processed / "settled.log").read_text() == "run-2\tevt_000001.json\n"

    again = reconcile_tenant(tenant, run_id="run-3", now=NOW, notify=False, refresh=True)
    assert again.pushes[0].payments_pushed == 0 and len(training.payments_of(invoice["id"])) == 1
    assert again.sources.events == [] and len(matches(tenant)) == 2
    with opened(tenant.duckdb_path()) as con:
        assert query(con, "SELECT count(*) AS n FROM journal_entry WHERE source = 'stripe'")["n"].item() == 1
    assert again.final_state().name == "Completed"


def test_a_source_that_cannot_be_read_is_reported_and_the_others_go_on(world, monkeypatch):
    tenant, _, training, payout, invoice = world
    monkeypatch.delenv("TRAINING_API_TOKEN")
    summary = reconcile_tenant(tenant, run_id="run-1", now=NOW, notify=False, refresh=True)
    assert [name for name, _ in summary.sources.failed] == ["courses"]
    assert "TRAINING_API_TOKEN" in summary.sources.failed[0][1]
    assert matches(tenant) == [("B1", f"stripe:{payout['id']}", Decimal("96.80"))]
    assert (tenant.inbox_path() / "webhooks" / "courses" / "evt_000001.json").is_file()  # not settled: not pulled
    state = summary.final_state()
    assert state.name == "CompletedWithWarnings" and "source courses not read" in state.message
    assert any("TRAINING_API_TOKEN" in failure for push in summary.pushes for failure in push.failed)
    assert training.payments_of(invoice["id"]) == []
