"""Peppol BIS Billing 3.0 (UBL 2.1) invoices and credit notes from INVOICES.csv (INTERFACES §3).

Reading, EN 16931 checks and totals are ``destinations.exports.invoices``'; this module adds
Peppol's own rules (buyer reference, electronic addresses) and writes one XML file per invoice,
``<invoice_number>.xml``; the same invoices give the same bytes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

from destinations.exports.invoices import (
    ENDPOINT,
    ExportRefused,
    Invoice,
    InvoiceLine,
    Party,
    amount_text,
    check_invoice,
    plain_number,
    seller_of,
    totals,
    unique_file_names,
)
from destinations.exports.xml_parts import add, checked_text, prefixed_xml
from schemas.company import Company

__all__ = ["ExportRefused", "write_invoices"]

NAME = "ubl"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
ROOT_NS = {"380": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
           "381": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"}
CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"


def _check_peppol(invoice: Invoice, seller: Party) -> None:
    where = f"invoice {invoice.invoice_number}"
    if not invoice.buyer_reference:
        raise ExportRefused(f"{where}: buyer_reference is missing; Peppol requires a buyer reference "
                            "(PEPPOL-EN16931-R003)")
    for side, party in (("seller", seller), ("buyer", invoice.buyer)):
        if not party.endpoint_id:
            raise ExportRefused(f"{where}: {side}_endpoint_id is missing; Peppol requires an electronic "
                                "address like 0208:0477472701")
        if not ENDPOINT.match(party.endpoint_id):
            raise ExportRefused(f"{where}: {side}_endpoint_id {party.endpoint_id!r} is not SCHEME:ID "
                                "with a 4-digit scheme, like 0208:0477472701")


class _Builder:
    def __init__(self, invoice: Invoice):
        self.invoice = invoice
        self.where = f"invoice {invoice.invoice_number}"

    def cbc(self, parent: ET.Element, tag: str, value: object, name: str, **attributes: str) -> ET.Element:
        element = add(parent, f"{{{CBC}}}{tag}", checked_text(value, 10_000, self.where, name, "UBL"))
        for key, text in attributes.items():
            element.set(key, checked_text(text, 200, self.where, name, "UBL"))
        return element

    def money(self, parent: ET.Element, tag: str, value: Decimal) -> None:
        self.cbc(parent, tag, amount_text(value), tag, currencyID=self.invoice.currency)


def _cac(parent: ET.Element, tag: str) -> ET.Element:
    return add(parent, f"{{{CAC}}}{tag}")


def _tax_category(b: _Builder, parent: ET.Element, tag: str, category: str, rate: Decimal | None,
                  reason: str | None = None) -> None:
    element = _cac(parent, tag)
    b.cbc(element, "ID", category, "vat_category")
    if rate is not None:
        b.cbc(element, "Percent", plain_number(rate), "vat_rate")
    if reason and reason.upper().startswith("VATEX-"):
        b.cbc(element, "TaxExemptionReasonCode", reason.upper(), "vat_exemption_reason")
    elif reason:
        b.cbc(element, "TaxExemptionReason", reason, "vat_exemption_reason")
    b.cbc(_cac(element, "TaxScheme"), "ID", "VAT", "TaxScheme")


def _party(b: _Builder, root: ET.Element, tag: str, party: Party, side: str, registration_id: str | None) -> None:
    element = _cac(_cac(root, tag), "Party")
    scheme, identifier = ENDPOINT.match(party.endpoint_id).groups()
    b.cbc(element, "EndpointID", identifier, f"{side}_endpoint_id", schemeID=scheme)
    address = _cac(element, "PostalAddress")
    for value, field, tag_name in ((party.street, "street", "StreetName"), (party.city, "city", "CityName"),
                                   (party.postcode, "postcode", "PostalZone")):
        if value:
            b.cbc(address, tag_name, value, f"{side}_{field}")
    b.cbc(_cac(address, "Country"), "IdentificationCode", party.country, f"{side}_country")
    if party.vat_id:
        tax_scheme = _cac(element, "PartyTaxScheme")
        b.cbc(tax_scheme, "CompanyID", party.vat_id, f"{side}_vat_id")
        b.cbc(_cac(tax_scheme, "TaxScheme"), "ID", "VAT", "TaxScheme")
    legal = _cac(element, "PartyLegalEntity")
    b.cbc(legal, "RegistrationName", party.name, f"{side}_name")
    if registration_id:
        b.cbc(legal, "CompanyID", registration_id, "registration_id")


def _document(invoice: Invoice, company: Company) -> bytes:
    seller = seller_of(invoice, company)
    check_invoice(invoice, seller)
    _check_peppol(invoice, seller)
    b = _Builder(invoice)
    is_invoice = invoice.invoice_type == "380"
    root = ET.Element(f"{{{ROOT_NS[invoice.invoice_type]}}}{'Invoice' if is_invoice else 'CreditNote'}")
    b.cbc(root, "CustomizationID", CUSTOMIZATION, "CustomizationID")
    b.cbc(root, "ProfileID", PROFILE, "ProfileID")
    b.cbc(root, "ID", invoice.invoice_number, "invoice_number")
    b.cbc(root, "IssueDate", invoice.issue_date.isoformat(), "issue_date")
    if is_invoice:
        b.cbc(root, "DueDate", invoice.due_date.isoformat(), "due_date")
    b.cbc(root, "InvoiceTypeCode" if is_invoice else "CreditNoteTypeCode", invoice.invoice_type, "invoice_type")
    b.cbc(root, "DocumentCurrencyCode", invoice.currency, "currency")
    b.cbc(root, "BuyerReference", invoice.buyer_reference, "buyer_reference")
    if invoice.billing_reference:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        b.cbc(reference, "ID", invoice.billing_reference, "billing_reference")
    _party(b, root, "AccountingSupplierParty", seller, "seller", company.registration_id)
    _party(b, root, "AccountingCustomerParty", invoice.buyer, "buyer", None)
    delivery = _cac(root, "Delivery")
    b.cbc(delivery, "ActualDeliveryDate", (invoice.delivery_date or invoice.issue_date).isoformat(), "delivery_date")
    if any(line.vat_category == "K" for line in invoice.lines):
        # BR-IC-12: an intra-community supply states the deliver-to country, the buyer's.
        location = _cac(_cac(delivery, "DeliveryLocation"), "Address")
        b.cbc(_cac(location, "Country"), "IdentificationCode", invoice.buyer.country, "buyer_country")
    if invoice.payment_iban:
        means = _cac(root, "PaymentMeans")
        b.cbc(means, "PaymentMeansCode", "30", "PaymentMeansCode")
        if not is_invoice and invoice.due_date:
            b.cbc(means, "PaymentDueDate", invoice.due_date.isoformat(), "due_date")
        b.cbc(_cac(means, "PayeeFinancialAccount"), "ID", invoice.payment_iban.replace(" ", ""), "payment_iban")
    total = totals(invoice)
    tax_total = _cac(root, "TaxTotal")
    b.money(tax_total, "TaxAmount", total.tax)
    for group in total.groups:
        subtotal = _cac(tax_total, "TaxSubtotal")
        b.money(subtotal, "TaxableAmount", group.taxable)
        b.money(subtotal, "TaxAmount", group.tax)
        _tax_category(b, subtotal, "TaxCategory", group.category, group.rate, group.exemption_reason)
    legal_total = _cac(root, "LegalMonetaryTotal")
    for tag, value in (("LineExtensionAmount", total.net), ("TaxExclusiveAmount", total.net),
                       ("TaxInclusiveAmount", total.gross), ("PayableAmount", total.gross)):
        b.money(legal_total, tag, value)
    for line in invoice.lines:
        _line(b, root, line, is_invoice)
    root.set("xmlns", ROOT_NS[invoice.invoice_type])
    root.set("xmlns:cac", CAC)
    root.set("xmlns:cbc", CBC)
    return prefixed_xml(root, {ROOT_NS[invoice.invoice_type]: "", CBC: "cbc:", CAC: "cac:"})


def _line(b: _Builder, root: ET.Element, line: InvoiceLine, is_invoice: bool) -> None:
    element = _cac(root, "InvoiceLine" if is_invoice else "CreditNoteLine")
    b.cbc(element, "ID", line.line_id, "line_id")
    b.cbc(element, "InvoicedQuantity" if is_invoice else "CreditedQuantity", plain_number(line.quantity), "quantity",
          unitCode=line.unit_code)
    b.money(element, "LineExtensionAmount", line.line_net)
    item = _cac(element, "Item")
    b.cbc(item, "Name", line.item_name, "item_name")
    _tax_category(b, item, "ClassifiedTaxCategory", line.vat_category, line.vat_rate)
    b.cbc(_cac(element, "Price"), "PriceAmount", plain_number(line.unit_price), "unit_price",
          currencyID=b.invoice.currency)


def write_invoices(invoices: list[Invoice], company: Company) -> list[tuple[str, bytes]]:
    """One Peppol BIS 3.0 UBL file per invoice; refuses everything when one invoice cannot be carried."""
    names = unique_file_names(invoices, ".xml")
    return [(name, _document(invoice, company)) for name, invoice in zip(names, invoices)]
