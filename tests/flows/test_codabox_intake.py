"""The CodaBox-style API as a tenant's bank source (fake server on 127.0.0.1): CODA statements
become bank lines exactly once, SODA payroll documents become balanced journal entries, and a
CODA document that does not add up is quarantined while the rest goes on."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import tomli_w

from flows.bank_intake import take_bank_sources
from schemas.tenant import PACKAGED_TENANTS, load_tenant
from sources.codabox.fake import SOFTWARE_COMPANY, TOKEN, CodaboxServer, CodaboxStore
from warehouse.db import opened, query

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
BAKERY = "BE0477472701"


@pytest.fixture(scope="module")
def server():
    with CodaboxServer(CodaboxStore()) as running:
        yield running


@pytest.fixture
def tenant(tmp_path, server, monkeypatch):
    server.store = CodaboxStore.demo()
    monkeypatch.setenv("CODABOX_TOKEN", TOKEN)
    monkeypatch.setenv("CODABOX_SOFTWARE_COMPANY", SOFTWARE_COMPANY)
    document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
    document.update(data_dir=str(tmp_path / "data"), destinations={},
                    sources={"codabox": {"type": "codabox", "base_url": server.url, "vat_number": BAKERY}})
    path = tmp_path / "tenant.toml"
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return load_tenant(path)


def counts(tenant) -> dict[str, int]:
    with opened(tenant.duckdb_path()) as con:
        return {table: query(con, f"SELECT count(*) AS n FROM {table}")["n"][0]
                for table in ("bank_line", "bank_statement", "journal_entry")}


def test_coda_and_soda_documents_are_taken_once(tenant, server):
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    assert intake.failed == [] and intake.quarantined == []
    assert [(f.endswith(".cod"), n) for _, f, n in intake.loaded] == [(True, 2)]
    assert counts(tenant) == {"bank_line": 2, "bank_statement": 1, "journal_entry": 1}
    assert server.store.pending(server.store.client(BAKERY)) == []  # acknowledged after the load
    with opened(tenant.duckdb_path()) as con:
        lines = query(con, "SELECT amount, remittance_info FROM bank_line ORDER BY amount")
        journal = query(con, "SELECT sum(l.debit) AS d, sum(l.credit) AS c, min(e.business_date) AS day "
                             "FROM journal_line l JOIN journal_entry e USING (entry_id) "
                             "WHERE e.source = 'codabox_soda'")
    assert lines["amount"].to_list() == [Decimal("-415.60"), Decimal("1830.25")]
    assert "+++090/9337/55493+++" in lines["remittance_info"].to_list()[0]
    assert journal["d"][0] == journal["c"][0] > 0 and journal["day"][0] == date(2026, 2, 28)
    again = take_bank_sources(tenant, run_id="r2", now=NOW)
    assert again.loaded == [] and counts(tenant) == {"bank_line": 2, "bank_statement": 1, "journal_entry": 1}


def test_purchase_invoices_become_bills_to_match_supplier_payments(tenant):
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    assert [f for _, f in intake.items] == ["INV-2026-0042.xml"]
    with opened(tenant.duckdb_path()) as con:
        item = query(con, "SELECT * FROM open_item").row(0, named=True)
    assert (item["kind"], item["document_number"], item["amount_open"], item["partner_name"]) == (
        "bill", "INV-2026-0042", Decimal("-992.20"), "Meelfabriek NV")
    assert take_bank_sources(tenant, run_id="r2", now=NOW).items == []


def test_a_purchase_invoice_without_an_amount_is_quarantined(tenant, server):
    store = server.store
    document = store.add_invoice(store.client(BAKERY), number="BAD-1", issued=date(2026, 3, 1), supplier="X",
                                 net=Decimal("10.00"))
    xml = document.files["xml"]
    document.files["xml"] = (xml[0], xml[1].replace(b">12.10</cbc:PayableAmount>", b">12,10</cbc:PayableAmount>"))
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    bad = [reason for name, reason in intake.quarantined if "BAD-1" in name]
    assert bad and "<cbc:PayableAmount> '12,10' is not an amount" in bad[0]
    assert [f for _, f in intake.items] == ["INV-2026-0042.xml"]  # the good one went on


def test_a_coda_document_that_does_not_add_up_is_quarantined(tenant, server):
    store = server.store
    bakery = store.client(BAKERY)
    document = store.add_coda(bakery, iban="BE68539007547034", statement_no=42, day=date(2026, 3, 2),
                              old_balance=Decimal("13914.65"), movements=[(Decimal("10.00"), "x")])
    cod = document.files["cod"]
    document.files["cod"] = (cod[0], cod[1].replace(b"0000000013924650", b"0000000099999990"))  # new balance
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    assert len(intake.quarantined) == 1 and "closing balance" in intake.quarantined[0][1]
    assert counts(tenant)["bank_line"] == 2  # the good statement went on
    assert list((tenant.data_path() / "quarantine" / "codabox").glob("*.reason.txt"))


def test_a_missing_token_is_reported_not_raised(tenant, monkeypatch):
    monkeypatch.delenv("CODABOX_TOKEN")
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    assert "CODABOX_TOKEN" in intake.failed[0][1]
