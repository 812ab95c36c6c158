"""Xero Accounting API: journal entries as manual journals, or invoices, credit notes and payments.

A manual journal carries our entry as GL lines (``LineAmount`` positive for a debit, negative for
a credit; VAT is already on its own lines, so ``LineAmountTypes`` is ``NoTax``). Its narration
ends with the entry id in brackets, which is how it is found again. Journals go out 50 to a
``PUT /ManualJournals`` with ``summarizeErrors=false``, so one invalid journal comes back with
its own validation errors while the others are created; the request's ``Idempotency-Key`` is
derived from the keys of the journals in it.

Documents (``post = "documents"``): an invoice is a sales invoice (``ACCREC``) under our number
(``InvoiceNumber``, unique in Xero, by which it is found again), a credit note an ``ACCRECCREDIT``
(``CreditNoteNumber``); both AUTHORISED, amounts tax-exclusive, each line with the destination's
``sales_account`` and the ``TaxType`` its VAT category and rate map to. Each line also carries its
``TaxAmount``: our VAT is rounded once per rate (EN 16931), Xero rounds per line, so the lines take
their share of the group's VAT and Xero's totals are ours to the cent (checked on every reply).
Customers are contacts found by ``Name`` or created, once a run. A payment goes to the invoice by
its ``InvoiceID`` with ``Reference`` ``ledgerflow <match id>``, by which it is found again.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from destinations.apis.base import (
    DocumentSettings,
    DocumentToPost,
    JournalToPost,
    LookupFailed,
    Outcome,
    PaymentToPost,
    Refused,
    idempotency_key,
    line_taxes,
    totals_differ,
    vat_key,
)
from destinations.apis.http import ApiClient
from destinations.exports.invoices import Party, plain_number, totals

SYSTEM = "xero"
BASE_URL = "https://api.xero.com/api.xro/2.0"
TOKEN_URL = "https://identity.xero.com/connect/token"
AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
SCOPE = "offline_access accounting.transactions accounting.contacts accounting.settings.read"
BATCH = 50
NARRATION_MAX = 4000
UNIT_DECIMALS = 4  # unitdp=4: Xero keeps unit prices to 4 decimals (2 without it)
GONE = ("VOIDED", "DELETED")
# Invoices and credit notes: (collection, Type, number field, id field)
KIND_INVOICE = ("Invoices", "ACCREC", "InvoiceNumber", "InvoiceID")
KIND_CREDIT_NOTE = ("CreditNotes", "ACCRECCREDIT", "CreditNoteNumber", "CreditNoteID")


class XeroApi:
    system = SYSTEM
    batch_size = BATCH  # objects per call

    def __init__(self, client: ApiClient, account_codes: dict[str, str] | None = None,
                 documents: DocumentSettings | None = None) -> None:
        self.client = client
        self.account_codes = account_codes or {}
        self.documents = documents or DocumentSettings()
        self.contacts: dict[str, str] = {}  # name -> ContactID, for this run
        self.client.headers["xero-tenant-id"] = client.organisation

    def close(self) -> None:
        self.client.close()

    def narration(self, journal: JournalToPost) -> str:
        suffix = f" [{journal.entry_id}]"
        return (journal.description or journal.document_ref)[:NARRATION_MAX - len(suffix)] + suffix

    def _document(self, journal: JournalToPost) -> dict:
        return {"Narration": self.narration(journal), "Date": journal.entry_date.isoformat(), "Status": "POSTED",
                "LineAmountTypes": "NoTax",
                "JournalLines": [{"LineAmount": line.debit - line.credit,
                                  "AccountCode": self.account_codes.get(line.account, line.account),
                                  "Description": line.description or journal.description} for line in journal.lines]}

    def find_journal(self, journal: JournalToPost) -> str | None:
        response = self.client.request("GET", "ManualJournals",
                                       params={"where": f'Narration=="{_quoted(self.narration(journal))}"'})
        _found_or_fail(response, f"journal {journal.entry_id}")
        found = response.json(parse_float=Decimal).get("ManualJournals") or []
        return found[0]["ManualJournalID"] if found else None

    def post_journals(self, journals: list[JournalToPost]) -> list[Outcome]:
        return self._put("ManualJournals", [(j, self._document(j)) for j in journals], {}, _outcome)

    def _put(self, collection: str, pairs: list[tuple], params: dict[str, str], outcome) -> list[Outcome]:
        """PUT (object, element) pairs ``BATCH`` at a time with ``summarizeErrors=false``, under an
        Idempotency-Key derived from the objects' keys; a request refused as a whole is sent again one
        by one, to name the culprit. ``outcome(object, created element)`` reads Xero's answer."""
        outcomes: list[Outcome] = []
        for start in range(0, len(pairs), BATCH):
            outcomes += self._put_batch(collection, pairs[start:start + BATCH], params, outcome)
        return outcomes

    def _put_batch(self, collection: str, pairs: list[tuple], params: dict[str, str], outcome) -> list[Outcome]:
        keys = "".join(idempotency_key(SYSTEM, o.object_id, o.content_hash, 64, o.retry) for o, _ in pairs)
        response = self.client.request("PUT", collection, params={"summarizeErrors": "false", **params},
                                       json_body={collection: [element for _, element in pairs]},
                                       headers={"Idempotency-Key": "lf-" + hashlib.sha256(keys.encode()).hexdigest()})
        if response.status_code == 200:
            created = response.json(parse_float=Decimal).get(collection) or []
            if len(created) == len(pairs):
                return [outcome(item, element) for (item, _), element in zip(pairs, created, strict=True)]
        if len(pairs) > 1:
            return [result for pair in pairs for result in self._put_batch(collection, [pair], params, outcome)]
        return [Outcome(pairs[0][0].object_id, "failed", message=_message(response))]

    # ------------------------------------------------------------ documents

    def ensure_contact(self, buyer: Party) -> str:
        name = (buyer.name or "").strip()
        if not name:
            raise Refused("the buyer has no name to find or create its Xero contact by")
        if name not in self.contacts:
            self.contacts[name] = self._find_contact(name) or self._create_contact(buyer, name)
        return self.contacts[name]

    def _find_contact(self, name: str) -> str | None:
        response = self.client.request("GET", "Contacts", params={"where": f'Name=="{_quoted(name)}"'})
        if response.status_code != 200:
            raise Refused(f"looking up contact {name!r}: {_message(response).removeprefix('Xero: ')}")
        found = response.json(parse_float=Decimal).get("Contacts") or []
        return found[0]["ContactID"] if found else None

    def _create_contact(self, buyer: Party, name: str) -> str:
        contact = {"Name": name}
        if buyer.vat_id:
            contact["TaxNumber"] = buyer.vat_id
        if buyer.street or buyer.city:
            contact["Addresses"] = [{"AddressType": "POBOX", "AddressLine1": buyer.street or "",
                                     "City": buyer.city or "", "PostalCode": buyer.postcode or "",
                                     "Country": buyer.country or ""}]
        key = "lf-contact-" + hashlib.sha256(repr(sorted(contact.items())).encode()).hexdigest()
        response = self.client.request("PUT", "Contacts", json_body={"Contacts": [contact]},
                                       headers={"Idempotency-Key": key})
        if response.status_code != 200:
            raise Refused(f"creating contact {name!r}: {_message(response).removeprefix('Xero: ')}")
        return response.json(parse_float=Decimal)["Contacts"][0]["ContactID"]

    def find_document(self, document: DocumentToPost) -> Outcome | None:
        collection, kind, number_field, id_field = _kind(document)
        where = f'Type=="{kind}" && {number_field}=="{_quoted(document.object_id)}"'
        response = self.client.request("GET", collection, params={"where": where, "unitdp": str(UNIT_DECIMALS)})
        _found_or_fail(response, f"{collection} {document.object_id}")
        found = [e for e in response.json(parse_float=Decimal).get(collection) or [] if e.get("Status") not in GONE]
        return _document_outcome(document, found[0], id_field, "found") if found else None

    def post_documents(self, documents: list[DocumentToPost]) -> list[Outcome]:
        outcomes: dict[str, Outcome] = {}
        ready: dict[tuple, list[tuple[DocumentToPost, dict]]] = {}
        for document in documents:
            try:
                element = self._document_element(document)
            except Refused as refused:
                outcomes[document.object_id] = Outcome(document.object_id, "failed", message=f"Xero: {refused}")
                continue
            ready.setdefault(_kind(document), []).append((document, element))
        for (collection, _, _, id_field), pairs in ready.items():
            def outcome(document: DocumentToPost, element: dict, id_field: str = id_field) -> Outcome:
                return _document_outcome(document, element, id_field, "posted")

            for result in self._put(collection, pairs, {"unitdp": str(UNIT_DECIMALS)}, outcome):
                outcomes[result.object_id] = result
        return [outcomes[document.object_id] for document in documents]

    def _document_element(self, document: DocumentToPost) -> dict:
        invoice = document.invoice
        if not self.documents.sales_account:
            raise Refused("the destination has no sales_account (the AccountCode of invoice lines)")
        lines = []
        for line, tax in zip(invoice.lines, line_taxes(invoice, totals(invoice)), strict=True):
            tax_type = self.documents.tax_codes.get(vat_key(line))
            if tax_type is None:
                raise Refused(f"{invoice.invoice_number}, line {line.line_id}: VAT {vat_key(line)} has no Xero "
                              f"TaxType in the destination's tax_codes")
            if line.unit_price != line.unit_price.quantize(Decimal(1).scaleb(-UNIT_DECIMALS)):
                raise Refused(f"{invoice.invoice_number}, line {line.line_id}: unit price {plain_number(line.unit_price)}"
                              f" has more than the {UNIT_DECIMALS} decimals Xero keeps")
            lines.append({"Description": line.item_name, "Quantity": line.quantity, "UnitAmount": line.unit_price,
                          "AccountCode": self.documents.sales_account, "TaxType": tax_type, "TaxAmount": tax})
        _, kind, number_field, _ = _kind(document)
        element = {"Type": kind, "Contact": {"ContactID": self.ensure_contact(invoice.buyer)},
                   number_field: invoice.invoice_number, "Date": invoice.issue_date.isoformat(),
                   "CurrencyCode": invoice.currency, "LineAmountTypes": "Exclusive", "Status": "AUTHORISED",
                   "LineItems": lines}
        if invoice.due_date is not None:
            element["DueDate"] = invoice.due_date.isoformat()
        if invoice.buyer_reference:
            element["Reference"] = invoice.buyer_reference
        return element

    # ------------------------------------------------------------ payments

    def find_payment(self, payment: PaymentToPost) -> str | None:
        response = self.client.request("GET", "Payments",
                                       params={"where": f'Reference=="{_quoted(_payment_reference(payment))}"'})
        _found_or_fail(response, f"payment {payment.match_id}")
        found = [p for p in response.json(parse_float=Decimal).get("Payments") or [] if p.get("Status") != "DELETED"]
        return found[0]["PaymentID"] if found else None

    def post_payments(self, payments: list[PaymentToPost]) -> list[Outcome]:
        outcomes = []
        for payment in payments:  # one a request: Xero refuses a batch whose payments pay the same invoice
            code = self.documents.payment_accounts.get(payment.bank_account)
            if code is None:
                outcomes.append(Outcome(payment.match_id, "failed", message=f"Xero: bank account "
                                        f"{payment.bank_account} has no Xero account code in payment_accounts"))
                continue
            element = {"Invoice": {"InvoiceID": payment.invoice_external_id}, "Account": {"Code": code},
                       "Date": payment.paid_on.isoformat(), "Amount": payment.amount,
                       "Reference": _payment_reference(payment)}
            response = self.client.request(
                "PUT", "Payments", params={"summarizeErrors": "false"}, json_body={"Payments": [element]},
                headers={"Idempotency-Key": idempotency_key(SYSTEM, payment.match_id, payment.content_hash, 128,
                                                            payment.retry)})
            created = response.json(parse_float=Decimal).get("Payments") if response.status_code == 200 else None
            if created:
                outcomes.append(_element_outcome(payment.match_id, created[0], "PaymentID"))
            else:
                outcomes.append(Outcome(payment.match_id, "failed", message=_message(response)))
        return outcomes


def _kind(document: DocumentToPost) -> tuple[str, str, str, str]:
    return KIND_CREDIT_NOTE if document.is_credit_note else KIND_INVOICE


def _found_or_fail(response, what: str) -> None:
    if response.status_code != 200:
        raise LookupFailed(f"looking up {what} in Xero: {_message(response).removeprefix('Xero: ')}")


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _payment_reference(payment: PaymentToPost) -> str:
    return f"ledgerflow {payment.match_id}"


def _document_outcome(document: DocumentToPost, element: dict, id_field: str, status: str) -> Outcome:
    outcome = _element_outcome(document.object_id, element, id_field, status)
    if outcome.status == "failed":
        return outcome
    money = {name: Decimal(str(element[name])) if element.get(name) is not None else None
             for name in ("SubTotal", "TotalTax", "Total")}
    differs = totals_differ(document.invoice, totals(document.invoice), net=money["SubTotal"] or Decimal(0),
                            tax=money["TotalTax"], total=money["Total"])
    if differs:
        return Outcome(document.object_id, "failed", external_id=outcome.external_id,
                       message=f"Xero {element.get(id_field)}: {differs}")
    return outcome


def _element_outcome(object_id: str, element: dict, id_field: str, status: str = "posted") -> Outcome:
    """One element of a reply with summarizeErrors=false: created (its id), or its validation messages."""
    errors = element.get("ValidationErrors") or []
    if errors or element.get("StatusAttributeString") == "ERROR":
        text = "; ".join(e.get("Message", "") for e in errors) or "refused"
        return Outcome(object_id, "failed", message=f"Xero: {text}")
    return Outcome(object_id, status, external_id=element.get(id_field))


def _outcome(journal: JournalToPost, element: dict) -> Outcome:
    return _element_outcome(journal.entry_id, element, "ManualJournalID")


def _message(response) -> str:
    """Xero's own words for a refused request: the validation messages, else the status."""
    try:
        body = response.json(parse_float=Decimal)
    except ValueError:
        return f"Xero: HTTP {response.status_code}"
    messages = [error.get("Message", "") for element in body.get("Elements") or []
                for error in element.get("ValidationErrors") or []]
    return "Xero: " + ("; ".join(m for m in messages if m) or body.get("Message") or body.get("Detail")
                       or f"HTTP {response.status_code}")


def api(client: ApiClient, settings) -> XeroApi:
    """The registry's constructor: a tenant's ``[destinations.NAME]`` of type xero."""
    return XeroApi(client, settings.accounts, DocumentSettings.of(settings))
