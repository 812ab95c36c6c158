"""QuickBooks Online Accounting API: journal entries as JournalEntry objects, or invoices, credit
memos and payments.

Each line is a ``JournalEntryLineDetail`` with ``PostingType`` Debit or Credit and the QBO account
id our GL account maps to (``accounts`` in the tenant's destination: QBO refers to accounts by
id, not number). ``DocNumber`` (21 characters at most) is a short hash of the entry id, by
which the entry is found again; ``PrivateNote`` carries the entry id in full. Every POST
carries ``requestid``, derived from the entry id and content hash: QBO answers a repeated
request id with the original response.

Documents (``post = "documents"``): an invoice is an ``Invoice``, a credit note a ``CreditMemo``,
with our number as ``DocNumber`` (by which it is found again; QBO keeps 21 characters, so a longer
number is refused for that object, never cut), the customer found by ``DisplayName`` or created
(once a run), and one ``SalesItemLineDetail`` a line on the destination's ``item`` with the
``TaxCodeRef`` its VAT category and rate map to, tax excluded. ``Qty`` and ``UnitPrice`` go with
the line when their product is its amount exactly (QBO refuses them otherwise, error 6070). The
reply's totals are checked against ours: the net (``TotalAmt`` less ``TxnTaxDetail.TotalTax``) and,
when QBO computed it, the tax. A payment is a ``Payment`` linked to the invoice (``LinkedTxn``),
deposited to the account ``payment_accounts`` maps our bank account to, ``DocNumber`` a short hash
of the match id (how it is found again).
"""

from __future__ import annotations

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
    short_reference,
    totals_differ,
    vat_key,
)
from destinations.apis.http import ApiClient
from destinations.exports.invoices import Party, totals

SYSTEM = "qbo"
BASE_URL = "https://quickbooks.api.intuit.com"
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
AUTHORIZE_URL = "https://appcenter.intuit.com/connect/oauth2"
SCOPE = "com.intuit.quickbooks.accounting"
MINOR_VERSION = "75"
DOC_NUMBER_MAX = 21


class QboApi:
    system = SYSTEM
    batch_size = 1  # objects per call

    def __init__(self, client: ApiClient, accounts: dict[str, str], documents: DocumentSettings | None = None) -> None:
        self.client, self.accounts = client, accounts
        self.documents = documents or DocumentSettings()
        self.customers: dict[str, str] = {}  # DisplayName -> Id, for this run

    def close(self) -> None:
        self.client.close()

    def _path(self, resource: str) -> str:
        return f"v3/company/{self.client.organisation}/{resource}"

    def _document(self, journal: JournalToPost) -> dict:
        lines = []
        for number, line in enumerate(journal.lines, start=1):
            posting, amount = ("Debit", line.debit) if line.debit > 0 else ("Credit", line.credit)
            lines.append({"Id": str(number), "Description": (line.description or journal.description)[:4000],
                          "Amount": amount, "DetailType": "JournalEntryLineDetail",
                          "JournalEntryLineDetail": {"PostingType": posting,
                                                     "AccountRef": {"value": self.accounts[line.account]}}})
        return {"DocNumber": short_reference(journal.entry_id), "TxnDate": journal.entry_date.isoformat(),
                "PrivateNote": f"ledgerflow {journal.entry_id}: {journal.description}"[:4000], "Line": lines}

    def find_journal(self, journal: JournalToPost) -> str | None:
        found = self._lookup("JournalEntry", short_reference(journal.entry_id))
        return found[0]["Id"] if found else None

    def post_journals(self, journals: list[JournalToPost]) -> list[Outcome]:
        return [self._post(journal) for journal in journals]

    def _post(self, journal: JournalToPost) -> Outcome:
        unmapped = sorted({line.account for line in journal.lines if line.account not in self.accounts})
        if unmapped:
            return Outcome(journal.entry_id, "failed", message=f"account {', '.join(unmapped)} has no QBO account "
                                                               "id in the destination's accounts table")
        key = idempotency_key(SYSTEM, journal.entry_id, journal.content_hash, 50, journal.retry)
        response = self.client.request("POST", self._path("journalentry"), json_body=self._document(journal),
                                       params={"requestid": key, "minorversion": MINOR_VERSION})
        if response.status_code == 200:
            return Outcome(journal.entry_id, "posted", external_id=response.json(parse_float=Decimal)["JournalEntry"]["Id"])
        return Outcome(journal.entry_id, "failed", message=_message(response))

    # ------------------------------------------------------------ documents

    def _lookup(self, entity: str, doc_number: str) -> list[dict]:
        """Objects with this DocNumber; LookupFailed when QBO does not answer the query."""
        try:
            return self._query(entity, "DocNumber", doc_number)
        except Refused as refused:
            raise LookupFailed(f"looking up {entity} {doc_number} in QBO: {refused}") from None

    def _query(self, entity: str, field: str, value: str) -> list[dict]:
        quoted = value.replace("\\", "\\\\").replace("'", "\\'")
        response = self.client.request("GET", self._path("query"), params={
            "query": f"select * from {entity} where {field} = '{quoted}'", "minorversion": MINOR_VERSION})
        if response.status_code != 200:
            raise Refused(f"looking up {entity} {field} {value!r}: {_message(response).removeprefix('QBO: ')}")
        return response.json(parse_float=Decimal).get("QueryResponse", {}).get(entity) or []

    def _create(self, resource: str, entity: str, body: dict, request_id: str) -> dict:
        response = self.client.request("POST", self._path(resource), json_body=body,
                                       params={"requestid": request_id, "minorversion": MINOR_VERSION})
        if response.status_code != 200:
            raise Refused(_message(response).removeprefix("QBO: "))
        return response.json(parse_float=Decimal)[entity]

    def ensure_contact(self, buyer: Party) -> str:
        name = (buyer.name or "").strip()
        if not name:
            raise Refused("the buyer has no name to find or create its customer by")
        if name not in self.customers:
            found = self._query("Customer", "DisplayName", name)
            self.customers[name] = found[0]["Id"] if found else self._create_customer(buyer, name)
        return self.customers[name]

    def _create_customer(self, buyer: Party, name: str) -> str:
        customer = {"DisplayName": name, "CompanyName": name}
        if buyer.street or buyer.city:
            customer["BillAddr"] = {key: value for key, value in (
                ("Line1", buyer.street), ("City", buyer.city), ("PostalCode", buyer.postcode),
                ("Country", buyer.country)) if value}
        request_id = idempotency_key(SYSTEM, f"customer {name}", repr(sorted(customer.items())), 50)
        try:
            return self._create("customer", "Customer", customer, request_id)["Id"]
        except Refused as refused:
            raise Refused(f"creating customer {name!r}: {refused}") from None

    def find_document(self, document: DocumentToPost) -> Outcome | None:
        if len(document.object_id) > DOC_NUMBER_MAX:
            return None  # never posted: refused before any call
        found = self._lookup(_entity(document), document.object_id)
        return _document_outcome(document, found[0], "found") if found else None

    def post_documents(self, documents: list[DocumentToPost]) -> list[Outcome]:
        return [self._post_document(document) for document in documents]

    def _post_document(self, document: DocumentToPost) -> Outcome:
        try:
            body = self._document_body(document)
            request_id = idempotency_key(SYSTEM, document.object_id, document.content_hash, 50,
                                         document.retry)
            created = self._create(_entity(document).lower(), _entity(document), body, request_id)
        except Refused as refused:
            return Outcome(document.object_id, "failed", message=f"QBO: {refused}")
        return _document_outcome(document, created, "posted")

    def _document_body(self, document: DocumentToPost) -> dict:
        invoice = document.invoice
        if len(invoice.invoice_number) > DOC_NUMBER_MAX:
            raise Refused(f"{_entity(document)} number {invoice.invoice_number!r} has {len(invoice.invoice_number)} "
                          f"characters; QBO's DocNumber holds at most {DOC_NUMBER_MAX} (not posted, never cut: "
                          "number it shorter in the billing system)")
        if not self.documents.item:
            raise Refused("the destination has no item (the QBO Item id of invoice lines)")
        lines = []
        for line in invoice.lines:
            tax_code = self.documents.tax_codes.get(vat_key(line))
            if tax_code is None:
                raise Refused(f"{invoice.invoice_number}, line {line.line_id}: VAT {vat_key(line)} has no QBO "
                              "TaxCode id in the destination's tax_codes")
            detail = {"ItemRef": {"value": self.documents.item}, "TaxCodeRef": {"value": tax_code}}
            if line.quantity * line.unit_price == line.line_net:
                detail.update(Qty=line.quantity, UnitPrice=line.unit_price)
            lines.append({"Amount": line.line_net, "Description": line.item_name[:4000],
                          "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail})
        body = {"DocNumber": invoice.invoice_number, "TxnDate": invoice.issue_date.isoformat(),
                "CustomerRef": {"value": self.ensure_contact(invoice.buyer)},
                "CurrencyRef": {"value": invoice.currency}, "GlobalTaxCalculation": "TaxExcluded", "Line": lines,
                "PrivateNote": f"ledgerflow {invoice.invoice_number}"
                               + (f", buyer reference {invoice.buyer_reference}" if invoice.buyer_reference else "")}
        if invoice.due_date is not None and not document.is_credit_note:
            body["DueDate"] = invoice.due_date.isoformat()
        return body

    # ------------------------------------------------------------ payments

    def find_payment(self, payment: PaymentToPost) -> str | None:
        found = self._lookup("Payment", short_reference(payment.match_id))
        return found[0]["Id"] if found else None

    def post_payments(self, payments: list[PaymentToPost]) -> list[Outcome]:
        return [self._post_payment(payment) for payment in payments]

    def _post_payment(self, payment: PaymentToPost) -> Outcome:
        account = self.documents.payment_accounts.get(payment.bank_account)
        if account is None:
            return Outcome(payment.match_id, "failed", message=f"QBO: bank account {payment.bank_account} has no "
                                                               "QBO deposit account id in payment_accounts")
        try:
            body = {"DocNumber": short_reference(payment.match_id), "TxnDate": payment.paid_on.isoformat(),
                    "PrivateNote": f"ledgerflow match {payment.match_id}",
                    "CustomerRef": {"value": self.ensure_contact(payment.invoice.buyer)},
                    "DepositToAccountRef": {"value": account}, "TotalAmt": payment.amount,
                    "Line": [{"Amount": payment.amount,
                              "LinkedTxn": [{"TxnId": payment.invoice_external_id, "TxnType": "Invoice"}]}]}
            created = self._create("payment", "Payment", body,
                                   idempotency_key(SYSTEM, payment.match_id, payment.content_hash, 50,
                                                   payment.retry))
        except Refused as refused:
            return Outcome(payment.match_id, "failed", message=f"QBO: {refused}")
        return Outcome(payment.match_id, "posted", external_id=created["Id"])


def _entity(document: DocumentToPost) -> str:
    return "CreditMemo" if document.is_credit_note else "Invoice"


def _document_outcome(document: DocumentToPost, created: dict, status: str) -> Outcome:
    """QBO's totals against ours: TotalAmt includes tax, TxnTaxDetail.TotalTax is the tax QBO computed
    (absent when it computed none)."""
    stated_tax = (created.get("TxnTaxDetail") or {}).get("TotalTax")
    tax = None if stated_tax is None else Decimal(str(stated_tax))
    total = Decimal(str(created.get("TotalAmt", 0)))
    differs = totals_differ(document.invoice, totals(document.invoice), net=total - (tax or 0), tax=tax, total=None)
    if differs:
        return Outcome(document.object_id, "failed", external_id=created.get("Id"),
                       message=f"QBO {_entity(document)} {created.get('Id')}: {differs}")
    return Outcome(document.object_id, status, external_id=created.get("Id"))


def _message(response) -> str:
    try:
        fault = response.json(parse_float=Decimal).get("Fault") or {}
    except ValueError:
        return f"QBO: HTTP {response.status_code}"
    errors = fault.get("Error") or []
    text = "; ".join(f"{e.get('Message', '')}: {e.get('Detail', '')}".strip(": ") for e in errors)
    return "QBO: " + (text or f"HTTP {response.status_code}")


def api(client: ApiClient, settings) -> QboApi:
    """The registry's constructor: a tenant's ``[destinations.NAME]`` of type qbo."""
    return QboApi(client, settings.accounts, DocumentSettings.of(settings))
