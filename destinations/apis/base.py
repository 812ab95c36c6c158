"""What ledgerflow posts to an accounting API, and the small interface every API module offers.

An API module (``xero``, ``qbo``; registered in ``destinations.apis``) turns journal entries, or
(a destination with ``post = "documents"``) issued invoices, credit notes and their payments, into
its system's objects and posts them. It never decides *whether* to post: ``flows.post`` does, from
the export ledger. Every object carries an idempotency key derived from its id and content hash,
and a reference by which it can be found again (after a crash between posting and recording, the
next run looks it up instead of posting it twice).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol

from destinations.exports.invoices import Invoice, InvoiceLine, Party, Totals, amount_text, plain_number


class LookupFailed(RuntimeError):
    """Whether an object is already in the system could not be told (the lookup was refused): posting
    stops rather than risk a duplicate, and the next run asks again."""


@dataclass(frozen=True)
class LineToPost:
    account: str
    account_name: str
    description: str
    debit: Decimal
    credit: Decimal
    vat_code: str | None
    partner_id: str | None
    partner_name: str | None


@dataclass(frozen=True)
class JournalToPost:
    entry_id: str
    entry_date: date
    journal_code: str
    description: str
    document_ref: str
    currency: str
    content_hash: str
    lines: tuple[LineToPost, ...]
    retry: str = ""  # as DocumentToPost.retry

    @property
    def object_id(self) -> str:
        return self.entry_id


@dataclass(frozen=True)
class DocumentToPost:
    """An issued invoice (type 380) or credit note (381), the version with ``content_hash``."""

    invoice: Invoice
    content_hash: str
    # Set (to the run id) when an earlier attempt failed or died and a lookup found nothing there: the
    # request then gets a new idempotency key, since QBO (and Xero) answer a repeated key with the
    # first reply -- a validation fault fixed since would otherwise be replayed for ever.
    retry: str = ""

    @property
    def object_id(self) -> str:
        return self.invoice.invoice_number

    @property
    def is_credit_note(self) -> bool:
        return self.invoice.invoice_type == "381"


@dataclass(frozen=True)
class PaymentToPost:
    """Money a reconciliation match applied to an invoice already posted to the system (its id there)."""

    match_id: str
    content_hash: str
    invoice: Invoice  # the version posted: its buyer is the customer who paid
    invoice_external_id: str
    paid_on: date
    amount: Decimal
    bank_account: str  # our bank GL account, mapped by the destination's payment_accounts
    retry: str = ""  # as DocumentToPost.retry

    @property
    def object_id(self) -> str:
        return self.match_id


@dataclass(frozen=True)
class DocumentSettings:
    """What documents need beyond journals (the destination's keys of the same names)."""

    sales_account: str | None = None
    item: str | None = None
    tax_codes: dict[str, str] = field(default_factory=dict)
    payment_accounts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, settings) -> DocumentSettings:
        return cls(settings.sales_account, settings.item, dict(settings.tax_codes), dict(settings.payment_accounts))


class Refused(Exception):
    """An object this system cannot take as it is (a missing mapping, a field too long, the remote
    system's validation message): it fails alone, the others go on."""


@dataclass(frozen=True)
class Outcome:
    object_id: str
    status: str  # posted | found (already there: recorded, not posted again) | failed | waiting (not yet)
    external_id: str | None = None
    message: str | None = None  # the remote system's message, for a failure


class AccountingApi(Protocol):
    system: str
    batch_size: int  # objects per call: outcomes are recorded after each call

    def find_journal(self, journal: JournalToPost) -> str | None:
        """The remote id of this journal if it is already there (looked up by its reference)."""

    def post_journals(self, journals: list[JournalToPost]) -> list[Outcome]:
        """Post the journals (in as few calls as the API allows); one outcome per journal, in order."""

    def ensure_contact(self, buyer: Party) -> str:
        """The remote id of the customer named ``buyer.name``: looked up, created when missing, kept
        for the rest of the run. Raises ``Refused`` with the system's message."""

    def find_document(self, document: DocumentToPost) -> Outcome | None:
        """``found`` (with its remote id) if the invoice or credit note is there under our number,
        ``failed`` if it is there with other totals than ours, else None."""

    def post_documents(self, documents: list[DocumentToPost]) -> list[Outcome]:
        """Post invoices and credit notes, each with its customer; an object whose totals as the
        system computed them differ from ``totals()`` fails. One outcome per document, in order."""

    def find_payment(self, payment: PaymentToPost) -> str | None:
        """The remote id of this payment if it is already there (looked up by its reference)."""

    def post_payments(self, payments: list[PaymentToPost]) -> list[Outcome]:
        """Post the payments; one outcome per payment, in order."""

    def close(self) -> None: ...


def idempotency_key(system: str, object_id: str, content_hash: str, length: int, retry: str = "") -> str:
    """The same object with the same content always gets the same key; different content, another.
    ``retry`` (see ``DocumentToPost.retry``) makes a new key for an object known not to be there."""
    text = f"{system}\x1f{object_id}\x1f{content_hash}" + (f"\x1f{retry}" if retry else "")
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"lf-{digest}"[:length]


def short_reference(object_id: str, length: int = 21) -> str:
    """A reference of at most ``length`` characters for fields that short (QBO's DocNumber: 21):
    ``LF`` + base32 of the id's hash, the same for the same id."""
    digest = base64.b32encode(hashlib.sha256(object_id.encode()).digest()).decode().rstrip("=")
    return ("LF" + digest)[:length]


def json_bytes(document: object) -> bytes:
    """JSON with every Decimal written as its exact decimal text (``120.10``), never through a float:
    each is put in as a unique placeholder string, then the quoted placeholder is replaced."""
    import secrets

    nonce, numbers = secrets.token_hex(8), []

    def placed(value: object) -> object:
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError(f"{value} is not an amount")
            numbers.append(f"{value:f}")
            return f"{nonce}:{len(numbers) - 1}"
        if isinstance(value, dict):
            return {key: placed(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [placed(item) for item in value]
        return value

    text = json.dumps(placed(document), ensure_ascii=False, separators=(",", ":"))
    for index, number in enumerate(numbers):  # quoted: "…:1" cannot match inside "…:12"
        text = text.replace(f'"{nonce}:{index}"', number)
    return text.encode("utf-8")


def vat_key(line: InvoiceLine) -> str:
    """A line's VAT as the destination's ``tax_codes`` names it: ``S:20``, ``S:5.5``, ``K:0``, ``O``."""
    return line.vat_category if line.vat_rate is None else f"{line.vat_category}:{plain_number(line.vat_rate)}"


def line_taxes(invoice: Invoice, invoice_totals: Totals) -> list[Decimal]:
    """Each line's share of its VAT group's tax (rounded once per group, EN 16931 BR-CO-17): the
    group's other lines get their own rounded VAT, the last one the rest, so that the lines add up to
    exactly the tax of ``totals()`` however the receiving system would have rounded per line."""
    from schemas.money import round_money

    left = {(group.category, group.rate): group.tax for group in invoice_totals.groups}
    last = {(line.vat_category, line.vat_rate): index for index, line in enumerate(invoice.lines)}
    shares = []
    for index, line in enumerate(invoice.lines):
        key = (line.vat_category, line.vat_rate)
        if last[key] == index:
            share = left[key]
        else:
            share = round_money(line.line_net * (line.vat_rate or 0) / 100)
        left[key] -= share
        shares.append(share)
    return shares


def totals_differ(invoice: Invoice, ours: Totals, *, net: Decimal, tax: Decimal | None,
                  total: Decimal | None) -> str | None:
    """What differs between our totals and the system's (None when they agree); ``tax`` or
    ``total`` None: the system did not state it."""
    theirs = {"net": net, "tax": tax, "total": total}
    mine = {"net": ours.net, "tax": ours.tax, "total": ours.gross}
    wrong = [f"{name} {amount_text(theirs[name])} (ours {amount_text(mine[name])})" for name in theirs
             if theirs[name] is not None and theirs[name] != mine[name]]
    if not wrong:
        return None
    return f"{invoice.invoice_number}: the system computed other totals than the invoice: {', '.join(wrong)}"
