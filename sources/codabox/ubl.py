"""A supplier's UBL 2.1 invoice or credit note (as CodaBox delivers purchase invoices, Peppol
BIS Billing 3.0 shaped) -> one open item the reconciliation can match the payment against.

What we read: ``cbc:ID`` (the document number), ``cbc:IssueDate``, ``cbc:DueDate`` (or
``cac:PaymentMeans/cbc:PaymentDueDate`` or ``cac:PaymentTerms``), the supplier's name,
``cac:LegalMonetaryTotal/cbc:PayableAmount`` with its ``currencyID``, the payee's IBAN
(``cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID``) and the payment reference
(``cac:PaymentMeans/cbc:PaymentID``, often a Belgian structured communication). An invoice is a
bill we owe (negative), a credit note money the supplier owes us back (positive, ``refund``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal, InvalidOperation

from schemas.currencies import ISO_4217

CBC = "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}"
CAC = "{urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2}"
ROOTS = {"Invoice": ("bill", -1), "CreditNote": ("refund", 1)}
_AMOUNT = re.compile(r"^-?[0-9]{1,15}(\.[0-9]{1,2})?$")


class UblError(ValueError):
    """A purchase invoice that cannot become an open item; the message names file and element."""


def _text(root: ET.Element, path: str) -> str | None:
    found = root.find(path)
    return found.text.strip() if found is not None and found.text and found.text.strip() else None


def _date(value: str | None, file: str, element: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UblError(f"{file}: <{element}> {value!r} is not a date (YYYY-MM-DD)") from None


def purchase_invoice_item(data: bytes, file: str, item_id: str) -> dict:
    """The OpenItem row of one UBL invoice or credit note."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:  # anywhere: a long comment could push it down
        raise UblError(f"{file}: a document type declaration is not allowed in a UBL invoice")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise UblError(f"{file}: line {exc.position[0]}: not well-formed XML ({exc})") from None
    except LookupError as exc:  # an encoding Python has no codec for (raised as is once a package adds codecs)
        raise UblError(f"{file}: line 1: the XML declaration names an unknown encoding ({exc})") from None
    local = root.tag.rsplit("}", 1)[-1]
    if local not in ROOTS:
        raise UblError(f"{file}: <{local}> is not a UBL Invoice or CreditNote")
    kind, sign = ROOTS[local]
    number = _text(root, f"{CBC}ID")
    if number is None:
        raise UblError(f"{file}: the {local} has no <cbc:ID> (document number)")
    issued = _date(_text(root, f"{CBC}IssueDate"), file, "cbc:IssueDate")
    if issued is None:
        raise UblError(f"{file}: {local} {number} has no <cbc:IssueDate>")
    due = _date(_text(root, f"{CBC}DueDate") or _text(root, f"{CAC}PaymentMeans/{CBC}PaymentDueDate"), file,
                "cbc:DueDate")
    payable = root.find(f"{CAC}LegalMonetaryTotal/{CBC}PayableAmount")
    raw = payable.text.strip() if payable is not None and payable.text else ""
    if not _AMOUNT.match(raw):
        raise UblError(f"{file}: {local} {number}: <cbc:PayableAmount> {raw!r} is not an amount with at most "
                       "two decimals")
    currency = (payable.get("currencyID") or _text(root, f"{CBC}DocumentCurrencyCode") or "").upper()
    if currency not in ISO_4217:
        raise UblError(f"{file}: {local} {number}: currency {currency!r} is not ISO 4217")
    try:
        amount = sign * Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern refused it
        raise UblError(f"{file}: <cbc:PayableAmount> {raw!r} is not an amount") from None
    party = f"{CAC}AccountingSupplierParty/{CAC}Party"
    supplier = (_text(root, f"{party}/{CAC}PartyLegalEntity/{CBC}RegistrationName")
                or _text(root, f"{party}/{CAC}PartyName/{CBC}Name"))
    iban = _text(root, f"{CAC}PaymentMeans/{CAC}PayeeFinancialAccount/{CBC}ID")
    return {
        "item_id": item_id, "kind": kind, "document_number": number, "issue_date": issued, "due_date": due,
        "amount_open": amount, "currency": currency, "partner_name": supplier,
        "partner_iban": iban.replace(" ", "").upper() if iban else None,
        "partner_id": _text(root, f"{party}/{CAC}PartyTaxScheme/{CBC}CompanyID") or _text(root, f"{party}/{CBC}EndpointID"),
        "company_id": None, "bank_account": None,
        "structured_ref": _text(root, f"{CAC}PaymentMeans/{CBC}PaymentID"), "settlement_ref": None,
    }
