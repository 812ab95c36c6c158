"""XML Auditfile Financieel 3.2 (Netherlands, namespace ``http://www.auditfiles.nl/XAF/3.2``).

One UTF-8 XML file, ``<company>_<start>_<end>.xaf``, for one fiscal year: header (fiscal year, period,
currency), company (KvK number, VAT number, address), the customers and suppliers named on journal
lines, the general ledger (every account used, ``accTp`` B for balance-sheet and P for profit-and-loss
accounts, ``leadCode`` from ``standard_account``), the VAT codes, the fiscal months as periods, the
opening balance (from OPENING.csv) and every journal entry as a transaction with one trLine per
journal line.

A partner on an asset or income line is a customer (C), on a liability, expense or equity line a
supplier (S), both: B. VAT is reported on the base lines (lines carrying a ``vat_code`` that are not
on the code's VAT account): ``base * rate`` rounded half away from zero, on the line's side.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from calendar import monthrange
from datetime import date, timedelta
from decimal import Decimal

from destinations.exports.ledger import ExportRefused, LedgerExport
from destinations.exports.xml_parts import add, checked_text, software_version
from schemas.company import Account
from schemas.money import format_money, round_money

NAME = "xaf"
NAMESPACE = "http://www.auditfiles.nl/XAF/3.2"
SOFTWARE = "ledgerflow"
ZERO = Decimal(0)

# XML 1.0 (§2.2 Char) cannot carry other code points at all, not even as character references.
# The XSD's string types are named for their maximum length; String9999 has none.
ID, NAME_50, TEXT = 35, 50, 999
UNLIMITED = 10**9








def role(account: Account) -> str:
    return "C" if account.type in ("asset", "income") else "S"


def month_after(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's end (fiscal years may start on the 31st)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))


def fiscal_months(export: LedgerExport) -> list[tuple[int, date, date]]:
    """(periodNumber, first day, last day) of every fiscal month that overlaps the export's period."""
    start, _ = export.fiscal_year()
    months = []
    for number in range(1, 13):
        first, last = month_after(start, number - 1), month_after(start, number) - timedelta(days=1)
        if first <= export.period_end and last >= export.period_start:
            months.append((number, first, last))
    return months


def chart_account(export: LedgerExport, number: str, where: str) -> Account:
    account = next((a for a in export.company.accounts if a.number == number), None)
    if account is None:
        raise ExportRefused(f"{where}: account {number} is not in COMPANY.toml [[accounts]]; XAF needs its type "
                            f"(generalLedger/ledgerAccount/accTp)")
    return account


def header(root: ET.Element, export: LedgerExport) -> None:
    first, last = export.fiscal_year()
    if export.period_end > last:
        raise ExportRefused(f"period {export.period_start}..{export.period_end} spans two fiscal years "
                            f"(the first ends {last}); an XAF file holds one (header/fiscalYear)")
    head = add(root, "header")
    add(head, "fiscalYear", str(first.year) if first.year == last.year else f"{first.year}/{last.year}")
    add(head, "startDate", export.period_start.isoformat())
    add(head, "endDate", export.period_end.isoformat())
    add(head, "curCode", text(export.company.currency, 3, "COMPANY.toml", "currency"))
    add(head, "dateCreated", export.generated_at.date().isoformat())
    add(head, "softwareDesc", SOFTWARE)
    add(head, "softwareVersion", text(software_version(), 20, "ledgerflow", "version"))


def company_block(root: ET.Element, export: LedgerExport) -> ET.Element:
    company = export.company
    where = "COMPANY.toml"
    if not company.vat_id:
        raise ExportRefused(f"{where}: vat_id is missing (XAF company/taxRegIdent is mandatory)")
    block = add(root, "company")
    if company.registration_id:
        add(block, "companyIdent", text(company.registration_id, ID, where, "registration_id"))
    add(block, "companyName", text(company.name, TEXT, where, "name"))
    add(block, "taxRegistrationCountry", company.country)
    add(block, "taxRegIdent", text(company.vat_id, 30, where, "vat_id"))
    if company.street or company.city or company.postcode:
        address = add(block, "streetAddress")
        if company.street:
            add(address, "streetname", text(company.street, TEXT, where, "street"))
        if company.city:
            add(address, "city", text(company.city, NAME_50, where, "city"))
        if company.postcode:
            add(address, "postalCode", text(company.postcode, 10, where, "postcode"))
        add(address, "country", company.country)
    return block


def master_data(block: ET.Element, export: LedgerExport) -> None:
    accounts: dict[str, Account] = {}
    parties: dict[str, tuple[str, set[str]]] = {}
    for row in export.opening.iter_rows(named=True):
        accounts[row["account"]] = chart_account(export, row["account"], "OPENING.csv")
    for row in export.journal.iter_rows(named=True):
        where = f"entry {row['entry_id']}"
        account = accounts[row["account"]] = chart_account(export, row["account"], where)
        if row["partner_id"]:
            party_id = text(row["partner_id"], ID, where, "partner_id")
            name = text(row["partner_name"], NAME_50, where, "partner_name")
            parties.setdefault(party_id, (name, set()))[1].add(role(account))
    if parties:
        listing = add(block, "customersSuppliers")
        for party_id in sorted(parties):
            name, roles = parties[party_id]
            element = add(listing, "customerSupplier")
            add(element, "custSupID", party_id)
            if name:
                add(element, "custSupName", name)
            add(element, "custSupTp", roles.pop() if len(roles) == 1 else "B")
    ledger = add(block, "generalLedger")
    for number in sorted(accounts):
        account, where = accounts[number], f"account {number}"
        element = add(ledger, "ledgerAccount")
        add(element, "accID", text(number, ID, where, "account"))
        add(element, "accDesc", text(account.name, TEXT, where, "name"))
        add(element, "accTp", "P" if account.type in ("income", "expense") else "B")
        if account.standard_account:
            add(element, "leadCode", text(account.standard_account, TEXT, where, "standard_account"))
    if export.company.vat_codes:
        codes = add(block, "vatCodes")
        for vat in export.company.vat_codes:
            where = f"COMPANY.toml [[vat_codes]] {vat.code}"
            element = add(codes, "vatCode")
            add(element, "vatID", text(vat.code, ID, where, "code"))
            add(element, "vatDesc", f"{vat.rate:f}%")
            vat_account = {a.number: a for a in export.company.accounts}.get(vat.account)
            # VAT recoverable sits on an asset account, VAT payable on a liability account.
            side = "vatToClaimAccID" if vat_account and vat_account.type == "asset" else "vatToPayAccID"
            add(element, side, text(vat.account, ID, where, "account"))


def periods(block: ET.Element, export: LedgerExport) -> None:
    element = add(block, "periods")
    for number, first, last in fiscal_months(export):
        period = add(element, "period")
        add(period, "periodNumber", str(number))
        add(period, "periodDesc", first.strftime("%Y-%m"))
        add(period, "startDatePeriod", first.isoformat())
        add(period, "endDatePeriod", last.isoformat())


def opening_balance(block: ET.Element, export: LedgerExport) -> None:
    net: dict[str, Decimal] = {}
    for row in export.opening.iter_rows(named=True):
        net[row["account"]] = net.get(row["account"], ZERO) + row["opening_debit"] - row["opening_credit"]
    lines = [(account, amount) for account, amount in sorted(net.items()) if amount != 0]
    debit = sum((amount for _, amount in lines if amount > 0), ZERO)
    credit = -sum((amount for _, amount in lines if amount < 0), ZERO)
    if debit != credit:
        raise ExportRefused(f"OPENING.csv: opening balances do not balance (debit {debit}, credit {credit}); "
                            "XAF openingBalance must balance")
    element = add(block, "openingBalance")
    add(element, "opBalDate", export.period_start.isoformat())
    add(element, "opBalDesc", "Opening balance")
    add(element, "linesCount", str(len(lines)))
    add(element, "totalDebit", format_money(debit))
    add(element, "totalCredit", format_money(credit))
    for number, (account, amount) in enumerate(lines, start=1):
        line = add(element, "obLine")
        add(line, "nr", str(number))
        add(line, "accID", account)
        add(line, "amnt", format_money(abs(amount)))
        add(line, "amntTp", "D" if amount > 0 else "C")


def transaction_line(parent: ET.Element, row: dict, number: int, export: LedgerExport) -> None:
    where = f"entry {row['entry_id']}"
    line = add(parent, "trLine")
    add(line, "nr", str(number))
    add(line, "accID", row["account"])
    add(line, "docRef", text(row["document_ref"] or row["entry_id"], TEXT, where, "document_ref"))
    add(line, "effDate", row["entry_date"].isoformat())
    if row["description"]:
        add(line, "desc", text(row["description"], UNLIMITED, where, "description"))
    side, amount = ("D", row["debit"]) if row["debit"] else ("C", row["credit"])
    add(line, "amnt", format_money(amount))
    add(line, "amntTp", side)
    if row["partner_id"]:
        add(line, "custSupID", row["partner_id"])
    if row["vat_code"]:
        vat = export.company.vat_by_code.get(row["vat_code"])
        if vat is None:
            raise ExportRefused(f"{where}: vat_code {row['vat_code']!r} is not in COMPANY.toml [[vat_codes]]")
        if vat.account != row["account"]:
            element = add(line, "vat")
            add(element, "vatID", text(vat.code, ID, where, "vat_code"))
            add(element, "vatPerc", f"{vat.rate:f}")
            add(element, "vatAmnt", format_money(round_money(amount * vat.rate / 100)))
            add(element, "vatAmntTp", side)


def transactions(block: ET.Element, export: LedgerExport) -> None:
    journal = export.journal
    element = add(block, "transactions")
    add(element, "linesCount", str(journal.height))
    add(element, "totalDebit", format_money(sum(journal["debit"].to_list(), ZERO)))
    add(element, "totalCredit", format_money(sum(journal["credit"].to_list(), ZERO)))
    months = fiscal_months(export)

    def period_of(day: date) -> int:
        return next(number for number, first, last in months if first <= day <= last)

    by_journal: dict[str, dict[str, list[dict]]] = {}
    for row in journal.iter_rows(named=True):
        by_journal.setdefault(row["journal_code"], {}).setdefault(row["entry_id"], []).append(row)
    for code in sorted(by_journal):
        entries = by_journal[code]
        journal_element = add(element, "journal")
        add(journal_element, "jrnID", text(code, ID, f"entry {next(iter(entries))}", "journal_code"))
        add(journal_element, "desc", code)
        for entry_id, rows in entries.items():
            where = f"entry {entry_id}"
            transaction = add(journal_element, "transaction")
            add(transaction, "nr", text(entry_id, ID, where, "entry_id"))
            description = next((r["description"] for r in rows if r["description"]), None)
            if description:
                add(transaction, "desc", text(description, UNLIMITED, where, "description"))
            add(transaction, "periodNumber", str(period_of(rows[0]["entry_date"])))
            add(transaction, "trDt", rows[0]["entry_date"].isoformat())
            for number, row in enumerate(rows, start=1):
                transaction_line(transaction, row, number, export)


def file_name(export: LedgerExport) -> str:
    """``Hôtel_de_Vries_B.V_2026-03-01_2026-03-31.xaf``: the company name made safe for file systems."""
    company = re.sub(r"[^\w.-]+", "_", export.company.name).strip("._-") or "company"
    return f"{company}_{export.period_start}_{export.period_end}.xaf"


def serialise(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")


def write(export: LedgerExport) -> list[tuple[str, bytes]]:
    root = ET.Element("auditfile", {"xmlns": NAMESPACE})
    header(root, export)
    block = company_block(root, export)
    master_data(block, export)
    periods(block, export)
    opening_balance(block, export)
    transactions(block, export)
    return [(file_name(export), serialise(root))]


def text(value: object, limit: int, where: str, name: str) -> str:
    return checked_text(value, limit, where, name, "XAF 3.2")
