"""Purchase invoices (UBL) to open items: what is read, and every way a document is refused."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.codabox.fake import ubl_invoice
from sources.codabox.ubl import UblError, purchase_invoice_item

INVOICE = ubl_invoice(number="F-17", issued=date(2026, 2, 3), supplier="Meelfabriek NV", customer_vat="BE0477472701",
                      net=Decimal("100.00"))


def test_an_invoice_is_a_bill_we_owe():
    item = purchase_invoice_item(INVOICE, "f.xml", "cb:1")
    assert (item["kind"], item["amount_open"], item["currency"], item["issue_date"]) == (
        "bill", Decimal("-121.00"), "EUR", date(2026, 2, 3))


def test_a_credit_note_is_money_the_supplier_owes_back():
    note = INVOICE.replace(b"<Invoice ", b"<CreditNote ").replace(b"</Invoice>", b"</CreditNote>") \
        .replace(b"Invoice-2", b"CreditNote-2")
    item = purchase_invoice_item(note, "c.xml", "cb:2")
    assert (item["kind"], item["amount_open"]) == ("refund", Decimal("121.00"))


def test_payment_reference_and_iban_are_read():
    extra = (b"<cac:PaymentMeans><cbc:PaymentMeansCode>30</cbc:PaymentMeansCode><cbc:PaymentID>+++090/9337/55493+++"
             b"</cbc:PaymentID><cac:PayeeFinancialAccount><cbc:ID>BE68 5390 0754 7034</cbc:ID>"
             b"</cac:PayeeFinancialAccount></cac:PaymentMeans>\n  <cac:TaxTotal>")
    item = purchase_invoice_item(INVOICE.replace(b"<cac:TaxTotal>", extra, 1), "f.xml", "cb:1")
    assert item["structured_ref"] == "+++090/9337/55493+++" and item["partner_iban"] == "BE68539007547034"


@pytest.mark.parametrize(("change", "message"), [
    ((b"<cbc:ID>F-17</cbc:ID>", b""), "has no <cbc:ID>"),
    ((b"2026-02-03", b"03/02/2026"), "is not a date"),
    ((b">121.00<", b">121.005<"), "is not an amount with at most two decimals"),
    ((b'currencyID="EUR">121.00', b'currencyID="EURO">121.00'), "is not ISO 4217"),
    ((b"</Invoice>", b""), "not well-formed XML"),
    ((b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>", b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]>"),
     "document type declaration"),
])
def test_a_document_that_cannot_be_an_open_item_is_refused_with_file_and_element(change, message):
    with pytest.raises(UblError, match="f.xml") as refused:
        purchase_invoice_item(INVOICE.replace(*change), "f.xml", "cb:1")
    assert message in str(refused.value)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_mutation_gives_an_item_or_the_documented_error(data):
    cut = data.draw(st.integers(0, len(INVOICE)))
    flip = data.draw(st.integers(0, len(INVOICE) - 1))
    mutated = bytearray(INVOICE[:cut] + INVOICE[cut:])
    mutated[flip] = data.draw(st.integers(0, 255))
    document = bytes(mutated[:data.draw(st.integers(0, len(mutated)))])
    try:
        purchase_invoice_item(document, "f.xml", "cb:1")
    except UblError:
        pass
