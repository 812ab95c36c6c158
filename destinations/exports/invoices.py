"""E-invoices read from INVOICES.csv (INTERFACES §3), shared by the e-invoice formats (UBL, Factur-X).

One row per invoice line; the invoice-level columns repeat on every row of an invoice and must
agree. Totals are computed, never read: a line's net is quantity × unit price rounded half up to
cents, VAT is summed per (category, rate) and rounded once per group (EN 16931 BR-CO-17).
``check_invoice`` refuses, with ``ExportRefused`` naming the invoice, line and field, what EN 16931
cannot carry; each format adds its own rules (Peppol's in ``ubl``).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from destinations.exports.ledger import ExportRefused
from schemas.company import Company
from schemas.money import format_money, round_money

__all__ = ["ExportRefused", "Invoice", "InvoiceLine", "Party", "Totals", "VatGroup", "amount_text", "check_invoice",
           "invoice_file_name", "plain_number", "read_invoices", "seller_of", "totals"]

# UNCL 5305 as EN 16931 uses it. Every category but S, L and M carries no VAT (rate 0, O none at all),
# and E, AE, K, G, O need an exemption reason (BR-E-10, BR-AE-10, BR-IC-10, BR-G-10, BR-O-10).
VAT_CATEGORIES = ("S", "Z", "E", "AE", "K", "G", "O", "L", "M")
ZERO_RATED = ("Z", "E", "AE", "K", "G")
NEEDS_REASON = ("E", "AE", "K", "G", "O")
INVOICE_TYPES = {"380": "invoice", "381": "credit note"}
NUMBER = re.compile(r"^[+-]?[0-9]{1,15}(\.[0-9]{1,6})?$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
ENDPOINT = re.compile(r"^([0-9]{4}):(\S+)$")

@dataclass(frozen=True)
class Party:
    name: str | None
    vat_id: str | None
    street: str | None
    city: str | None
    postcode: str | None
    country: str | None
    endpoint_id: str | None  # SCHEME:ID


@dataclass(frozen=True)
class InvoiceLine:
    line_id: str
    item_name: str
    quantity: Decimal
    unit_price: Decimal
    unit_code: str
    vat_category: str
    vat_rate: Decimal | None
    vat_exemption_reason: str | None

    @property
    def line_net(self) -> Decimal:
        return round_money(self.quantity * self.unit_price)


@dataclass(frozen=True)
class Invoice:
    invoice_number: str
    issue_date: date
    due_date: date | None
    currency: str
    seller: Party
    buyer: Party
    buyer_reference: str | None
    invoice_type: str  # 380 invoice | 381 credit note
    billing_reference: str | None
    delivery_date: date | None
    payment_iban: str | None
    lines: tuple[InvoiceLine, ...]


# ---------------------------------------------------------------- reading INVOICES.csv

PARTY_FIELDS = ("name", "vat_id", "street", "city", "postcode", "country", "endpoint_id")
INVOICE_COLUMNS = ("invoice_number", "issue_date", "due_date", "currency", "buyer_reference", "invoice_type",
                   "billing_reference", "delivery_date", "payment_iban",
                   *(f"{side}_{field}" for side in ("seller", "buyer") for field in PARTY_FIELDS))


def _columns():
    from sources.recon_csv import Column

    required = {"invoice_number", "issue_date", "currency", "buyer_name", "buyer_country", "line_id", "item_name",
                "quantity", "unit_price", "vat_category"}
    kinds = {"issue_date": "date", "due_date": "date", "delivery_date": "date", "currency": "currency"}
    names = [*INVOICE_COLUMNS, "line_id", "item_name", "quantity", "unit_price", "unit_code", "vat_category",
             "vat_rate", "vat_exemption_reason", "line_net"]
    return [Column(name, name in required, kinds.get(name, "text")) for name in names]


def _number(path: Path, row: dict, column: str) -> Decimal | None:
    value = row[column]
    if value is None:
        return None
    if not NUMBER.match(value):
        from sources.recon_csv import InputError

        raise InputError(f"{path}: line {row['line']}, column {column}: not a number like 12.5 "
                         f"(at most 6 decimals, '.' separator) (got {value!r})")
    return Decimal(value)


def read_invoices(path: Path) -> list[Invoice]:
    """INVOICES.csv, checked completely (errors name file, line, column and value), grouped into
    invoices in the order of their first line."""
    from sources.recon_csv import InputError, read_table

    path = Path(path)
    frame = read_table(path, _columns()).with_row_index("line", offset=2)
    headers: dict[str, dict] = {}
    lines: dict[str, list[InvoiceLine]] = {}
    for row in frame.iter_rows(named=True):
        where = f"{path}: line {row['line']}"
        for column in ("seller_country", "buyer_country"):
            if row[column] is not None and not COUNTRY.match(row[column]):
                raise InputError(f"{where}, column {column}: not an ISO 3166-1 alpha-2 code (got {row[column]!r})")
        number = row["invoice_number"]
        first = headers.setdefault(number, row)
        for column in INVOICE_COLUMNS:
            if row[column] != first[column]:
                raise InputError(f"{where}, column {column}: invoice {number} has {first[column]!r} on line "
                                 f"{first['line']} but {row[column]!r} here; invoice columns must agree")
        line = InvoiceLine(row["line_id"], row["item_name"], _number(path, row, "quantity"),
                           _number(path, row, "unit_price"), row["unit_code"] or "C62",
                           row["vat_category"].upper(), _number(path, row, "vat_rate"), row["vat_exemption_reason"])
        stated = _number(path, row, "line_net")
        if stated is not None and stated != line.line_net:
            raise InputError(f"{where}, column line_net: {stated} is not quantity × unit_price = {line.line_net} "
                             f"(got {row['line_net']!r})")
        if line.unit_price < 0:
            raise InputError(f"{where}, column unit_price: a price is not negative (EN 16931 BR-27) "
                             f"(got {row['unit_price']!r})")
        if any(existing.line_id == line.line_id for existing in lines.get(number, [])):
            raise InputError(f"{where}, column line_id: invoice {number} has line {line.line_id!r} twice")
        lines.setdefault(number, []).append(line)
    return [_invoice(headers[number], tuple(invoice_lines)) for number, invoice_lines in lines.items()]


def _invoice(row: dict, lines: tuple[InvoiceLine, ...]) -> Invoice:
    seller, buyer = (Party(*(row[f"{side}_{field}"] for field in PARTY_FIELDS)) for side in ("seller", "buyer"))
    return Invoice(row["invoice_number"], row["issue_date"], row["due_date"], row["currency"], seller, buyer,
                   row["buyer_reference"], row["invoice_type"] or "380", row["billing_reference"],
                   row["delivery_date"], row["payment_iban"], lines)


# ---------------------------------------------------------------- checks and totals


def seller_of(invoice: Invoice, company: Company) -> Party:
    """The seller's columns, each falling back to COMPANY.toml when empty."""
    s = invoice.seller
    return Party(s.name or company.name, s.vat_id or company.vat_id, s.street or company.street,
                 s.city or company.city, s.postcode or company.postcode, s.country or company.country,
                 s.endpoint_id)


def check_invoice(invoice: Invoice, seller: Party) -> None:
    """EN 16931's rules that INVOICES.csv can break; refuses naming the invoice, line and field."""
    where = f"invoice {invoice.invoice_number}"
    if invoice.invoice_type not in INVOICE_TYPES:
        raise ExportRefused(f"{where}: invoice_type {invoice.invoice_type!r} is neither 380 (invoice) "
                            "nor 381 (credit note)")
    if invoice.invoice_type == "381" and not invoice.billing_reference:
        raise ExportRefused(f"{where}: billing_reference is missing; a credit note names the invoice it credits")
    if invoice.invoice_type == "380" and invoice.due_date is None:
        raise ExportRefused(f"{where}: due_date is missing; an invoice needs a payment due date (EN 16931 BR-CO-25)")
    for side, party in (("seller", seller), ("buyer", invoice.buyer)):
        for field in ("name", "country"):
            if not getattr(party, field):
                raise ExportRefused(f"{where}: {side}_{field} is missing"
                                    + (" (nor in COMPANY.toml)" if side == "seller" else ""))
    for line in invoice.lines:
        _check_line(invoice, line, seller)


def _check_line(invoice: Invoice, line: InvoiceLine, seller: Party) -> None:
    where = f"invoice {invoice.invoice_number}, line {line.line_id}"
    category, rate = line.vat_category, line.vat_rate
    if category not in VAT_CATEGORIES:
        raise ExportRefused(f"{where}: vat_category {category!r} is not one of {', '.join(VAT_CATEGORIES)}")
    if category == "O":
        if rate is not None:
            raise ExportRefused(f"{where}: vat_rate {rate} must be empty for category O (not subject to VAT)")
    elif rate is None:
        raise ExportRefused(f"{where}: vat_rate is missing for category {category}")
    elif category in ZERO_RATED and rate != 0:
        raise ExportRefused(f"{where}: vat_rate {rate} must be 0 for category {category}")
    elif category == "S" and rate <= 0:
        raise ExportRefused(f"{where}: vat_rate {rate} must be above 0 for category S")
    if category in NEEDS_REASON and category != "K" and not line.vat_exemption_reason:
        raise ExportRefused(f"{where}: vat_exemption_reason is missing; category {category} needs one")
    if category != "O" and not seller.vat_id:
        raise ExportRefused(f"{where}: seller_vat_id is missing (nor vat_id in COMPANY.toml); "
                            f"category {category} needs the seller's VAT id")
    if category in ("AE", "K") and not invoice.buyer.vat_id:
        raise ExportRefused(f"{where}: buyer_vat_id is missing; category {category} needs the buyer's VAT id")


@dataclass(frozen=True)
class VatGroup:
    category: str
    rate: Decimal | None
    taxable: Decimal
    tax: Decimal
    exemption_reason: str | None


@dataclass(frozen=True)
class Totals:
    net: Decimal  # sum of line nets (BT-106 = BT-109)
    tax: Decimal  # BT-110
    gross: Decimal  # BT-112 = BT-115 (nothing prepaid)
    groups: tuple[VatGroup, ...]


def totals(invoice: Invoice) -> Totals:
    """VAT per (category, rate), rounded once per group, and the document totals. For category K
    the exemption code VATEX-EU-IC is supplied when absent. One reason per group."""
    groups: dict[tuple[str, Decimal | None], tuple[Decimal, str | None]] = {}
    for line in invoice.lines:
        reason = line.vat_exemption_reason or ("VATEX-EU-IC" if line.vat_category == "K" else None)
        key = (line.vat_category, line.vat_rate)
        taxable, known = groups.get(key, (Decimal(0), reason))
        if known != reason:
            raise ExportRefused(f"invoice {invoice.invoice_number}, line {line.line_id}: vat_exemption_reason "
                                f"{reason!r} differs from {known!r} on another line of category {line.vat_category}; "
                                "an e-invoice carries one reason per VAT category and rate")
        groups[key] = (taxable + line.line_net, reason)
    rows = tuple(VatGroup(category, rate, taxable, round_money(taxable * (rate or 0) / 100), reason)
                 for (category, rate), (taxable, reason) in sorted(groups.items(),
                                                                   key=lambda item: (item[0][0], item[0][1] or 0)))
    net = sum((line.line_net for line in invoice.lines), Decimal(0))
    tax = sum((group.tax for group in rows), Decimal(0))
    return Totals(net, tax, net + tax, rows)


def amount_text(value: Decimal) -> str:
    """An amount as e-invoices write it: two decimals, no exponent."""
    return format_money(value)


def plain_number(value: Decimal) -> str:
    """A quantity, price or rate without trailing zeros or exponent: 2.50 -> 2.5, 20.00 -> 20."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def invoice_file_name(invoice_number: str, suffix: str) -> str:
    """The invoice number with anything but letters, digits, '_' and '-' replaced by '_', plus suffix."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", invoice_number) + suffix


def unique_file_names(invoices: list[Invoice], suffix: str) -> list[str]:
    """One file name per invoice; refuses two invoices whose numbers give the same name."""
    names: dict[str, str] = {}
    for invoice in invoices:
        name = invoice_file_name(invoice.invoice_number, suffix)
        if name in names:
            raise ExportRefused(f"invoice {invoice.invoice_number}: its file name {name} is also that of "
                                f"invoice {names[name]}")
        names[name] = invoice.invoice_number
    return list(names)


def invoice_document(invoice: Invoice) -> str:
    """The invoice as canonical JSON (dates ISO, amounts as exact decimal strings): what the
    warehouse stores and hashes; ``invoice_from_document`` gives the same invoice back."""
    return json.dumps(asdict(invoice), default=str, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def invoice_from_document(text: str) -> Invoice:
    data = json.loads(text)

    def day(value: str | None) -> date | None:
        return None if value is None else date.fromisoformat(value)

    def number(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    lines = tuple(InvoiceLine(**{**line, "quantity": Decimal(line["quantity"]),
                                 "unit_price": Decimal(line["unit_price"]), "vat_rate": number(line["vat_rate"])})
                  for line in data.pop("lines"))
    return Invoice(**{**data, "issue_date": date.fromisoformat(data["issue_date"]), "due_date": day(data["due_date"]),
                      "delivery_date": day(data["delivery_date"]), "seller": Party(**data["seller"]),
                      "buyer": Party(**data["buyer"]), "lines": lines})
