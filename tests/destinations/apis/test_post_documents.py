"""Posting a hotel's issued invoices, credit notes and their payments (``post = "documents"``) to
Xero and QuickBooks Online (the stateful fakes on 127.0.0.1, every request checked against the
official descriptions): each once, with its customer, totals to the cent as ours."""

from __future__ import annotations

import csv
import io
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from destinations.apis.fakes.qbo import ACCESS_TOKEN, FakeQbo
from destinations.apis.fakes.qbo import CLIENT_ID as QBO_CLIENT_ID
from destinations.apis.fakes.qbo import CLIENT_SECRET as QBO_CLIENT_SECRET
from destinations.apis.fakes.xero import CLIENT_ID as XERO_CLIENT_ID
from destinations.apis.fakes.xero import CLIENT_SECRET as XERO_CLIENT_SECRET
from destinations.apis.fakes.xero import FakeXero
from destinations.apis.limiter import RateLimiter
from destinations.apis.oauth import FileTokenStore, Tokens
from destinations.exports.invoices import read_invoices, totals
from flows.post import _attempting, api_for, documents_from_ledger, post_period
from sources.recon_csv import BANK_COLUMNS, ITEM_COLUMNS
from tests.destinations.apis.clock import Clock
from tests.hotel import Hotel
from warehouse.db import opened
from warehouse.invoices import take_invoice_inbox

START, END = date(2026, 3, 1), date(2026, 3, 31)
GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "ubl"
OUR_IBAN = "FR7630006000011234567890189"  # the demo tenant's bank account, GL 512000
STANDARD = read_invoices(GOLDEN / "standard.invoices.csv")[0]  # F-2026-0042, Société Ågren & Fils
# F-2026-0043, intra-community (no VAT): what the payment tests pay, since the fake QBO computes no tax
# (its balance of an invoice is the net) and a payment of a taxed invoice's total would exceed it there
INTRA = read_invoices(GOLDEN / "intra_community.invoices.csv")[0]
TAX_CODES = {"S:10": "OUTPUT10", "S:20": "OUTPUT20", "K:0": "ECZROUTPUTSERVICES"}
# The fakes' rate windows and the client's limiter on one clock that jumps instead of sleeping: the
# client spaces its calls as it would in real time (QBO: 10 a second) and waiting costs nothing.
CLOCK = Clock(1_000.0)
COMMON = {"schedule": "monthly", "client_id_env": "TEST_DOCS_CLIENT_ID", "client_secret_env": "TEST_DOCS_CLIENT_SECRET",
          "timeout_seconds": 2, "post": "documents"}


@pytest.fixture(scope="module")
def fake_xero(shared_dir):
    with FakeXero(tenants=("Hôtel du Lac SARL",), specs=shared_dir / "specs" / "xero", now=CLOCK) as fake:
        yield fake


@pytest.fixture(scope="module")
def fake_qbo(shared_dir):
    with FakeQbo(xsd_dir=shared_dir / "specs" / "qbo", now=CLOCK) as fake:
        yield fake


@pytest.fixture(scope="module")
def closed(tmp_path_factory, fake_xero, fake_qbo):
    """The demo hotel with a closed day (journals it must not post) and two document destinations."""
    hotel = Hotel(tmp_path_factory.mktemp("documents-hotel"), **{
        "destinations.xero": {**COMMON, "type": "xero", "organisation": fake_xero.tenant_id,
                              "base_url": fake_xero.api_url, "token_url": fake_xero.token_url,
                              "token_store": "file:tokens/xero.json", "sales_account": "200",
                              "tax_codes": TAX_CODES, "payment_accounts": {"512000": "090"}},
        "destinations.books": {**COMMON, "type": "qbo", "organisation": fake_qbo.realm, "base_url": fake_qbo.url,
                               "token_url": fake_qbo.token_url, "token_store": "file:tokens/qbo.json",
                               "item": "1", "tax_codes": {"S:10": "3", "S:20": "4", "K:0": "5"},
                               "payment_accounts": {"512000": "35"}}})
    hotel.close_day(START)
    hotel.stop()
    hotel.closed_data = hotel.tenant.data_path()
    return hotel


@dataclass
class Books:
    """One destination and the fake behind it, read the same way for both systems."""

    hotel: Hotel
    system: str
    destination: str
    server: FakeXero | FakeQbo

    def _objects(self, xero: str, qbo: str) -> list[dict]:
        if self.system == "xero":
            return list(self.server._first(xero))
        return list(self.server.entities[qbo].values())

    invoices = property(lambda self: self._objects("Invoices", "Invoice"))
    credit_notes = property(lambda self: self._objects("CreditNotes", "CreditMemo"))
    customers = property(lambda self: self._objects("Contacts", "Customer"))
    payments = property(lambda self: self._objects("Payments", "Payment"))
    journals = property(lambda self: self._objects("ManualJournals", "JournalEntry"))

    def numbers(self) -> list[str]:
        field = "InvoiceNumber" if self.system == "xero" else "DocNumber"
        return sorted(invoice[field] for invoice in self.invoices)

    def customer_creations(self) -> int:
        if self.system == "xero":
            return sum(1 for r in self.server.requests if r.method == "PUT" and r.path.endswith("/Contacts"))
        return sum(1 for method, target in self.server.requests if method == "POST" and "/customer?" in target)

    def add_customer(self, name: str) -> None:
        if self.system == "xero":
            self.server.organisations[self.server.tenant_id].save("Contacts", {"Name": name})
        else:
            self.server.add_customer(name)

    def refuse(self, number: str, message: str) -> str:
        """The next post of invoice ``number`` is refused; the words the system will use."""
        if self.system == "xero":
            self.server.fail_next("validation", element_contains=number, path_contains="Invoices", message=message)
            return message
        self.server.fail_next("validation", marker=number)
        return "injected validation fault"

    def api(self):
        return api_for(self.hotel.tenant, self.destination, limiter=RateLimiter(now=CLOCK, sleep=CLOCK.sleep),
                       sleep=CLOCK.sleep, backoff=0.01)

    def post(self):
        return post_period(self.hotel.tenant, self.destination, START, END, run_id="test", api=self.api())

    def drop_invoices(self, name: str, source: Path | None = None, text: str | None = None) -> None:
        folder = self.hotel.tenant.inbox_path() / "invoices"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text if text is not None else source.read_text(encoding="utf-8"), encoding="utf-8")


@pytest.fixture(params=["xero", "qbo"])
def books(request, closed, monkeypatch, tmp_path):
    """The closed hotel on a fresh copy of its DuckDB file, the golden invoices in its inbox, and a
    fresh fake of the system; every request the test made is checked against the spec at the end."""
    system = request.param
    server = request.getfixturevalue(f"fake_{system}")
    monkeypatch.setenv("TEST_DOCS_CLIENT_ID", XERO_CLIENT_ID if system == "xero" else QBO_CLIENT_ID)
    monkeypatch.setenv("TEST_DOCS_CLIENT_SECRET", XERO_CLIENT_SECRET if system == "xero" else QBO_CLIENT_SECRET)
    server.reset()
    copy = tmp_path / "data"
    shutil.copytree(closed.closed_data, copy, ignore=shutil.ignore_patterns("dlt", "tokens"))
    closed.reconfigure(lambda doc: doc.update(data_dir=str(copy)))
    if system == "xero":
        issued = server.issue_tokens([server.tenant_id])
        tokens = Tokens(issued["access_token"], issued["refresh_token"], time.time() + issued["expires_in"])
    else:
        tokens = Tokens(ACCESS_TOKEN, "unused-refresh-token", time.time() + 3000)
    FileTokenStore(copy / "tokens" / f"{system}.json").save(tokens)
    side = Books(closed, system, "xero" if system == "xero" else "books", server)
    for golden in sorted(GOLDEN.glob("*.invoices.csv")):
        side.drop_invoices(golden.name, golden)
    yield side
    assert server.spec_violations == []


def _csv(columns, rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[c.name for c in columns], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def reconcile_payment_of_f0043(hotel: Hotel) -> None:
    """The bank receives F-2026-0043's total and the real reconcile run matches it to the open item."""
    from flows.reconcile import reconcile_tenant

    inbox = hotel.tenant.inbox_path()
    gross = str(totals(INTRA).gross)
    for kind, columns, row in (
            ("items", ITEM_COLUMNS, {"item_id": "I-0043", "kind": "invoice", "document_number": "F-2026-0043",
                                     "issue_date": "2026-03-18", "amount_open": gross, "currency": "EUR",
                                     "partner_name": INTRA.buyer.name}),
            ("bank", BANK_COLUMNS, {"bank_line_id": "B-0043", "bank_account": OUR_IBAN, "booking_date": "2026-03-25",
                                    "amount": gross, "currency": "EUR", "remittance_info": "VIR FACTURE F-2026-0043"})):
        (inbox / kind).mkdir(parents=True, exist_ok=True)
        (inbox / kind / f"{kind}.csv").write_text(_csv(columns, [row]), encoding="utf-8")
    reconcile_tenant(hotel.tenant, run_id="reconcile", as_of=END, now=datetime(2026, 4, 1, 6, tzinfo=UTC),
                     notify=False)
    assert hotel.sql("SELECT count(*) FROM match WHERE item_id = 'I-0043' AND decision = 'auto'").item() == 1


def test_invoices_and_a_credit_note_are_posted_once_with_our_totals(books):
    dry = post_period(books.hotel.tenant, books.destination, START, END, run_id="test", dry_run=True)
    assert dry.line() == "dry run: would post 3, skipped 0 (already exported)"
    first = books.post()
    assert (len(first.posted), first.skipped, len(first.failed)) == (3, 0, 0), first.failed
    assert first.line() == "posted 3, skipped 0 (already exported), failed 0"
    assert books.numbers() == ["F-2026-0042", "F-2026-0043"] and len(books.credit_notes) == 1
    assert books.journals == []  # documents mode: the closed day's journal entries are not posted
    posted = next(i for i in books.invoices if STANDARD.invoice_number in (i.get("InvoiceNumber"), i.get("DocNumber")))
    ours = totals(STANDARD)
    if books.system == "xero":
        assert (posted["Type"], posted["Status"], posted["Reference"]) == ("ACCREC", "AUTHORISED", "PO-7781")
        assert [Decimal(str(posted[k])) for k in ("SubTotal", "TotalTax", "Total")] == [ours.net, ours.tax, ours.gross]
        assert books.credit_notes[0]["Type"] == "ACCRECCREDIT"
        assert books.credit_notes[0]["CreditNoteNumber"] == "AV-2026-0007"
    else:
        assert Decimal(str(posted["TotalAmt"])) == ours.net  # the fake computes no tax
        assert books.credit_notes[0]["DocNumber"] == "AV-2026-0007"
    second = books.post()
    assert (len(second.posted), second.skipped, len(second.failed)) == (0, 3, 0)
    assert second.requests == 0 and len(books.invoices) == 2 and len(books.credit_notes) == 1
    recorded = books.hotel.sql("SELECT count(*) FROM export_log WHERE system_id = ? AND object_type = 'invoice' "
                               "AND external_id IS NOT NULL", [books.destination])
    assert recorded.item() == 3


def test_a_customer_is_created_once_and_found_the_next_time(books):
    books.add_customer("Müller Küchen GmbH")  # already in the books
    books.post()
    assert books.customer_creations() == 1  # Ågren & Fils, once for its invoice and its credit note
    assert sorted(c["Name" if books.system == "xero" else "DisplayName"] for c in books.customers) == [
        "Müller Küchen GmbH", "Société Ågren & Fils"]
    later = (GOLDEN / "standard.invoices.csv").read_text(encoding="utf-8").replace("F-2026-0042", "F-2026-0044")
    books.drop_invoices("later.invoices.csv", text=later.replace("2026-03-14", "2026-03-24"))
    summary = books.post()  # a new run: its customer is looked up, found, not created again
    assert [o.object_id for o in summary.posted] == ["F-2026-0044"]
    assert books.customer_creations() == 1 and len(books.customers) == 2


def test_a_reconciled_bank_line_posts_a_payment_of_the_invoice(books):
    books.post()
    reconcile_payment_of_f0043(books.hotel)
    summary = books.post()
    assert (len(summary.posted), len(summary.failed), summary.waiting) == (1, 0, []), summary.failed
    (payment,) = books.payments
    invoice_id = books.hotel.sql("SELECT external_id FROM export_log WHERE object_id = 'F-2026-0043' "
                                 "AND system_id = ?", [books.destination]).item()
    gross = totals(INTRA).gross
    if books.system == "xero":
        assert payment["Invoice"]["InvoiceID"] == invoice_id and payment["Account"]["Code"] == "090"
        assert Decimal(str(payment["Amount"])) == gross and payment["Date"].startswith("/Date(")
        assert next(i for i in books.invoices if i["InvoiceID"] == invoice_id)["Status"] == "PAID"
    else:
        assert payment["Line"][0]["LinkedTxn"] == [{"TxnId": invoice_id, "TxnType": "Invoice"}]
        assert payment["TxnDate"] == "2026-03-25" and payment["DepositToAccountRef"] == {"value": "35"}
        assert books.server.entities["Invoice"][invoice_id]["Balance"] == 0
    again = books.post()
    assert (len(again.posted), again.skipped) == (0, 4) and len(books.payments) == 1


def test_an_invoice_refused_is_reported_with_the_systems_words_and_its_payment_waits(books):
    reconcile_payment_of_f0043(books.hotel)
    words = books.refuse("F-2026-0043", "TaxType 'ECZROUTPUTSERVICES' is not valid for this account")
    summary = books.post()
    assert [o.object_id for o in summary.failed] == ["F-2026-0043"] and words in summary.failed[0].message
    assert len(summary.posted) == 2 and books.numbers() == ["F-2026-0042"]
    assert [o.object_id for o in summary.waiting] == [books.hotel.sql("SELECT match_id FROM match").item()]
    assert "pays invoice F-2026-0043, not posted" in summary.waiting[0].message and books.payments == []
    again = books.post()  # fixed on the other side: the invoice goes, then its payment
    assert len(again.posted) == 2 and not again.failed and not again.waiting and len(books.payments) == 1


def test_after_a_crash_between_posting_and_recording_the_next_run_finds_by_number(books):
    with opened(books.hotel.tenant.duckdb_path()) as con:
        take_invoice_inbox(con, books.hotel.tenant, run_id="crashed", now=datetime.now(UTC))
        documents = documents_from_ledger(con, books.hotel.tenant, START, END)
        api = books.api()
        _attempting(con, books.hotel.tenant, books.destination, documents[:2], "crashed", datetime.now(UTC))
        assert [o.status for o in api.post_documents(documents[:2])] == ["posted", "posted"]
        api.close()  # ... and the process died before recording
    summary = books.post()
    assert sorted(o.object_id for o in summary.found) == sorted(d.object_id for d in documents[:2])
    assert len(summary.posted) == 1 and len(books.invoices) + len(books.credit_notes) == 3  # no duplicate
    assert books.hotel.sql("SELECT count(*) FROM post_attempt").item() == 0


def test_an_invoice_found_by_number_with_other_totals_is_reported_not_recorded(books):
    """Someone keyed F-2026-0042 in by hand (100.00) while our run that posted it died unrecorded."""
    if books.system == "xero":
        books.server.organisations[books.server.tenant_id].save("Invoices", {
            "Type": "ACCREC", "Contact": {"Name": STANDARD.buyer.name}, "InvoiceNumber": "F-2026-0042",
            "Status": "AUTHORISED", "LineItems": [{"Description": "typed in", "Quantity": 1, "UnitAmount": 100}]})
    else:
        customer = books.server.add_customer(STANDARD.buyer.name)
        books.server.companies[books.server.realm].put("Invoice", {
            "DocNumber": "F-2026-0042", "CustomerRef": {"value": customer}, "TotalAmt": Decimal("100.00"),
            "Line": [{"Amount": Decimal("100.00"), "DetailType": "SalesItemLineDetail",
                      "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]})
    with opened(books.hotel.tenant.duckdb_path()) as con:
        take_invoice_inbox(con, books.hotel.tenant, run_id="crashed", now=datetime.now(UTC))
        standard = [d for d in documents_from_ledger(con, books.hotel.tenant, START, END)
                    if d.object_id == "F-2026-0042"]
        _attempting(con, books.hotel.tenant, books.destination, standard, "crashed", datetime.now(UTC))
    summary = books.post()
    assert [o.object_id for o in summary.failed] == ["F-2026-0042"] and len(summary.posted) == 2
    assert "other totals than the invoice: net 100.00 (ours 404.99)" in summary.failed[0].message
    assert books.hotel.sql("SELECT count(*) FROM export_log WHERE object_id = 'F-2026-0042'").item() == 0


@pytest.mark.parametrize("books", ["qbo"], indirect=True)
def test_an_invoice_number_too_long_for_qbo_is_refused_alone(books):
    long_number = "F-2026-0042-RESTAURANT"  # 22 characters
    text = (GOLDEN / "standard.invoices.csv").read_text(encoding="utf-8").replace("F-2026-0042", long_number)
    books.drop_invoices("long.invoices.csv", text=text)
    summary = books.post()
    assert [o.object_id for o in summary.failed] == [long_number]
    assert "has 22 characters; QBO's DocNumber holds at most 21" in summary.failed[0].message
    assert len(summary.posted) == 3 and books.numbers() == ["F-2026-0042", "F-2026-0043"]


def test_documents_mode_refuses_a_journal_csv(books, tmp_path):
    from flows.post import PostProblem

    with pytest.raises(PostProblem, match="would book the sales twice"):
        post_period(books.hotel.tenant, books.destination, START, END, journal_csv=tmp_path / "JOURNAL.csv",
                    run_id="test")


def test_a_documents_destination_names_the_key_it_lacks():
    from pydantic import ValidationError

    from schemas.tenant import ApiDestination

    base = {"organisation": "org", "client_id_env": "ID", "client_secret_env": "SECRET", "post": "documents"}
    with pytest.raises(ValidationError, match="post = \"documents\" to xero needs sales_account"):
        ApiDestination(type="xero", **base)
    with pytest.raises(ValidationError, match="post = \"documents\" to qbo needs item"):
        ApiDestination(type="qbo", **base)
    assert ApiDestination(type="qbo", **{**base, "post": "journals"}).item is None
