"""Beancount v2/v3 journal (https://beancount.github.io/docs/beancount_language_syntax.html).

One UTF-8 file: ``option`` lines (title, operating currency), an ``open`` directive for every account
used, an opening-balance transaction against ``Equity:Opening-Balances`` dated the day before the
period, then one transaction per entry with its postings in the journal's order and amounts as
``debit - credit``. The file passes ``bean-check``.

Beancount account names are ``Root:Component``: the root is one of five fixed names and a component
starts with a capital letter or digit and holds only letters, digits and dashes. The root comes from
the company chart's account type, the component from the account number and its name transliterated
to ASCII (``Income:706100-Hebergement``), so an account missing from ``company.accounts`` is refused.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

from destinations.exports.ledger import ExportRefused, LedgerExport
from schemas.company import Account

NAME = "beancount"

ROOTS = {"asset": "Assets", "liability": "Liabilities", "equity": "Equity", "income": "Income", "expense": "Expenses"}
OPENING_ACCOUNT = "Equity:Opening-Balances"
_COMMODITY = re.compile(r"^[A-Z][A-Z0-9'._-]{0,22}[A-Z0-9]$")
_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Letters NFKD does not decompose into a base letter plus accents.
_LATIN = str.maketrans({"ß": "ss", "Æ": "AE", "æ": "ae", "Ø": "O", "ø": "o", "Œ": "OE", "œ": "oe", "Đ": "D",
                        "đ": "d", "Ł": "L", "ł": "l", "Þ": "Th", "þ": "th", "Ð": "D", "ð": "d", "ı": "i"})


def ascii_words(text: str) -> list[str]:
    """``"Utgående moms, 12 %"`` -> ``["Utgaende", "moms", "12"]``: accents dropped, punctuation splits words."""
    plain = unicodedata.normalize("NFKD", text.translate(_LATIN)).encode("ascii", "ignore").decode()
    return re.findall(r"[A-Za-z0-9]+", plain)


def file_name(export: LedgerExport, suffix: str = "beancount") -> str:
    """``Hotel-du-Lac-SARL-2026-03-01_2026-03-31.beancount``: the company name in ASCII and the period."""
    slug = "-".join(ascii_words(export.company.name)) or "company"
    return f"{slug}-{export.period_start}_{export.period_end}.{suffix}"


def chart_account(export: LedgerExport, number: str, where: str) -> Account:
    """The chart's account ``number``; ``where`` names the entry (or opening balance) that uses it."""
    for account in export.company.accounts:
        if account.number == number:
            return account
    raise ExportRefused(f"{where}, field account: {number!r} is not in COMPANY.toml [[accounts]], so its type "
                        f"(asset, liability, equity, income, expense) and name are unknown")


def journal_entries(export: LedgerExport) -> Iterator[tuple[str, date, list[dict]]]:
    """(entry_id, entry_date, lines) per entry; the journal is sorted, so an entry's lines are adjacent."""
    rows = export.journal.iter_rows(named=True)
    for entry_id, lines in itertools.groupby(rows, key=lambda row: row["entry_id"]):
        lines = list(lines)
        yield entry_id, lines[0]["entry_date"], lines


def opening_balances(export: LedgerExport) -> list[tuple[str, Decimal]]:
    """(account, debit - credit) per account with a non-zero opening balance, in the file's order."""
    balances = ((row["account"], row["opening_debit"] - row["opening_credit"])
                for row in export.opening.iter_rows(named=True))
    return [(account, amount) for account, amount in balances if amount != 0]


def first_text(lines: list[dict], column: str) -> str:
    return next((line[column] for line in lines if line[column]), "")


def _account_name(export: LedgerExport, number: str, where: str) -> str:
    account = chart_account(export, number, where)
    if not _NUMBER.match(number):
        raise ExportRefused(f"{where}, field account: {number!r} cannot start a Beancount account component "
                            f"(only letters, digits and dashes)")
    component = "-".join([number[0].upper() + number[1:], *ascii_words(account.name)])
    return f"{ROOTS[account.type]}:{component}"


def _string(value: str, where: str, field: str) -> str:
    if _CONTROL.search(value):
        raise ExportRefused(f"{where}, field {field}: {value!r} holds a line break or control character")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _currency(value: str, where: str) -> str:
    if not _COMMODITY.match(value):
        raise ExportRefused(f"{where}: {value!r} is not a Beancount commodity (capital letters, 2-24 characters)")
    return value


def _posting(account: str, amount: Decimal, currency: str, width: int) -> str:
    return f"  {account:<{width}}  {amount:>12} {currency}"


def _transactions(export: LedgerExport) -> tuple[list[str], list[list[str]]]:
    """(accounts used, in order of first use; text blocks), the opening-balance transaction first."""
    used: dict[str, None] = {}
    blocks: list[list[str]] = []
    currency = _currency(export.company.currency, "COMPANY.toml key currency")
    opening = [(_account_name(export, number, f"opening balance of account {number}"), amount)
               for number, amount in opening_balances(export)]
    if opening:
        total = sum((amount for _, amount in opening), Decimal(0))
        postings = opening + ([(OPENING_ACCOUNT, -total)] if total else [])
        width = max(len(account) for account, _ in postings)
        day_before = export.period_start - timedelta(days=1)
        blocks.append([f'{day_before} * "Opening balances"',
                       *(_posting(account, amount, currency, width) for account, amount in postings)])
        used.update((account, None) for account, _ in postings)
    for entry_id, entry_date, lines in journal_entries(export):
        where = f"entry {entry_id}"
        names = [_account_name(export, line["account"], where) for line in lines]
        used.update((name, None) for name in names)
        blocks.append(_transaction(entry_id, entry_date, lines, names, where))
    return list(used), blocks


def _transaction(entry_id: str, entry_date: date, lines: list[dict], names: list[str], where: str) -> list[str]:
    narration = first_text(lines, "description")
    payee = first_text(lines, "partner_name")
    heading = f"{entry_date} *"
    if payee:
        heading += " " + _string(payee, where, "partner_name")
    block = [f"{heading} {_string(narration, where, 'description')}",
             f"  entry_id: {_string(entry_id, where, 'entry_id')}",
             f"  journal_code: {_string(lines[0]['journal_code'], where, 'journal_code')}"]
    if document_ref := first_text(lines, "document_ref"):
        block.append(f"  document_ref: {_string(document_ref, where, 'document_ref')}")
    width = max(len(name) for name in names)
    for line, name in zip(lines, names, strict=True):
        block.append(_posting(name, line["debit"] - line["credit"], _currency(line["currency"], where), width))
        if line["description"] and line["description"] != narration:
            block.append(f"    description: {_string(line['description'], where, 'description')}")
        if line["vat_code"]:
            block.append(f"    vat_code: {_string(line['vat_code'], where, 'vat_code')}")
    return block


def write(export: LedgerExport) -> list[tuple[str, bytes]]:
    accounts, blocks = _transactions(export)
    opened = export.period_start - timedelta(days=1) if export.opening.height else export.period_start
    header = [f"; {export.company.name}: journal {export.period_start}..{export.period_end}, written by ledgerflow",
              f'option "title" {_string(export.company.name, "COMPANY.toml", "name")}',
              f'option "operating_currency" "{export.company.currency}"', ""]
    opens = [f"{opened} open {account}" for account in sorted(accounts)]
    text = "\n".join(header + opens + [""] + ["\n".join(block) + "\n" for block in blocks])
    return [(file_name(export), text.encode("utf-8"))]
