"""The reconcile run against a real DuckDB file: inbox, match trail, decisions, bank journal,
alerts, and the Prefect flow with its artifacts."""

from __future__ import annotations

import csv
import io
import json
import threading
import tomllib
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import tomli_w

from flows.reconcile import reconcile_tenant
from schemas.tables import JournalLine
from schemas.tenant import PACKAGED_TENANTS, load_tenant
from schemas.validate import require_valid
from sources.recon_csv import BANK_COLUMNS, DECISION_COLUMNS, ITEM_COLUMNS, read_table
from warehouse.db import opened, query
from warehouse.recon import apply_decisions, review_rows, store_bank_journal

OURS = "FR7630006000011234567890189"
NOW = datetime(2026, 4, 2, 6, 0, tzinfo=UTC)


def _write(path: Path, columns, rows: list[dict]) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[c.name for c in columns], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def bank(bank_line_id, amount, text="", day="2026-03-20", **extra):
    return {"bank_line_id": bank_line_id, "bank_account": OURS, "booking_date": day, "amount": amount,
            "currency": "EUR", "remittance_info": text, **extra}


def item(item_id, amount, doc, kind="invoice", issue="2026-03-01", **extra):
    return {"item_id": item_id, "kind": kind, "document_number": doc, "issue_date": issue, "amount_open": amount,
            "currency": "EUR", **extra}


BANK = [
    bank("B1", "1200.00", "FACTURE FA-1001"),
    bank("B2", "491.50", "VIR FA-1002 FRAIS", day="2026-03-21"),  # 8.50 short: a bank fee
    bank("B3", "300.00", counterparty_name="ALPINE CONSULTING", day="2026-03-22"),  # two items of 300
    bank("B4", "-1865.40", "PRLV SEPA BL-202603", day="2026-03-10"),
    bank("B5", "-48210.55", "SALAIRES 03/2026", day="2026-03-28"),
    bank("B6", "2940.00", "REMISE CB CB20260318", day="2026-03-20"),
]
ITEMS = [
    item("I1", "1200.00", "FA-1001", partner_name="Nordic Travel AB"),
    item("I2", "500.00", "FA-1002", partner_name="Savoie Événements SARL"),
    item("I3", "300.00", "FA-1003", partner_name="Alpine Consulting SAS"),
    item("I4", "300.00", "FA-1004", partner_name="Alpine Consulting SAS"),
    item("I5", "-1865.40", "BL-202603", kind="bill", partner_name="Savoie Blanchisserie SAS"),
    item("I6", "2975.70", "CB20260318", kind="payout", partner_name="Monext"),
    item("I7", "80.00", "FA-0999", issue="2026-01-05", due_date="2026-02-04", partner_name="Old Client"),
]


@pytest.fixture
def tenant(tmp_path):
    document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
    document.update(data_dir=str(tmp_path / "data"), sources={}, destinations={})
    path = tmp_path / "tenant.toml"
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return load_tenant(path)


def drop(tenant, kind: str, name: str, rows: list[dict]) -> Path:
    return _write(tenant.inbox_path() / kind / name, BANK_COLUMNS if kind == "bank" else ITEM_COLUMNS, rows)


def sql(tenant, text: str) -> pl.DataFrame:
    with opened(tenant.duckdb_path()) as con:
        return query(con, text)


def test_a_run_matches_books_and_keeps_the_trail(tenant):
    drop(tenant, "items", "items.csv", ITEMS)
    drop(tenant, "bank", "statement.csv", BANK)
    summary = reconcile_tenant(tenant, run_id="run-1", as_of=date(2026, 4, 1), now=NOW, notify=False)
    matches = sql(tenant, "SELECT bank_line_id, item_id, amount_applied, rule, reason, decision, run_id FROM match "
                          "ORDER BY bank_line_id, item_id NULLS LAST")
    rows = {(b, i): (str(a), r, why) for b, i, a, r, why, _, _ in matches.iter_rows()}
    assert rows[("B1", "I1")] == ("1200.00", "exact_ref_amount", None)
    assert rows[("B2", "I2")] == ("500.00", "exact_ref_amount", None)
    assert rows[("B2", None)] == ("-8.50", "write_off", "bank_fee")
    assert rows[("B4", "I5")] == ("-1865.40", "exact_ref_amount", None)
    assert rows[("B6", "I6")][1] == "payout" and rows[("B6", None)] == ("-35.70", "write_off", "processor_fee")
    assert set(matches["decision"]) == {"auto"} and set(matches["run_id"]) == {"run-1"}
    assert "B3" not in matches["bank_line_id"].to_list()  # two open items of 300 from that partner
    assert sql(tenant, "SELECT bank_line_id, item_id FROM match_suggestion ORDER BY ALL").rows() == [
        ("B3", "I3"), ("B3", "I4")]
    kinds = set(sql(tenant, "SELECT kind FROM discrepancy")["kind"])
    assert {"suggestion", "unmatched_line", "stale_item", "write_off"} <= kinds
    # the bank journal: balanced lines, bank 512000 against receivables, payables, card clearing, fees
    lines = sql(tenant, "SELECT * FROM journal_line WHERE entry_id IN (SELECT entry_id FROM journal_entry "
                        "WHERE source = 'bank') ORDER BY entry_id, line_no")
    require_valid(JournalLine, lines.cast({c: t for c, t in lines.schema.items()}), "bank journal")
    assert set(lines["account"]) == {"512000", "411100", "401000", "511200", "627000"}
    assert set(lines["journal_code"]) == {"BQ"}
    assert summary.final_state().name == "CompletedWithWarnings"


def test_rerunning_changes_nothing(tenant):
    drop(tenant, "items", "items.csv", ITEMS)
    drop(tenant, "bank", "statement.csv", BANK)
    reconcile_tenant(tenant, run_id="run-1", as_of=date(2026, 4, 1), now=NOW, notify=False)
    before = {t: sql(tenant, f"SELECT * FROM {t} ORDER BY ALL") for t in ("match", "journal_entry", "journal_line")}
    again = reconcile_tenant(tenant, run_id="run-2", as_of=date(2026, 4, 1), now=NOW, notify=False)
    after = {t: sql(tenant, f"SELECT * FROM {t} ORDER BY ALL") for t in before}
    assert again.recorded.new_rows == 0 and again.new_problems.is_empty()
    for table in before:
        assert before[table].equals(after[table]), table
    # the same file delivered again under another name adds nothing either
    drop(tenant, "bank", "statement-copy.csv", BANK)
    third = reconcile_tenant(tenant, run_id="run-3", as_of=date(2026, 4, 1), now=NOW, notify=False)
    assert third.recorded.new_rows == 0 and sql(tenant, "SELECT count(*) AS n FROM bank_line").item() == len(BANK)


def test_a_bad_file_is_quarantined_with_its_reason_and_the_good_ones_go_on(tenant):
    drop(tenant, "items", "items.csv", ITEMS)
    drop(tenant, "bank", "good.csv", BANK[:2])
    bad = drop(tenant, "bank", "bad.csv", [bank("X1", "12,50", "comma decimal")])
    summary = reconcile_tenant(tenant, run_id="run-1", as_of=date(2026, 4, 1), now=NOW, notify=False)
    quarantine = tenant.inbox_path() / "quarantine"
    assert not bad.exists() and (quarantine / "bad.csv").exists()
    reason = (quarantine / "bad.csv.reason.txt").read_text()
    assert "line 2, column amount" in reason and "'12,50'" in reason
    assert summary.inbox.loaded == [("good.csv", 2), ("items.csv", 7)]
    assert sql(tenant, "SELECT count(*) AS n FROM match WHERE bank_line_id = 'B1'").item() == 1
    assert sql(tenant, "SELECT count(*) AS n FROM rejects WHERE stage = 'reconcile'").item() == 1
    assert summary.final_state().name == "CompletedWithRejects"


def test_a_bank_line_id_reused_for_other_content_is_rejected_not_overwritten(tenant):
    drop(tenant, "bank", "one.csv", BANK[:1])
    reconcile_tenant(tenant, run_id="run-1", as_of=date(2026, 4, 1), now=NOW, notify=False)
    drop(tenant, "bank", "two.csv", [bank("B1", "999.00", "other"), BANK[1]])
    summary = reconcile_tenant(tenant, run_id="run-2", as_of=date(2026, 4, 1), now=NOW, notify=False)
    assert summary.inbox.row_rejects == 1
    assert sql(tenant, "SELECT amount FROM bank_line WHERE bank_line_id = 'B1'").item() == Decimal("1200.00")
    assert sql(tenant, "SELECT count(*) AS n FROM bank_line").item() == 2


def _decide(tenant, rows: list[dict], run_id: str):
    path = _write(tenant.data_path() / f"{run_id}.csv", DECISION_COLUMNS, rows)
    with opened(tenant.duckdb_path()) as con:
        applied = apply_decisions(con, read_table(path, DECISION_COLUMNS), run_id=run_id, now=NOW,
                                  decided_by="claire")
        store_bank_journal(con, tenant, run_id=run_id, now=NOW)
    return applied


def test_review_then_decide_confirm_reject_and_reverse(tenant):
    drop(tenant, "items", "items.csv", ITEMS)
    drop(tenant, "bank", "statement.csv", BANK)
    reconcile_tenant(tenant, run_id="run-1", as_of=date(2026, 4, 1), now=NOW, notify=False)
    with opened(tenant.duckdb_path()) as con:
        review = review_rows(con)
    assert review.filter(pl.col("bank_line_id") == "B3")["item_id"].to_list() == ["I3", "I4"]
    assert "B5" in review["bank_line_id"].to_list()  # salaries: unmatched, listed for a person to see

    applied = _decide(tenant, [
        {"bank_line_id": "B3", "item_id": "I4", "decision": "confirm", "note": "remittance advice by mail"},
        {"bank_line_id": "B3", "item_id": "I3", "decision": "reject"},
        {"bank_line_id": "B1", "item_id": "I1", "decision": "reverse", "note": "paid by the wrong company"},
        {"bank_line_id": "B9", "item_id": "I1", "decision": "confirm"},
        {"bank_line_id": "B5", "item_id": "", "decision": ""},  # left for later
    ], "decide-1")
    assert (applied.confirmed, applied.rejected, applied.reversed) == (1, 2, 1)
    assert applied.problems == ["decisions: row 4 (B9, I1): unknown bank line"]
    trail = sql(tenant, "SELECT bank_line_id, item_id, amount_applied, decision, reverses IS NOT NULL AS undo, "
                        "decided_by FROM match WHERE run_id = 'decide-1' ORDER BY ALL")
    assert ("B1", "I1", Decimal("-1200.00"), "reversed", True, "claire") in trail.rows()
    assert ("B3", "I4", Decimal("300.00"), "confirmed", False, "claire") in trail.rows()

    # the next run neither re-matches the reversed pair nor proposes the rejected one again
    again = reconcile_tenant(tenant, run_id="run-2", as_of=date(2026, 4, 1), now=NOW, notify=False)
    assert again.recorded.new_rows == 0
    assert sql(tenant, "SELECT count(*) AS n FROM match_suggestion WHERE bank_line_id IN ('B1', 'B3')").item() == 0
    assert "B1" in again.report["unmatched_lines"]
    # and the same decisions applied twice record nothing new
    assert _decide(tenant, [{"bank_line_id": "B3", "item_id": "I4", "decision": "confirm"},
                            {"bank_line_id": "B3", "item_id": "I3", "decision": "reject"}], "decide-2").confirmed == 0
    assert sql(tenant, "SELECT count(*) AS n FROM match WHERE run_id = 'decide-2'").item() == 0


class _Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps what it receives."""

    def __init__(self) -> None:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        self.received: list[dict] = []

        async def hook(request):
            self.received.append(json.loads(await request.body()))
            return JSONResponse({"ok": True})

        config = uvicorn.Config(Starlette(routes=[Route("/hook", hook, methods=["POST"])]), host="127.0.0.1", port=0,
                                log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            pass
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}/hook"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def test_new_problems_are_alerted_once(tmp_path):
    receiver = _Receiver()
    try:
        document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
        document.update(data_dir=str(tmp_path / "data"), sources={}, destinations={},
                        notify={"webhook_url": receiver.url})
        (tmp_path / "tenant.toml").write_text(tomli_w.dumps(document), encoding="utf-8")
        tenant = load_tenant(tmp_path / "tenant.toml")
        drop(tenant, "items", "items.csv", ITEMS)
        drop(tenant, "bank", "statement.csv", BANK)
        first = reconcile_tenant(tenant, run_id="run-1", as_of=date(2026, 4, 1), now=NOW)
        assert [d.ok for d in first.deliveries] == [True]
        (alert,) = receiver.received
        counts = alert["payload"]["counts"]
        assert counts["stale_item"] == 3 and counts["write_off"] == 2
        assert "unmatched_line" not in counts  # the salaries line is 4 days old: not alerted before 14
        assert "I7" in alert["text"]
        second = reconcile_tenant(tenant, run_id="run-2", as_of=date(2026, 4, 1), now=NOW)
        assert second.deliveries == [] and len(receiver.received) == 1
    finally:
        receiver.stop()


def test_the_flow_publishes_its_artifacts(tenant, prefect_api):
    from prefect.client.orchestration import get_client

    from flows.reconcile import reconcile

    drop(tenant, "items", "items.csv", ITEMS)
    drop(tenant, "bank", "statement.csv", BANK)
    state = reconcile(str(tenant.data_path().parent / "tenant.toml"), "bank-file", date(2026, 4, 1),
                      return_state=True)
    assert state.name == "CompletedWithWarnings" and "4 of 6 open bank lines matched" in state.message

    async def artifacts():
        async with get_client() as client:
            return {a.key: a.data for a in await client.read_latest_artifacts()}

    import asyncio

    published = asyncio.run(artifacts())
    assert "| exact_ref_amount | 3 |" in published["demo-match-summary"]
    assert "B3" in published["demo-unmatched"]


def test_a_dropped_file_lands_in_the_inbox_whole_and_emits_its_event(tenant, tmp_path, prefect_api):
    from flows.events import drop

    source = _write(tmp_path / "statement.csv", BANK_COLUMNS, BANK)
    target, emitted = drop(tenant, "bank", source)
    assert target == tenant.inbox_path() / "bank" / "statement.csv" and emitted
    assert target.read_bytes() == source.read_bytes() and not list(target.parent.glob(".*part"))
    with pytest.raises(ValueError, match="kind 'invoices'"):
        drop(tenant, "invoices", source)


def test_review_and_decide_from_the_command_line(tenant):
    from tests.test_cli import ledgerflow

    drop(tenant, "items", "items.csv", ITEMS)
    drop(tenant, "bank", "statement.csv", BANK)
    reconcile_tenant(tenant, run_id="run-1", as_of=date(2026, 4, 1), now=NOW, notify=False)
    tenant_file = str(tenant.data_path().parent / "tenant.toml")
    review = tenant.data_path() / "review.csv"
    result = ledgerflow("reconcile", "review", tenant_file, "--out", str(review))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(review.open(encoding="utf-8")))
    assert [(r["bank_line_id"], r["item_id"]) for r in rows if r["bank_line_id"] == "B3"] == [("B3", "I3"),
                                                                                             ("B3", "I4")]
    for row in rows:
        row["decision"] = "confirm" if (row["bank_line_id"], row["item_id"]) == ("B3", "I3") else ""
    with review.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = ledgerflow("reconcile", "decide", tenant_file, str(review), "--by", "claire")
    assert result.returncode == 0, result.stderr
    assert "confirmed 1, rejected 0, reversed 0" in result.stdout
    assert sql(tenant, "SELECT decided_by FROM match WHERE decision = 'confirmed'").item() == "claire"
    bad = tenant.data_path() / "bad.csv"
    bad.write_text("bank_line_id,item_id,decision\nB5,I1,maybe\n", encoding="utf-8")
    result = ledgerflow("reconcile", "decide", tenant_file, str(bad))
    assert result.returncode == 2 and "bad.csv: line 2, column decision: must be one of" in " ".join(result.stderr.split())


def test_an_item_redelivered_as_paid_is_settled_never_open_the_other_way(tenant):
    drop(tenant, "items", "items.csv", ITEMS[:1])
    drop(tenant, "bank", "one.csv", BANK[:1])
    reconcile_tenant(tenant, run_id="run-1", as_of=date(2026, 4, 1), now=NOW, notify=False)
    drop(tenant, "items", "items-2.csv", [{**ITEMS[0], "amount_open": "0.00"}])  # the source recorded the payment
    drop(tenant, "bank", "two.csv", [bank("B9", "-1200.00", "refund FA-1001", day="2026-03-25")])
    summary = reconcile_tenant(tenant, run_id="run-2", as_of=date(2026, 4, 1), now=NOW, notify=False)
    assert summary.recorded.new_rows == 0
    assert sql(tenant, "SELECT count(*) AS n FROM match WHERE bank_line_id = 'B9'").item() == 0


def test_decisions_never_apply_money_twice(tenant):
    drop(tenant, "items", "items.csv", [item("I1", "300.00", "FA-9")])
    drop(tenant, "bank", "statement.csv", [bank("B1", "100.00", "thanks")])
    reconcile_tenant(tenant, run_id="run-1", as_of=date(2026, 4, 1), now=NOW, notify=False)
    confirm = [{"bank_line_id": "B1", "item_id": "I1", "decision": "confirm", "amount_applied": "40.00"}]
    assert _decide(tenant, confirm, "decide-1").confirmed == 1
    assert _decide(tenant, confirm, "decide-2").confirmed == 0  # the same file applied again
    # confirm then reverse in one file: nothing stays applied
    applied = _decide(tenant, [{"bank_line_id": "B1", "item_id": "I1", "decision": "reverse"}], "decide-3")
    assert applied.reversed == 1
    active = sql(tenant, "SELECT coalesce(sum(amount_applied), 0) AS s FROM match WHERE decision IN "
                         "('confirmed', 'reversed', 'auto')").item()
    assert active == Decimal("0.00")
