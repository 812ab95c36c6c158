"""One Xero organisation's books, as the fake Xero keeps them: manual journals, invoices, credit
notes, payments and contacts, with the model rules our clients must respect.

Rules checked (the ones that matter for posting journals and invoices; messages as Xero words
them where we know Xero's wording):

* a manual journal has at least two lines, each with an account and an amount, and its
  lines balance (debits positive, credits negative, summing to zero);
* an invoice is ACCREC or ACCPAY, a credit note ACCRECCREDIT or ACCPAYCREDIT; sales invoice
  and credit note numbers are unique (Xero's default) and numbered INV-0001 / CN-0001 when
  not given; a contact given by ``ContactID`` must exist, one given only by ``Name`` is found
  or created, as Xero does;
* a payment is made against an AUTHORISED invoice or credit note for at most what is still
  due, and the document becomes PAID when nothing is left;
* contact names are unique among contacts.

Writes go through ``_put`` and are logged, so a request whose elements do not all pass can
be undone as a whole (``summarizeErrors=true``, Xero's default) without copying the books.
Read filters: ``where`` (see ``parse_where``) and 1-based pages of ``pageSize`` (100).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000


# --- Xero's JSON dates -------------------------------------------------------------------------

def ms_date(moment: datetime) -> str:
    """Xero's .NET JSON date, ``/Date(1552521600000+0000)/``."""
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def now_ms_date() -> str:
    return ms_date(datetime.now(UTC))


def _to_ms_date(value: str) -> str:
    """``2026-03-14`` or ``2026-03-14T10:00:00`` as Xero returns it; ValueError when neither."""
    if value.startswith("/Date("):
        return value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ms_date(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _money(value: object) -> Decimal:
    return Decimal(str(value))


def _json_money(value: Decimal) -> float:
    return float(value.quantize(CENT, ROUND_HALF_UP))  # not money: the fake answers JSON numbers, as Xero does


# --- the where filter --------------------------------------------------------------------------

class WhereError(ValueError):
    """A ``where`` expression the fake cannot read (Xero answers QueryParseException)."""


_TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>==|!=|>=|<=|>|<|&&|\|\|)'
                    r'|(?P<number>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][\w.]*)|(?P<punct>[(),]))')
_METHODS = {"Contains": lambda field_value, text: text in field_value,
            "StartsWith": lambda field_value, text: field_value.startswith(text),
            "EndsWith": lambda field_value, text: field_value.endswith(text)}
_COMPARE = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
            "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}


def _tokens(expression: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    expression = expression.strip()
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if not match or match.end() == position:
            raise WhereError(f"cannot read where at {expression[position:]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _field(record: dict, path: str) -> object:
    value: object = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _literal(tokens: list[tuple[str, str]], at: int) -> tuple[object, int]:
    """A string, number, true/false or Guid("...") starting at ``tokens[at]``; and where it ends."""
    kind, text = tokens[at]
    if kind == "string":
        return text[1:-1].replace('\\"', '"'), at + 1
    if kind == "number":
        return Decimal(text), at + 1
    if kind == "word" and text.lower() in ("true", "false"):
        return text.lower() == "true", at + 1
    if kind == "word" and text == "Guid" and [t for _, t in tokens[at + 1:at + 4:2]] == ["(", ")"]:
        return tokens[at + 2][1].strip('"').lower(), at + 4
    raise WhereError(f"expected a value, found {text!r}")


def _comparable(value: object, literal: object) -> object:
    """The field value in the literal's terms (Guids compare lower case, amounts as Decimal)."""
    if isinstance(literal, Decimal) and isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            return _money(value)
        except InvalidOperation:
            return value
    if isinstance(literal, str) and isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F-]{36}", value):
        return value.lower() if re.fullmatch(r"[0-9a-f-]{36}", literal) else value
    return value


def _clause(tokens: list[tuple[str, str]], at: int) -> tuple[Callable[[dict], bool], int]:
    kind, path = tokens[at]
    if kind != "word":
        raise WhereError(f"expected a field name, found {path!r}")
    if at + 1 < len(tokens) and tokens[at + 1][1] == "(":
        field_path, _, method = path.rpartition(".")
        if method not in _METHODS or not field_path:
            raise WhereError(f"{path}(...) is not supported; use Contains, StartsWith or EndsWith")
        text, end = _literal(tokens, at + 2)
        if end >= len(tokens) or tokens[end][1] != ")":
            raise WhereError(f"{path}( is not closed")
        test = _METHODS[method]
        return lambda record: isinstance(_field(record, field_path), str) and test(_field(record, field_path),
                                                                                     text), end + 1
    if at + 2 >= len(tokens) or tokens[at + 1][0] != "op" or tokens[at + 1][1] not in _COMPARE:
        raise WhereError(f"expected a comparison after {path}")
    compare = _COMPARE[tokens[at + 1][1]]
    literal, end = _literal(tokens, at + 2)

    def matches(record: dict) -> bool:
        value = _comparable(_field(record, path), literal)
        try:
            return compare(value, literal)
        except TypeError:
            return False
    return matches, end


def parse_where(expression: str) -> Callable[[dict], bool]:
    """Xero's ``where``: comparisons (``==`` ``!=`` ``<`` ``>`` ...) and ``.Contains("..")`` on
    dotted fields, joined by AND / OR (AND binds tighter); no parentheses, no DateTime(...)."""
    tokens = _tokens(expression)
    any_of: list[list[Callable[[dict], bool]]] = [[]]
    at = 0
    while at < len(tokens):
        test, at = _clause(tokens, at)
        any_of[-1].append(test)
        if at < len(tokens):
            joiner = tokens[at][1].upper()
            if joiner in ("OR", "||"):
                any_of.append([])
            elif joiner not in ("AND", "&&"):
                raise WhereError(f"expected AND or OR, found {tokens[at][1]!r}")
            at += 1
            if at == len(tokens):
                raise WhereError(f"nothing after {joiner}")
    return lambda record: any(all(test(record) for test in group) for group in any_of)


# --- the books ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """One collection of the Accounting API: its id field, the flag Xero sets on a rejected
    element (manual journals have none in the schema) and the rules that build what is stored."""

    id_field: str
    error_flag: str | None
    prepare: Callable[[Books, dict, dict | None], tuple[dict, list[str]]]


@dataclass
class Books:
    """What one organisation holds; every collection maps id -> the object as Xero returns it."""

    tenant_id: str
    name: str
    currency: str = "EUR"
    collections: dict[str, dict[str, dict]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    _undo: list[tuple[dict, str, dict | None]] | None = None
    _numbers: dict[str, int] = field(default_factory=dict)

    # transactions: a request is all-or-nothing unless summarizeErrors=false
    def begin(self) -> None:
        self._undo = []

    def commit(self) -> None:
        self._undo = None

    def rollback(self) -> None:
        for collection, object_id, previous in reversed(self._undo or []):
            if previous is None:
                collection.pop(object_id, None)
            else:
                collection[object_id] = previous
        self._undo = None

    def _put(self, kind: str, stored: dict) -> dict:
        collection = self.collections[kind]
        object_id = stored[KINDS[kind].id_field]
        if self._undo is not None:
            self._undo.append((collection, object_id, collection.get(object_id)))
        collection[object_id] = stored
        return stored

    # reading
    def get(self, kind: str, object_id: str) -> dict | None:
        return self.collections[kind].get(object_id.lower())

    def find_one(self, kind: str, field_name: str, value: object, **also: object) -> dict | None:
        return next((record for record in self.collections[kind].values()
                     if record.get(field_name) == value and all(record.get(k) == v for k, v in also.items())),
                    None)

    def select(self, kind: str, where: str | None = None,
               one_of: dict[str, list[str]] | None = None) -> list[dict]:
        """Records matching ``where`` whose (dotted) fields each hold one of the values in ``one_of``
        (``InvoiceNumbers=``, ``IDs=``: compared case-insensitively, as Xero compares ids)."""
        test = parse_where(where) if where else None
        wanted = {name: {value.strip().lower() for value in values} for name, values in (one_of or {}).items()}
        return [record for record in self.collections[kind].values()
                if (test is None or test(record))
                and all(str(_field(record, name)).lower() in values for name, values in wanted.items())]

    # writing
    def save(self, kind: str, element: dict) -> tuple[dict | None, list[str]]:
        """Create the element, or update the stored object whose id it carries; (object, errors)."""
        spec = KINDS[kind]
        existing = None
        if element.get(spec.id_field):
            existing = self.get(kind, str(element[spec.id_field]))
            if existing is None:
                return None, [f"{spec.id_field} {element[spec.id_field]} could not be found"]
        stored, errors = spec.prepare(self, element, existing)
        if errors:
            return None, errors
        return self._put(kind, stored), []

    def next_number(self, prefix: str, kind: str, field_name: str) -> str:
        number = self._numbers.get(prefix, 0)
        while True:
            number += 1
            candidate = f"{prefix}-{number:04d}"
            if self.find_one(kind, field_name, candidate) is None:
                self._numbers[prefix] = number
                return candidate


def _dated(element: dict, errors: list[str], *names: str) -> dict:
    """The element with its dates as Xero returns them; a bad date is a validation error."""
    dated = dict(element)
    for name in names:
        if isinstance(dated.get(name), str):
            try:
                dated[name] = _to_ms_date(dated[name])
            except ValueError:
                errors.append(f"{name} {dated[name]!r} is not a valid date (YYYY-MM-DD)")
    return dated


def _base(element: dict, existing: dict | None, id_field: str) -> dict:
    merged = {**(existing or {}), **element}
    merged[id_field] = (existing or {}).get(id_field) or str(uuid.uuid4())
    merged["UpdatedDateUTC"] = now_ms_date()
    return merged


# --- manual journals ---------------------------------------------------------------------------

def _journal_line_errors(lines: list[dict]) -> list[str]:
    errors = []
    if len(lines) < 2:
        errors.append(f"A manual journal must have at least two lines; it has {len(lines)}")
    for number, line in enumerate(lines, start=1):
        if line.get("LineAmount") is None:
            errors.append(f"Journal line {number}: LineAmount must be specified")
        if not line.get("AccountCode") and not line.get("AccountID"):
            errors.append(f"Journal line {number}: Account code must be specified")
    amounts = [_money(line["LineAmount"]) for line in lines if line.get("LineAmount") is not None]
    debits = sum((a for a in amounts if a > 0), Decimal(0))
    credits = sum((a for a in amounts if a < 0), Decimal(0))
    if debits + credits != 0:
        errors.append(f"The total debits ({debits.quantize(CENT)}) must equal total credits ({credits.quantize(CENT)})")
    return errors


def prepare_manual_journal(books: Books, element: dict, existing: dict | None) -> tuple[dict, list[str]]:
    journal = _base(element, existing, "ManualJournalID")
    errors = _journal_line_errors(journal.get("JournalLines") or [])
    journal = _dated(journal, errors, "Date")
    journal.setdefault("Date", ms_date(datetime.combine(date.today(), datetime.min.time(), UTC)))
    journal.setdefault("Status", "DRAFT")
    journal.setdefault("LineAmountTypes", "NoTax")
    journal.setdefault("ShowOnCashBasisReports", True)
    journal.setdefault("HasAttachments", False)
    journal["JournalLines"] = [{"TaxType": "NONE", "Tracking": [], "IsBlank": False, **line}
                               for line in journal.get("JournalLines") or []]
    return journal, errors


# --- invoices and credit notes -----------------------------------------------------------------

def _contact_for(books: Books, given: object, document_type: str, errors: list[str]) -> dict | None:
    """The stored contact a document names: by ContactID (must exist) or by Name (found or
    created, as Xero does); marks it a customer or supplier."""
    if not isinstance(given, dict) or not (given.get("ContactID") or given.get("Name")):
        errors.append("A Contact must be specified (ContactID or Name)")
        return None
    if given.get("ContactID"):
        contact = books.get("Contacts", str(given["ContactID"]))
        if contact is None:
            errors.append(f"Contact {given['ContactID']} could not be found")
            return None
    else:
        contact = books.find_one("Contacts", "Name", given["Name"]) or prepare_contact(books, given, None)[0]
    role = "IsCustomer" if document_type.startswith("ACCREC") else "IsSupplier"
    return books._put("Contacts", {**contact, role: True}) if not errors else contact


def _priced(document: dict) -> dict:
    """Line amounts, SubTotal, TotalTax and Total from the lines (no tax rates: TaxAmount as given)."""
    lines, subtotal, total_tax = [], Decimal(0), Decimal(0)
    for line in document.get("LineItems") or []:
        amount = (_money(line["LineAmount"]) if line.get("LineAmount") is not None
                  else (_money(line.get("Quantity", 1)) * _money(line.get("UnitAmount", 0))).quantize(CENT))
        tax = _money(line.get("TaxAmount", 0))
        lines.append({"LineItemID": str(uuid.uuid4()), "Quantity": 1.0, "Tracking": [], **line,
                      "LineAmount": _json_money(amount), "TaxAmount": _json_money(tax)})
        subtotal, total_tax = subtotal + amount, total_tax + tax
    if document.get("LineAmountTypes") == "Inclusive":
        subtotal -= total_tax
    return {**document, "LineItems": lines, "SubTotal": _json_money(subtotal),
            "TotalTax": _json_money(total_tax), "Total": _json_money(subtotal + total_tax)}


def _prepare_document(books: Books, element: dict, existing: dict | None, *, kind: str, id_field: str,
                      number_field: str, types: tuple[str, str], prefix: str) -> tuple[dict, list[str]]:
    errors: list[str] = []
    document = _dated(_base(element, existing, id_field), errors, "Date", "DueDate")
    if document.get("Type") not in types:
        errors.append(f"Type must be {' or '.join(types)}; it is {document.get('Type')!r}")
        return document, errors
    if document.get("Status", "DRAFT") not in ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"):
        errors.append(f"Status {document['Status']!r} is not a status a document can be saved with")
    sales = document["Type"] == types[0]
    if sales and document.get(number_field):
        other = books.find_one(kind, number_field, document[number_field], Type=types[0])
        if other is not None and other[id_field] != document[id_field]:
            errors.append(f"{'Invoice' if kind == 'Invoices' else 'Credit Note'} # must be unique. "
                          f"{document[number_field]} is already used")
    contact = _contact_for(books, document.get("Contact"), document["Type"], errors)
    if errors:
        return document, errors
    if sales and not document.get(number_field):
        document[number_field] = books.next_number(prefix, kind, number_field)
    document = _priced(document)
    document["Contact"] = {"ContactID": contact["ContactID"], "Name": contact["Name"]}
    document.setdefault("Status", "DRAFT")
    document.setdefault("LineAmountTypes", "Exclusive")
    document.setdefault("CurrencyCode", books.currency)
    document.setdefault("HasAttachments", False)
    document["HasErrors"] = False
    return document, errors


def prepare_invoice(books: Books, element: dict, existing: dict | None) -> tuple[dict, list[str]]:
    invoice, errors = _prepare_document(books, element, existing, kind="Invoices", id_field="InvoiceID",
                                        number_field="InvoiceNumber", types=("ACCREC", "ACCPAY"), prefix="INV")
    if not errors:
        paid = _money(invoice.get("AmountPaid", 0))
        invoice.update(AmountPaid=_json_money(paid), AmountCredited=invoice.get("AmountCredited", 0.0),
                       AmountDue=_json_money(_money(invoice["Total"]) - paid))
    return invoice, errors


def prepare_credit_note(books: Books, element: dict, existing: dict | None) -> tuple[dict, list[str]]:
    note, errors = _prepare_document(books, element, existing, kind="CreditNotes", id_field="CreditNoteID",
                                     number_field="CreditNoteNumber", types=("ACCRECCREDIT", "ACCPAYCREDIT"),
                                     prefix="CN")
    if not errors:
        note["RemainingCredit"] = note.get("RemainingCredit", note["Total"]) if existing else note["Total"]
    return note, errors


# --- payments ----------------------------------------------------------------------------------

_PAYMENT_TYPES = {"ACCREC": "ACCRECPAYMENT", "ACCPAY": "ACCPAYPAYMENT",
                  "ACCRECCREDIT": "ARCREDITPAYMENT", "ACCPAYCREDIT": "APCREDITPAYMENT"}


def _paid_document(books: Books, payment: dict, errors: list[str]) -> tuple[str, dict] | tuple[None, None]:
    """The invoice or credit note a payment names (by ID or number in the object, or by number)."""
    for kind, key, id_field, number_field in (("Invoices", "Invoice", "InvoiceID", "InvoiceNumber"),
                                              ("CreditNotes", "CreditNote", "CreditNoteID", "CreditNoteNumber")):
        given = payment.get(key) or ({number_field: payment[number_field]} if payment.get(number_field) else None)
        if not given:
            continue
        document = (books.get(kind, str(given[id_field])) if given.get(id_field)
                    else books.find_one(kind, number_field, given.get(number_field)))
        if document is None:
            errors.append(f"{key} {given.get(id_field) or given.get(number_field)} could not be found")
            return None, None
        return kind, document
    errors.append("A payment must name an Invoice or a CreditNote")
    return None, None


def prepare_payment(books: Books, element: dict, existing: dict | None) -> tuple[dict, list[str]]:
    errors: list[str] = []
    if existing is not None:
        return existing, ["Payments cannot be changed by the fake (only created)"]
    payment = _dated(_base(element, None, "PaymentID"), errors, "Date")
    account = payment.get("Account") or {}
    if not (account.get("AccountID") or account.get("Code") or payment.get("Code")):
        errors.append("Account code must be specified (Account.AccountID or Account.Code)")
    amount = _money(payment.get("Amount") or 0)
    if amount <= 0:
        errors.append("Payment amount must be greater than zero")
    kind, document = _paid_document(books, payment, errors)
    if document is None:
        return payment, errors
    due_field = "AmountDue" if kind == "Invoices" else "RemainingCredit"
    if document.get("Status") != "AUTHORISED":
        errors.append(f"Payments can only be made against AUTHORISED documents; this one is {document.get('Status')}")
    elif amount > _money(document[due_field]):
        errors.append("Payment amount exceeds the amount outstanding on this document")
    if errors:
        return payment, errors
    _apply_payment(books, kind, document, amount, payment.get("Date"))
    key, id_field = ("Invoice", "InvoiceID") if kind == "Invoices" else ("CreditNote", "CreditNoteID")
    number_field = "InvoiceNumber" if kind == "Invoices" else "CreditNoteNumber"
    payment[key] = {id_field: document[id_field], number_field: document.get(number_field),
                    "Type": document["Type"], "Contact": document["Contact"]}
    payment.update(Amount=_json_money(amount), Status="AUTHORISED", PaymentType=_PAYMENT_TYPES[document["Type"]],
                   IsReconciled=bool(payment.get("IsReconciled", False)), HasAccount=True,
                   HasValidationErrors=False)
    return payment, errors


def _apply_payment(books: Books, kind: str, document: dict, amount: Decimal, paid_on: str | None) -> None:
    due_field = "AmountDue" if kind == "Invoices" else "RemainingCredit"
    left = _money(document[due_field]) - amount
    updated = {**document, due_field: _json_money(left), "UpdatedDateUTC": now_ms_date()}
    if kind == "Invoices":
        updated["AmountPaid"] = _json_money(_money(document.get("AmountPaid", 0)) + amount)
    if left == 0:
        updated.update(Status="PAID", FullyPaidOnDate=paid_on or now_ms_date())
    books._put(kind, updated)


# --- contacts ----------------------------------------------------------------------------------

def prepare_contact(books: Books, element: dict, existing: dict | None) -> tuple[dict, list[str]]:
    contact = _base(element, existing, "ContactID")
    errors = []
    name = contact.get("Name")
    if not name:
        errors.append("The contact name must be specified")
    else:
        other = books.find_one("Contacts", "Name", name)
        if other is not None and other["ContactID"] != contact["ContactID"]:
            errors.append(f"The contact name {name} is already assigned to another contact. "
                          "The contact name must be unique across all active contacts.")
    contact.setdefault("ContactStatus", "ACTIVE")
    contact.setdefault("IsSupplier", False)
    contact.setdefault("IsCustomer", False)
    contact.setdefault("HasValidationErrors", False)
    return contact, errors


KINDS: dict[str, Kind] = {
    "ManualJournals": Kind("ManualJournalID", None, prepare_manual_journal),
    "Invoices": Kind("InvoiceID", "HasErrors", prepare_invoice),
    "CreditNotes": Kind("CreditNoteID", "HasErrors", prepare_credit_note),
    "Payments": Kind("PaymentID", "HasValidationErrors", prepare_payment),
    "Contacts": Kind("ContactID", "HasValidationErrors", prepare_contact),
}
