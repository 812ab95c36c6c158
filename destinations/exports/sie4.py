"""SIE 4 (type 4E, export), the Swedish bookkeeping exchange format of SIE-Gruppen.

One file: identification records (#FLAGGA, #PROGRAM, #FORMAT, #GEN, #SIETYP, #ORGNR, #ADRESS, #FNAMN,
#RAR, #KPTYP, #VALUTA), the chart for every account the file uses (#KONTO, #KTYP, #SRU when the
account has a standard_account), opening balances (#IB 0) and one #VER block per entry with its
#TRANS rows: debit positive, credit negative, '.' decimals. The verification series is the journal
code and each series is numbered 1, 2, 3... in date order.

#FORMAT PC8 means IBM PC 8-bit, i.e. code page 437 (it has å ä ö, é, ü but not €); a character
outside it is refused naming entry and field instead of being replaced. Text fields are always
quoted, with '"' escaped as '\\"' (SIE 4B, 5.7). CRLF line ends.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

import polars as pl

from destinations.exports.ledger import ExportRefused, LedgerExport

NAME = "sie4"
ENCODING = "cp437"
PROGRAM = ("ledgerflow", "1.0")  # the SIE writer's own version: changing it changes every file's bytes
# SIE 4B #KTYP: T tillgång (asset), S skuld (liability, equity too), I intäkt (income), K kostnad (expense).
ACCOUNT_TYPES = {"asset": "T", "liability": "S", "equity": "S", "income": "I", "expense": "K"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def file_name(export: LedgerExport) -> str:
    """``556677-8899-2026-03-01_2026-03-31.se``: organisation number (else the company name) and period."""
    owner = export.company.registration_id or export.company.name
    ascii_owner = unicodedata.normalize("NFKD", owner).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", ascii_owner).strip("-.") or "company"
    return f"{slug}-{export.period_start}_{export.period_end}.se"


def write(export: LedgerExport) -> list[tuple[str, bytes]]:
    year_start, year_end = export.fiscal_year()
    if export.period_end > year_end:
        raise ExportRefused(f"period {export.period_start}..{export.period_end} runs past the end of the fiscal "
                            f"year {year_start}..{year_end}: a SIE 4 file describes one fiscal year (#RAR 0)")
    records = _header(export) + _chart(export) + _opening(export) + _verifications(export)
    text = "\r\n".join(records) + "\r\n"
    return [(file_name(export), text.encode(ENCODING))]


def _header(export: LedgerExport) -> list[str]:
    company = export.company
    year_start, year_end = export.fiscal_year()
    records = ["#FLAGGA 0", f"#PROGRAM {_text(PROGRAM[0])} {PROGRAM[1]}", "#FORMAT PC8",
               f"#GEN {export.generated_at:%Y%m%d}", "#SIETYP 4"]
    if company.registration_id:
        records.append(f"#ORGNR {_company_text('registration_id', company.registration_id)}")
    if company.street:
        postal = " ".join(part for part in (company.postcode, company.city) if part)
        records.append("#ADRESS " + " ".join(_company_text(key, value or "") for key, value in (
            ("contact_name", company.contact_name), ("street", company.street), ("postcode/city", postal),
            ("contact_phone", company.contact_phone))))
    records += [f"#FNAMN {_company_text('name', company.name)}", f"#RAR 0 {year_start:%Y%m%d} {year_end:%Y%m%d}"]
    if company.chart:
        records.append(f"#KPTYP {_company_text('chart', company.chart)}")
    records.append(f"#VALUTA {_company_text('currency', company.currency)}")
    return records


def _chart(export: LedgerExport) -> list[str]:
    """#KONTO/#KTYP for each account the journal or the opening balances use, from COMPANY.toml [[accounts]]."""
    chart = {account.number: account for account in export.company.accounts}
    first_entry = export.journal.group_by("account", maintain_order=True).agg(pl.col("entry_id").first())
    uses = [(f"entry {entry}", account) for account, entry in first_entry.iter_rows()]
    uses += [("OPENING.csv", account) for account in export.opening["account"]]
    used = {}
    for where, account in uses:
        if not account.isdigit():
            raise ExportRefused(f"{where}: account {account!r}: SIE 4 account numbers are digits only")
        if account not in chart:
            raise ExportRefused(f"{where}: account {account} is not in COMPANY.toml [[accounts]] "
                                "(SIE 4 declares every account with #KONTO and #KTYP)")
        used.setdefault(account, chart[account])
    records = []
    for number in sorted(used, key=lambda n: (len(n), n)):
        account = used[number]
        records += [f"#KONTO {number} {_company_text(f'accounts {number} name', account.name)}",
                    f"#KTYP {number} {ACCOUNT_TYPES[account.type]}"]
        if account.standard_account:
            sru = _company_text(f"accounts {number} standard_account", account.standard_account)
            records.append(f"#SRU {number} {sru}")
    return records


def _opening(export: LedgerExport) -> list[str]:
    return [f"#IB 0 {account} {_amount(debit - credit)}"
            for account, debit, credit in export.opening.select("account", "opening_debit", "opening_credit")
            .sort("account").iter_rows()]


def _verifications(export: LedgerExport) -> list[str]:
    currency = export.company.currency
    records = []
    numbers: dict[str, int] = {}
    for (entry,), lines in export.journal.group_by("entry_id", maintain_order=True):
        first = lines.row(0, named=True)
        series = first["journal_code"]
        if not re.fullmatch(r"[A-Za-z0-9]+", series):
            raise ExportRefused(f"entry {entry}: journal_code {series!r}: a SIE verification series is letters "
                                "and digits only")
        numbers[series] = numbers.get(series, 0) + 1
        text = next((d for d in lines["description"] if d), None) or first["document_ref"] or ""
        records += [f"#VER {series} {numbers[series]} {first['entry_date']:%Y%m%d} "
                    f"{_entry_text(entry, 'description', text)}", "{"]
        for line in lines.iter_rows(named=True):
            if line["currency"] != currency:
                raise ExportRefused(f"entry {entry}: currency {line['currency']!r} is not the company currency "
                                    f"{currency} (SIE 4 amounts are in #VALUTA)")
            trans = f"   #TRANS {line['account']} {{}} {_amount(line['debit'] - line['credit'])}"
            if line["description"] and line["description"] != text:
                trans += f' "" {_entry_text(entry, "description", line["description"])}'
            records.append(trans)
        records.append("}")
    return records


def _amount(value: Decimal) -> str:
    return f"{Decimal(value):.2f}"


def _entry_text(entry: str, field: str, value: str) -> str:
    return _quoted(value, f"entry {entry}: {field}")


def _company_text(key: str, value: str) -> str:
    return _quoted(value, f"COMPANY.toml: {key}")


def _text(value: str) -> str:
    return _quoted(value, "text")


def _quoted(value: str, where: str) -> str:
    if _CONTROL.search(value):
        raise ExportRefused(f"{where} {value!r} contains a control character (tab or line break)")
    try:
        value.encode(ENCODING)
    except UnicodeEncodeError as exc:
        raise ExportRefused(f"{where} {value!r}: character {value[exc.start]!r} is not in code page 437, "
                            "the character set of SIE #FORMAT PC8") from None
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
