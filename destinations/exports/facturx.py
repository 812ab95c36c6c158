"""Factur-X 1.0 / ZUGFeRD 2 invoices and credit notes, profile EN 16931, from INVOICES.csv (INTERFACES §3).

One PDF/A-3b file per invoice, ``<invoice_number>.pdf``: a readable A4 invoice (``invoice_page``)
with the UN/CEFACT CII D16B XML embedded as ``factur-x.xml``, which is what the buyer's software
reads. Reading, EN 16931 checks and totals are ``destinations.exports.invoices``'; the same invoices
and company give the same bytes (dates from SOURCE_DATE_EPOCH, else the issue date).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

from destinations.exports import pdfa
from destinations.exports.invoice_page import TITLES, InvoicePage
from destinations.exports.invoices import (
    ENDPOINT,
    ExportRefused,
    Invoice,
    InvoiceLine,
    Party,
    Totals,
    amount_text,
    check_invoice,
    plain_number,
    seller_of,
    totals,
    unique_file_names,
)
from destinations.exports.ledger import generated_at
from destinations.exports.xml_parts import add, checked_text, prefixed_xml, software_version
from schemas.company import Company

__all__ = ["ExportRefused", "cii_document", "write_invoices"]

NAME = "facturx"
RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
PREFIXES = {RSM: "rsm", RAM: "ram", UDT: "udt"}
EN16931 = "urn:cen.eu:en16931:2017"
XML_NAME = "factur-x.xml"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
DEFAULT_FONTS = {"font": DEJAVU / "DejaVuSans.ttf", "bold_font": DEJAVU / "DejaVuSans-Bold.ttf"}
FX_SCHEMA = pdfa.ExtensionSchema(
    "fx", "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#", "Factur-X PDFA Extension Schema",
    (pdfa.ExtensionProperty("DocumentFileName", XML_NAME, "name of the embedded XML invoice file"),
     pdfa.ExtensionProperty("DocumentType", "INVOICE", "INVOICE"),
     pdfa.ExtensionProperty("Version", "1.0", "The actual version of the Factur-X XML schema"),
     pdfa.ExtensionProperty("ConformanceLevel", "EN 16931", "The conformance level of the embedded Factur-X data")))


# ---------------------------------------------------------------- the CII XML


class _Builder:
    def __init__(self, invoice: Invoice):
        self.invoice = invoice
        self.where = f"invoice {invoice.invoice_number}"

    def ram(self, parent: ET.Element, tag: str, value: object = None, name: str = "", **attributes: str):
        text = None if value is None else checked_text(value, 10_000, self.where, name or tag, "CII")
        element = add(parent, f"{{{RAM}}}{tag}", text)
        for key, attribute in attributes.items():
            element.set(key, checked_text(attribute, 200, self.where, name or tag, "CII"))
        return element

    def date(self, parent: ET.Element, tag: str, value: date) -> None:
        container = self.ram(parent, tag)
        add(container, f"{{{UDT}}}DateTimeString", value.strftime("%Y%m%d")).set("format", "102")


def _party(b: _Builder, parent: ET.Element, tag: str, party: Party, side: str, registration_id: str | None) -> None:
    element = b.ram(parent, tag)
    b.ram(element, "Name", party.name, f"{side}_name")
    if registration_id:
        b.ram(b.ram(element, "SpecifiedLegalOrganization"), "ID", registration_id, "registration_id")
    address = b.ram(element, "PostalTradeAddress")
    for value, field, tag_name in ((party.postcode, "postcode", "PostcodeCode"),
                                   (party.street, "street", "LineOne"), (party.city, "city", "CityName")):
        if value:
            b.ram(address, tag_name, value, f"{side}_{field}")
    b.ram(address, "CountryID", party.country, f"{side}_country")
    if party.endpoint_id:
        if not ENDPOINT.match(party.endpoint_id):
            raise ExportRefused(f"{b.where}: {side}_endpoint_id {party.endpoint_id!r} is not SCHEME:ID "
                                "with a 4-digit scheme, like 0208:0477472701")
        scheme, identifier = ENDPOINT.match(party.endpoint_id).groups()
        b.ram(b.ram(element, "URIUniversalCommunication"), "URIID", identifier, f"{side}_endpoint_id",
              schemeID=scheme)
    if party.vat_id:
        b.ram(b.ram(element, "SpecifiedTaxRegistration"), "ID", party.vat_id, f"{side}_vat_id", schemeID="VA")


def _line(b: _Builder, transaction: ET.Element, line: InvoiceLine) -> None:
    element = b.ram(transaction, "IncludedSupplyChainTradeLineItem")
    b.ram(b.ram(element, "AssociatedDocumentLineDocument"), "LineID", line.line_id, "line_id")
    b.ram(b.ram(element, "SpecifiedTradeProduct"), "Name", line.item_name, "item_name")
    price = b.ram(b.ram(element, "SpecifiedLineTradeAgreement"), "NetPriceProductTradePrice")
    b.ram(price, "ChargeAmount", plain_number(line.unit_price), "unit_price")
    b.ram(b.ram(element, "SpecifiedLineTradeDelivery"), "BilledQuantity", plain_number(line.quantity), "quantity",
          unitCode=line.unit_code)
    settlement = b.ram(element, "SpecifiedLineTradeSettlement")
    tax = b.ram(settlement, "ApplicableTradeTax")
    b.ram(tax, "TypeCode", "VAT")
    b.ram(tax, "CategoryCode", line.vat_category, "vat_category")
    if line.vat_rate is not None:
        b.ram(tax, "RateApplicablePercent", plain_number(line.vat_rate), "vat_rate")
    summation = b.ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation")
    b.ram(summation, "LineTotalAmount", amount_text(line.line_net), "line_net")


def _delivery(b: _Builder, transaction: ET.Element) -> None:
    invoice = b.invoice
    delivery = b.ram(transaction, "ApplicableHeaderTradeDelivery")
    if any(line.vat_category == "K" for line in invoice.lines):
        # BR-IC-12: an intra-community supply states the deliver-to country, the buyer's.
        ship_to = b.ram(b.ram(delivery, "ShipToTradeParty"), "PostalTradeAddress")
        b.ram(ship_to, "CountryID", invoice.buyer.country, "buyer_country")
    event = b.ram(delivery, "ActualDeliverySupplyChainEvent")
    b.date(event, "OccurrenceDateTime", invoice.delivery_date or invoice.issue_date)


def _settlement(b: _Builder, transaction: ET.Element, total: Totals) -> None:
    invoice = b.invoice
    settlement = b.ram(transaction, "ApplicableHeaderTradeSettlement")
    b.ram(settlement, "InvoiceCurrencyCode", invoice.currency, "currency")
    if invoice.payment_iban:
        means = b.ram(settlement, "SpecifiedTradeSettlementPaymentMeans")
        b.ram(means, "TypeCode", "30")  # UNCL 4461: credit transfer
        account = b.ram(means, "PayeePartyCreditorFinancialAccount")
        b.ram(account, "IBANID", invoice.payment_iban.replace(" ", ""), "payment_iban")
    for group in total.groups:
        tax = b.ram(settlement, "ApplicableTradeTax")
        b.ram(tax, "CalculatedAmount", amount_text(group.tax))
        b.ram(tax, "TypeCode", "VAT")
        reason = group.exemption_reason
        if reason and not reason.upper().startswith("VATEX-"):
            b.ram(tax, "ExemptionReason", reason, "vat_exemption_reason")
        b.ram(tax, "BasisAmount", amount_text(group.taxable))
        b.ram(tax, "CategoryCode", group.category, "vat_category")
        if reason and reason.upper().startswith("VATEX-"):
            b.ram(tax, "ExemptionReasonCode", reason.upper(), "vat_exemption_reason")
        if group.rate is not None:
            b.ram(tax, "RateApplicablePercent", plain_number(group.rate), "vat_rate")
    if invoice.due_date:
        b.date(b.ram(settlement, "SpecifiedTradePaymentTerms"), "DueDateDateTime", invoice.due_date)
    summation = b.ram(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    b.ram(summation, "LineTotalAmount", amount_text(total.net))
    b.ram(summation, "TaxBasisTotalAmount", amount_text(total.net))
    b.ram(summation, "TaxTotalAmount", amount_text(total.tax), currencyID=invoice.currency)
    b.ram(summation, "GrandTotalAmount", amount_text(total.gross))
    b.ram(summation, "DuePayableAmount", amount_text(total.gross))
    if invoice.billing_reference:
        reference = b.ram(settlement, "InvoiceReferencedDocument")
        b.ram(reference, "IssuerAssignedID", invoice.billing_reference, "billing_reference")


def cii_document(invoice: Invoice, company: Company) -> bytes:
    """The CII D16B CrossIndustryInvoice, EN 16931 profile, of one checked invoice."""
    seller = seller_of(invoice, company)
    check_invoice(invoice, seller)
    b = _Builder(invoice)
    root = ET.Element(f"{{{RSM}}}CrossIndustryInvoice")
    context = add(root, f"{{{RSM}}}ExchangedDocumentContext")
    b.ram(b.ram(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", EN16931)
    document = add(root, f"{{{RSM}}}ExchangedDocument")
    b.ram(document, "ID", invoice.invoice_number, "invoice_number")
    b.ram(document, "TypeCode", invoice.invoice_type, "invoice_type")
    b.date(document, "IssueDateTime", invoice.issue_date)
    transaction = add(root, f"{{{RSM}}}SupplyChainTradeTransaction")
    for line in invoice.lines:
        _line(b, transaction, line)
    agreement = b.ram(transaction, "ApplicableHeaderTradeAgreement")
    if invoice.buyer_reference:
        b.ram(agreement, "BuyerReference", invoice.buyer_reference, "buyer_reference")
    _party(b, agreement, "SellerTradeParty", seller, "seller", company.registration_id)
    _party(b, agreement, "BuyerTradeParty", invoice.buyer, "buyer", None)
    _delivery(b, transaction)
    _settlement(b, transaction, totals(invoice))
    for uri, prefix in PREFIXES.items():
        root.set(f"xmlns:{prefix}", uri)
    return prefixed_xml(root, {namespace: f"{prefix}:" for namespace, prefix in PREFIXES.items()})


# ---------------------------------------------------------------- the PDF/A-3 file


def _font_paths(company: Company) -> dict[str, Path]:
    """DejaVu Sans (Debian's fonts-dejavu-core) unless COMPANY.toml's [facturx] names other files."""
    settings = (company.model_extra or {}).get("facturx") or {}
    if not isinstance(settings, dict):
        raise ExportRefused(f"COMPANY.toml: facturx must be a table like [facturx] font = \"path\" (got {settings!r})")
    paths = {}
    for key, default in DEFAULT_FONTS.items():
        path = Path(settings.get(key) or default)
        if not path.is_file():
            origin = "COMPANY.toml [facturx]" if settings.get(key) else "default for COMPANY.toml [facturx]"
            raise ExportRefused(f"{path}: font file is missing ({origin} {key}); install fonts-dejavu-core "
                                f"or set [facturx] {key} = \"path/to/font.ttf\"")
        paths[key] = path
    return paths


def _pdf(invoice: Invoice, company: Company, xml: bytes, paths: dict[str, Path]) -> bytes:
    seller = seller_of(invoice, company)
    fonts = {key: pdfa.Font(path, resource) for (key, path), resource in zip(paths.items(), ("F1", "F2"))}
    page = InvoicePage(invoice, seller, company.registration_id, totals(invoice), fonts["font"], fonts["bold_font"])
    drawn_pages = page.pages()
    moment = generated_at(invoice.issue_date)
    title, producer = f"{TITLES[invoice.invoice_type]} {invoice.invoice_number}", f"ledgerflow {software_version()}"
    pdf = pdfa.PdfFile()
    catalog, pages = pdf.reserve(), pdf.reserve()
    resources = {"Font": {font.resource: font.embed(pdf) for font in fonts.values()}}
    kids = [pdf.add({"Type": pdfa.Name("Page"), "Parent": pages, "MediaBox": [0, 0, *pdfa.A4],
                     "Resources": resources, "Contents": pdf.add_stream(pdfa.content_stream(drawing))})
            for drawing in drawn_pages]
    pdf.add({"Type": pdfa.Name("Pages"), "Kids": kids, "Count": len(kids)}, pages)
    attachment = pdfa.associated_file(pdf, XML_NAME, xml, "text/xml", "Factur-X invoice (EN 16931)", "Data",
                                      moment)
    metadata = pdf.add_stream(pdfa.xmp_packet(title, seller.name, producer, moment, FX_SCHEMA),
                              {"Type": pdfa.Name("Metadata"), "Subtype": pdfa.Name("XML")}, compress=False)
    pdf.add({"Type": pdfa.Name("Catalog"), "Pages": pages, "Metadata": metadata,
             "OutputIntents": [pdfa.output_intent(pdf)], "AF": [attachment],
             "Names": {"EmbeddedFiles": {"Names": [XML_NAME, attachment]}},
             "PageMode": pdfa.Name("UseAttachments"), "ViewerPreferences": {"DisplayDocTitle": True}}, catalog)
    info = pdf.add(pdfa.info_dictionary(title, seller.name, producer, moment))
    return pdf.to_bytes(catalog, info)


def write_invoices(invoices: list[Invoice], company: Company) -> list[tuple[str, bytes]]:
    """One Factur-X EN 16931 PDF per invoice; refuses everything when one invoice cannot be carried."""
    names = unique_file_names(invoices, ".pdf")
    paths = _font_paths(company)
    documents = [cii_document(invoice, company) for invoice in invoices]
    return [(name, _pdf(invoice, company, xml, paths)) for name, invoice, xml in zip(names, invoices, documents)]

