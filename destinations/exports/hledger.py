"""hledger journal (https://hledger.org/1.25/hledger.html#journal-format), also read by Ledger.

One UTF-8 file: ``decimal-mark``, a ``commodity`` directive for each currency, an ``account``
directive per account used with its type (``; type: A`` asset, ``L`` liability, ``E`` equity,
``R`` revenue, ``X`` expense), an opening-balance transaction against ``equity:Opening balances``
dated the day before the period, then one transaction per entry::

    2026-03-14 * Müller GmbH | Séjour Müller chambre 12  ; entry_id: F-1042, journal_code: VE
        assets:411000 Clients                   1100.00 EUR

Account names are ``<root>:<number> <chart name>`` (the chart of COMPANY.toml gives the type), so an
account missing from ``company.accounts`` is refused. The file passes ``hledger check --strict``.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

from destinations.exports.beancount import chart_account, first_text, journal_entries, opening_balances
from destinations.exports.beancount import file_name as plain_file_name
from destinations.exports.ledger import ExportRefused, LedgerExport

NAME = "hledger"

ROOTS = {"asset": ("assets", "A"), "liability": ("liabilities", "L"), "equity": ("equity", "E"),
         "income": ("income", "R"), "expense": ("expenses", "X")}
OPENING_ACCOUNT = "equity:Opening balances"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_COMMODITY = re.compile(r"^[A-Za-z]+$")  # unquoted commodity symbol: letters only


def file_name(export: LedgerExport) -> str:
    """``Hotel-du-Lac-SARL-2026-03-01_2026-03-31.journal`` (hledger's usual extension)."""
    return plain_file_name(export, "journal")


def _text(value: str, where: str, field: str, forbidden: str = "") -> str:
    """One line of text, without the characters that would end it early (``;`` starts a comment,
    ``,`` ends a tag's value)."""
    if _CONTROL.search(value):
        raise ExportRefused(f"{where}, field {field}: {value!r} holds a line break or control character, "
                            f"which an hledger journal line cannot carry")
    if cut := next((char for char in forbidden if char in value), None):
        raise ExportRefused(f"{where}, field {field}: {value!r} holds {cut!r}, which would cut it short "
                            f"in an hledger journal")
    return value


def _account_name(export: LedgerExport, number: str, where: str) -> tuple[str, str]:
    """(``assets:411000 Clients``, ``A``): colons would open sub-accounts and double spaces end the name."""
    account = chart_account(export, number, where)
    root, account_type = ROOTS[account.type]
    name = " ".join(f"{number} {account.name}".replace(":", " ").split())
    _text(name, where, "account")
    return f"{root}:{name}", account_type


def _currency(value: str, where: str) -> str:
    if not _COMMODITY.match(value):
        raise ExportRefused(f"{where}: currency {value!r} is not a plain hledger commodity symbol (letters only)")
    return value


def _postings(postings: list[tuple[str, Decimal, str, str]]) -> list[str]:
    width = max(len(account) for account, *_ in postings)
    lines = []
    for account, amount, currency, comment in postings:
        line = f"    {account:<{width}}  {amount:>12} {currency}"
        lines.append(f"{line}  ; {comment}" if comment else line)
    return lines


def _opening(export: LedgerExport, accounts: dict[str, str], currency: str) -> list[list[str]]:
    balances = []
    for number, amount in opening_balances(export):
        name, account_type = _account_name(export, number, f"opening balance of account {number}")
        accounts[name] = account_type
        balances.append((name, amount, currency, ""))
    if not balances:
        return []
    total = sum((amount for _, amount, *_ in balances), Decimal(0))
    if total:
        accounts[OPENING_ACCOUNT] = "E"
        balances.append((OPENING_ACCOUNT, -total, currency, ""))
    return [[f"{export.period_start - timedelta(days=1)} * Opening balances", *_postings(balances)]]


def _transaction(export: LedgerExport, entry_id: str, entry_date: date, lines: list[dict],
                 accounts: dict[str, str]) -> list[str]:
    where = f"entry {entry_id}"
    narration = _text(first_text(lines, "description"), where, "description", ";")
    payee = _text(first_text(lines, "partner_name"), where, "partner_name", ";")
    tags = [("entry_id", entry_id), ("journal_code", lines[0]["journal_code"]),
            ("document_ref", first_text(lines, "document_ref"))]
    comment = ", ".join(f"{tag}: {_text(value, where, tag, ',')}" for tag, value in tags if value)
    description = f"{payee} | {narration}" if payee else narration
    postings = []
    for line in lines:
        name, account_type = _account_name(export, line["account"], where)
        accounts[name] = account_type
        # A line's own text is a plain comment (it may hold commas), the VAT code a tag.
        notes = []
        if line["description"] and line["description"] != narration:
            notes.append(_text(line["description"], where, "description"))
        if line["vat_code"]:
            notes.append(f"vat_code: {_text(line['vat_code'], where, 'vat_code', ',')}")
        posting_comment = ", ".join(notes)
        postings.append((name, line["debit"] - line["credit"], _currency(line["currency"], where), posting_comment))
    return [f"{entry_date} * {description}".rstrip() + f"  ; {comment}", *_postings(postings)]


def write(export: LedgerExport) -> list[tuple[str, bytes]]:
    currency = _currency(export.company.currency, "COMPANY.toml key currency")
    accounts: dict[str, str] = {}
    blocks = _opening(export, accounts, currency)
    blocks += [_transaction(export, entry_id, entry_date, lines, accounts)
               for entry_id, entry_date, lines in journal_entries(export)]
    currencies = sorted({currency, *export.journal.get_column("currency").unique().to_list()})
    header = [f"; {export.company.name}: journal {export.period_start}..{export.period_end}, written by ledgerflow",
              "decimal-mark .", "", *(f"commodity 1000.00 {code}" for code in currencies), ""]
    directives = [f"account {name}  ; type: {account_type}" for name, account_type in sorted(accounts.items())]
    text = "\n".join(header + directives + [""] + ["\n".join(block) + "\n" for block in blocks])
    return [(file_name(export), text.encode("utf-8"))]
