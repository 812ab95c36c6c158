"""SAF-T Financial Norway 1.30 (namespace ``urn:StandardAuditFile-Taxation-Financial:NO``).

One UTF-8 XML file, ``SAF-T Financial_<org.nr>_<YYYYMMDDhhmmss>_1_1.xml`` (Skatteetaten's naming
convention: organisation number, creation time, file 1 of 1). It holds the header (company, contact,
period), the master files (every general-ledger account used with its opening and closing balance,
the customers and suppliers named on journal lines, the VAT codes) and every journal entry as a
Transaction with one Line per journal line.

Skatteetaten maps accounts through a standard chart (GroupingCategory ``RF-1167`` by default, from
``[saft_no] grouping_category``), so every account needs ``standard_account`` in COMPANY.toml. A
partner on an asset or income line is a Customer (receivable, sale), on a liability, expense or
equity line a Supplier (payable, purchase). VAT is reported on the base lines (lines carrying a
``vat_code`` that are not on the code's VAT account): TaxBase is the line amount, the tax amount is
``base * rate`` rounded half away from zero, on the line's side.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from destinations.exports.ledger import ExportRefused, LedgerExport
from destinations.exports.xml_parts import add, checked_text, software_version
from schemas.company import Account, Company
from schemas.money import format_money, round_money

NAME = "saft-no"
NAMESPACE = "urn:StandardAuditFile-Taxation-Financial:NO"
SOFTWARE = "ledgerflow"
ZERO = Decimal(0)

# XML 1.0 (§2.2 Char) cannot carry other code points at all, not even as character references.
# The XSD's text types: SAFcodeType 9, SAFshorttextType 18, SAFmiddle1textType 35, SAFmiddle2textType 70,
# SAFlongtextType 256 characters.
CODE, SHORT, MIDDLE1, MIDDLE2, LONG = 9, 18, 35, 70, 256
# StandardTaxCode's pattern; "NA" is Skatteetaten's value for a code without a standard mapping.
_STANDARD_TAX_CODE = re.compile(r"^[0-9anAN]{1,2}$")








def fiscal_period(company: Company, day: date) -> tuple[int, int]:
    """(fiscal year's first calendar year, period number 1..12) of ``day``; periods are fiscal months."""
    month, first_day = (int(x) for x in company.fiscal_year_start.split("-"))
    start_year = day.year if (day.month, day.day) >= (month, first_day) else day.year - 1
    months = (day.year - start_year) * 12 + day.month - month - (1 if day.day < first_day else 0)
    return start_year, months + 1


def tax_amount(base: Decimal, rate: Decimal) -> Decimal:
    return round_money(base * rate / 100)


def partner_role(account: Account) -> str:
    return "Customer" if account.type in ("asset", "income") else "Supplier"


@dataclass
class Party:
    party_id: str
    name: str


@dataclass
class Ledger:
    """What the master files need, gathered from the journal and the opening balances."""

    accounts: dict[str, Account]
    opening: dict[str, Decimal] = field(default_factory=dict)  # account -> debit - credit
    movement: dict[str, Decimal] = field(default_factory=dict)
    parties: dict[str, dict[str, Party]] = field(default_factory=lambda: {"Customer": {}, "Supplier": {}})


def gather(export: LedgerExport) -> Ledger:
    chart = {account.number: account for account in export.company.accounts}
    ledger = Ledger(accounts={})

    def use(number: str, where: str) -> Account:
        account = chart.get(number)
        if account is None:
            raise ExportRefused(f"{where}: account {number} is not in COMPANY.toml [[accounts]]; SAF-T NO needs "
                                f"its standard_account (GroupingCode)")
        if not account.standard_account:
            raise ExportRefused(f"{where}: account {number}: COMPANY.toml [[accounts]] standard_account is missing "
                                f"(SAF-T NO GroupingCode)")
        ledger.accounts[number] = account
        return account

    debit = credit = ZERO
    for row in export.opening.iter_rows(named=True):
        use(row["account"], "OPENING.csv")
        ledger.opening[row["account"]] = ledger.opening.get(row["account"], ZERO) + row["opening_debit"] \
            - row["opening_credit"]
        debit += row["opening_debit"]
        credit += row["opening_credit"]
    if debit != credit:
        raise ExportRefused(f"OPENING.csv: opening balances do not balance (debit {debit}, credit {credit}); "
                            f"SAF-T NO requires the opening trial balance to sum to zero")
    for row in export.journal.iter_rows(named=True):
        where = f"entry {row['entry_id']}"
        account = use(row["account"], where)
        ledger.movement[row["account"]] = ledger.movement.get(row["account"], ZERO) + row["debit"] - row["credit"]
        if row["partner_id"]:
            if not row["partner_name"]:
                raise ExportRefused(f"{where}: partner_id {row['partner_id']!r} has no partner_name "
                                    f"(SAF-T NO Customer/Supplier Name is mandatory)")
            parties = ledger.parties[partner_role(account)]
            if row["partner_id"] not in parties:
                parties[row["partner_id"]] = Party(text(row["partner_id"], MIDDLE1, where, "partner_id"),
                                                   text(row["partner_name"], LONG, where, "partner_name"))
    return ledger


def balance(parent: ET.Element, kind: str, amount: Decimal) -> None:
    side = "Debit" if amount >= 0 else "Credit"
    add(parent, f"{kind}{side}Balance", format_money(abs(amount)))


def header(root: ET.Element, export: LedgerExport) -> None:
    company = export.company
    where = "COMPANY.toml"
    if not company.contact_name:
        raise ExportRefused(f"{where}: contact_name is missing (SAF-T NO Company/Contact/ContactPerson)")
    head = add(root, "Header")
    add(head, "AuditFileVersion", "1.30")
    add(head, "AuditFileCountry", "NO")
    add(head, "AuditFileDateCreated", export.generated_at.date().isoformat())
    add(head, "SoftwareCompanyName", SOFTWARE)
    add(head, "SoftwareID", SOFTWARE)
    add(head, "SoftwareVersion", text(software_version(), SHORT, where, "software version"))
    firm = add(head, "Company")
    add(firm, "RegistrationNumber", text(company.registration_id, MIDDLE1, where, "registration_id"))
    add(firm, "Name", text(company.name, LONG, where, "name"))
    if company.street or company.city or company.postcode:
        address = add(firm, "Address")
        if company.street:
            add(address, "StreetName", text(company.street, LONG, where, "street"))
        if company.city:
            add(address, "City", text(company.city, LONG, where, "city"))
        if company.postcode:
            add(address, "PostalCode", text(company.postcode, MIDDLE2, where, "postcode"))
        add(address, "Country", company.country)
        add(address, "AddressType", "StreetAddress")
    contact = add(firm, "Contact")
    person = add(contact, "ContactPerson")
    # Skatteetaten: an unstructured name goes whole into LastName, with FirstName "NotUsed".
    add(person, "FirstName", "NotUsed")
    add(person, "LastName", text(company.contact_name, MIDDLE2, where, "contact_name"))
    if company.contact_phone:
        add(contact, "Telephone", text(company.contact_phone, SHORT, where, "contact_phone"))
    if company.contact_email:
        add(contact, "Email", text(company.contact_email, MIDDLE2, where, "contact_email"))
    if company.vat_id:
        registration = add(firm, "TaxRegistration")
        add(registration, "TaxRegistrationNumber", text(company.vat_id, MIDDLE1, where, "vat_id"))
        add(registration, "TaxAuthority", "Skatteetaten")
    add(head, "DefaultCurrencyCode", text(company.currency, 3, where, "currency"))
    criteria = add(head, "SelectionCriteria")
    start_year, start_period = fiscal_period(company, export.period_start)
    end_year, end_period = fiscal_period(company, export.period_end)
    add(criteria, "PeriodStart", str(start_period))
    add(criteria, "PeriodStartYear", str(start_year))
    add(criteria, "PeriodEnd", str(end_period))
    add(criteria, "PeriodEndYear", str(end_year))
    add(head, "TaxAccountingBasis", "A")


def master_files(root: ET.Element, export: LedgerExport, ledger: Ledger) -> None:
    settings = export.company.saft_no
    category = settings.grouping_category if settings else "RF-1167"
    files = add(root, "MasterFiles")
    accounts = add(files, "GeneralLedgerAccounts")
    for number in sorted(ledger.accounts):
        account = ledger.accounts[number]
        where = f"account {number}"
        element = add(accounts, "Account")
        add(element, "AccountID", text(number, MIDDLE2, where, "account"))
        add(element, "AccountDescription", text(account.name, LONG, where, "name"))
        add(element, "GroupingCategory", text(category, LONG, "COMPANY.toml [saft_no]", "grouping_category"))
        add(element, "GroupingCode", text(account.standard_account, MIDDLE1, where, "standard_account"))
        add(element, "AccountType", "GL")
        opening = ledger.opening.get(number, ZERO)
        balance(element, "Opening", opening)
        balance(element, "Closing", opening + ledger.movement.get(number, ZERO))
    for role in ("Customer", "Supplier"):
        parties = ledger.parties[role]
        if not parties:
            continue
        block = add(files, f"{role}s")
        for party_id in sorted(parties):
            element = add(block, role)
            add(element, "Name", parties[party_id].name)
            add(element, f"{role}ID", parties[party_id].party_id)
    if export.company.vat_codes:
        table = add(files, "TaxTable")
        entry = add(table, "TaxTableEntry")
        add(entry, "TaxType", "MVA")
        add(entry, "Description", "Merverdiavgift")
        for vat in export.company.vat_codes:
            where = f"COMPANY.toml [[vat_codes]] {vat.code}"
            standard = vat.standard_code or "NA"
            if not _STANDARD_TAX_CODE.match(standard):
                raise ExportRefused(f"{where}: standard_code {standard!r} is not a SAF-T NO StandardTaxCode "
                                    f"(1-2 digits, or NA)")
            details = add(entry, "TaxCodeDetails")
            add(details, "TaxCode", text(vat.code, MIDDLE2, where, "code"))
            add(details, "TaxPercentage", f"{vat.rate:f}")
            add(details, "Country", "NO")
            add(details, "StandardTaxCode", standard)
            add(details, "BaseRate", "100")


def transaction_line(parent: ET.Element, row: dict, record: int, export: LedgerExport, ledger: Ledger) -> None:
    where = f"entry {row['entry_id']}"
    line = add(parent, "Line")
    add(line, "RecordID", str(record))
    add(line, "AccountID", row["account"])
    if row["document_ref"]:
        add(line, "SourceDocumentID", text(row["document_ref"], MIDDLE1, where, "document_ref"))
    if row["partner_id"]:
        role = partner_role(ledger.accounts[row["account"]])
        add(line, f"{role}ID", row["partner_id"])
    add(line, "Description", text(row["description"] or row["account_name"], LONG, where, "description"))
    side, amount = ("Debit", row["debit"]) if row["debit"] else ("Credit", row["credit"])
    add(add(line, f"{side}Amount"), "Amount", format_money(amount))
    if row["vat_code"]:
        vat = export.company.vat_by_code.get(row["vat_code"])
        if vat is None:
            raise ExportRefused(f"{where}: vat_code {row['vat_code']!r} is not in COMPANY.toml [[vat_codes]]")
        if vat.account != row["account"]:
            tax = add(line, "TaxInformation")
            add(tax, "TaxType", "MVA")
            add(tax, "TaxCode", text(vat.code, MIDDLE2, where, "vat_code"))
            add(tax, "TaxPercentage", f"{vat.rate:f}")
            add(tax, "TaxBase", format_money(amount))
            add(add(tax, f"{side}TaxAmount"), "Amount", format_money(tax_amount(amount, vat.rate)))


def ledger_entries(root: ET.Element, export: LedgerExport, ledger: Ledger) -> None:
    journal = export.journal
    entries = add(root, "GeneralLedgerEntries")
    add(entries, "NumberOfEntries", str(journal["entry_id"].n_unique()))
    add(entries, "TotalDebit", format_money(sum(journal["debit"].to_list(), ZERO)))
    add(entries, "TotalCredit", format_money(sum(journal["credit"].to_list(), ZERO)))
    by_journal: dict[str, dict[str, list[dict]]] = {}
    for row in journal.iter_rows(named=True):
        by_journal.setdefault(row["journal_code"], {}).setdefault(row["entry_id"], []).append(row)
    for code in sorted(by_journal):
        block = add(entries, "Journal")
        add(block, "JournalID", text(code, SHORT, f"entry {next(iter(by_journal[code]))}", "journal_code"))
        add(block, "Description", code)
        add(block, "Type", "GL")
        for entry_id, rows in by_journal[code].items():
            where = f"entry {entry_id}"
            first = rows[0]
            year, period = fiscal_period(export.company, first["entry_date"])
            day = first["entry_date"].isoformat()
            transaction = add(block, "Transaction")
            add(transaction, "TransactionID", text(entry_id, MIDDLE2, where, "entry_id"))
            add(transaction, "Period", str(period))
            add(transaction, "PeriodYear", str(year))
            add(transaction, "TransactionDate", day)
            description = next((r["description"] for r in rows if r["description"]), first["document_ref"])
            add(transaction, "Description", text(description or entry_id, LONG, where, "description"))
            add(transaction, "SystemEntryDate", day)
            add(transaction, "GLPostingDate", day)
            for record, row in enumerate(rows, start=1):
                transaction_line(transaction, row, record, export, ledger)


def file_name(export: LedgerExport) -> str:
    """``SAF-T Financial_999999999_20260331000000_1_1.xml``: org.nr, creation time, file 1 of 1."""
    if not export.company.registration_id:
        raise ExportRefused("COMPANY.toml: registration_id is missing (SAF-T NO Company/RegistrationNumber, org.nr)")
    org_nr = export.company.registration_id.replace(" ", "")
    if not re.fullmatch(r"\d{9}", org_nr):
        raise ExportRefused(f"COMPANY.toml: registration_id {export.company.registration_id!r} is not a "
                            f"9-digit Norwegian organisation number (SAF-T NO file name)")
    return f"SAF-T Financial_{org_nr}_{export.generated_at.strftime('%Y%m%d%H%M%S')}_1_1.xml"


def serialise(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")


def write(export: LedgerExport) -> list[tuple[str, bytes]]:
    name = file_name(export)
    ledger = gather(export)
    root = ET.Element("AuditFile", {"xmlns": NAMESPACE})
    header(root, export)
    master_files(root, export, ledger)
    ledger_entries(root, export, ledger)
    return [(name, serialise(root))]


def text(value: object, limit: int, where: str, name: str) -> str:
    return checked_text(value, limit, where, name, "SAF-T NO")
