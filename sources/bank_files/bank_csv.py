"""Bank CSV exports read through a profile (``schemas.bank_csv.BankCsvProfile``): one statement per account.

A bank's CSV is no statement format: no statement number, usually no opening balance, a layout per bank
and often per export version. The profile says where each field is; this module reads it the same way
for every bank:

* **Bytes to rows.** The profile's encoding(s) in order (a UTF-8 byte-order mark is dropped); the
  standard ``csv`` reader with the profile's delimiter and quote character, so quoted fields may hold
  the delimiter and line breaks. Line numbers in messages are the physical line where the row starts.
* **Header.** After ``skip_lines``, the first row (of the next 30) holding every named column is the
  header, matched case- and whitespace-insensitively: Belfius writes a preamble of variable length
  above it, KBC spells ``credit``/``Credit`` depending on the export. A column the profile names that
  is not in the header is an error naming it. Without a header, columns are 1-based numbers.
* **Rows.** Empty rows are skipped, and rows the profile marks as no transaction (``skip_when``:
  Revolut's pending or declined card payments, Sparkasse's "Umsatz vorgemerkt"). Every other row must
  have the header's number of fields (a trailing delimiter, i.e. extra empty fields, is tolerated): a
  ragged row is usually a truncated file or a stray delimiter in an unquoted text.
* **Amounts** as the profile says: one signed column; unsigned debit and credit columns (a debit
  written with a minus, as KBC does, is still money out); or an unsigned amount plus a direction column
  (ING's ``Af``/``Bij``). Decimal mark and digit grouping come from the profile and are checked:
  ``12,3,4`` is refused, not guessed. A trailing minus (``12,50-``, some German exports) is a sign.
* **Dates** in the profile's format(s), tried in order; a row without a booking date but with a value
  date is booked on its value date. Account IBANs lose the spaces banks print them with; SEPA's
  ``NOTPROVIDED`` end-to-end id is no id.
* **Statements.** One per account and currency, in the order they first appear. Entries are in file
  order, reversed when the profile says the bank lists the newest row first, so they come out
  chronologically. With a balance-after column, opening = the first row's balance minus its amount and
  closing = the last row's balance, so the caller's balance check verifies the running balance of the
  whole file; without one, both are None. Statement id = account (plus currency where an account has
  several) and the first..last booking date.

Every error names the file, the line, the column (its header) and the offending value.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

from schemas.bank_csv import BankCsvProfile
from schemas.currencies import ISO_4217
from sources.bank_files.model import BankEntry, Statement, StatementError
from sources.bank_files.text import decode, squeeze

HEADER_SEARCH_ROWS = 30
_NON_DIGIT = re.compile(r"[^0-9]")
_IBAN = re.compile(r"[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){10,30}")


# ---------------------------------------------------------------------------------------------- profiles


def _profile(name: str, description: str, **settings) -> BankCsvProfile:
    return BankCsvProfile(name=name, description=description, **settings)


BUILTIN_PROFILES: dict[str, BankCsvProfile] = {p.name: p for p in (
    _profile(
        "generic", "ledgerflow's own BANK.csv columns (INTERFACES section 1; LINES.csv reads too): bank_account, "
        "booking_date, value_date, amount, currency, counterparty_name, counterparty_iban, remittance_info, "
        "structured_ref; comma-separated UTF-8, ISO dates, signed amounts with a decimal point",
        columns={"account": "bank_account", "booking_date": "booking_date", "value_date": "value_date",
                 "amount": "amount", "currency": "currency", "counterparty_name": "counterparty_name",
                 "counterparty_iban": "counterparty_iban", "remittance_info": "remittance_info",
                 "structured_ref": "structured_ref"},
    ),
    _profile(
        "ing_nl", "ING Netherlands (ing.nl) 'Af- en bijschrijvingen downloaden' CSV, semicolon-separated "
        "layout with 'Saldo na mutatie': Af/Bij direction, unsigned amounts with a decimal comma, YYYYMMDD "
        "dates, newest first",
        encoding=["utf-8", "cp1252"], delimiter=";", decimal=",", thousands=".", date_format="%Y%m%d",
        sign="indicator", debit_values=["Af"], credit_values=["Bij"], currency="EUR", newest_first=True,
        columns={"booking_date": "Datum", "counterparty_name": "Naam / Omschrijving", "account": "Rekening",
                 "counterparty_iban": "Tegenrekening", "transaction_code": "Code", "direction": "Af Bij",
                 "amount": "Bedrag (EUR)", "remittance_info": ["Mededelingen"],
                 "balance_after": "Saldo na mutatie"},
    ),
    _profile(
        "rabobank", "Rabobank (rabobank.nl) 'Transacties downloaden' CSV, 2018+ layout (IBAN/BBAN, Munt, BIC, "
        "Volgnr, Datum, Rentedatum, Bedrag, Saldo na trn, ...; also the business export's renamed headers): "
        "signed amounts with a decimal comma, ISO dates, oldest first",
        encoding=["utf-8", "cp1252"], delimiter=",", decimal=",", thousands=".", date_format="%Y-%m-%d",
        columns={"account": "IBAN/BBAN", "currency": ["Munt", "Valuta"], "bank_reference": ["Volgnr", "Volg nr"],
                 "booking_date": "Datum", "value_date": ["Rentedatum", "Valuta datum"], "amount": "Bedrag",
                 "balance_after": ["Saldo na trn", "Saldo na boeking"],
                 "counterparty_iban": ["Tegenrekening IBAN/BBAN", "IBAN/BBAN tegenpartij"],
                 "counterparty_name": ["Naam tegenpartij"], "transaction_code": ["Code", "Transactie soort"],
                 "end_to_end_id": ["Transactiereferentie"], "structured_ref": ["Betalingskenmerk"],
                 "remittance_info": ["Omschrijving-1", "Omschrijving-2", "Omschrijving-3"]},
    ),
    _profile(
        "sparkasse_camt", "Sparkasse (German savings banks' online banking) 'CSV-CAMT' Umsaetze export: "
        "semicolon-separated, quoted, Windows-1252, DD.MM.YY dates, signed amounts with a decimal comma, "
        "newest first; 'Umsatz vorgemerkt' (pending) rows skipped",
        encoding=["utf-8", "cp1252"], delimiter=";", decimal=",", thousands=".",
        date_format=["%d.%m.%y", "%d.%m.%Y"], newest_first=True, skip_when={"Info": ["Umsatz vorgemerkt"]},
        columns={"account": "Auftragskonto", "booking_date": "Buchungstag", "value_date": "Valutadatum",
                 "transaction_code": "Buchungstext", "remittance_info": ["Verwendungszweck"],
                 "end_to_end_id": "Kundenreferenz (End-to-End)",
                 "counterparty_name": "Beguenstigter/Zahlungspflichtiger", "counterparty_iban": "Kontonummer/IBAN",
                 "amount": "Betrag", "currency": "Waehrung"},
    ),
    _profile(
        "revolut_business", "Revolut Business transaction statement CSV (Date started (UTC), Date completed "
        "(UTC), ID, Type, State, ..., Total amount, Balance, Account): one statement per Revolut account and "
        "currency, amounts including fees, newest first; pending, declined, reverted and failed rows skipped",
        date_format=["%Y-%m-%d", "%Y-%m-%d %H:%M:%S"], newest_first=True,
        skip_when={"State": ["PENDING", "DECLINED", "REVERTED", "FAILED"]},
        columns={"booking_date": "Date completed (UTC)", "value_date": "Date started (UTC)", "bank_reference": "ID",
                 "transaction_code": "Type", "remittance_info": ["Description", "Reference"],
                 "counterparty_name": ["Beneficiary name", "Sender name", "Description"],
                 "counterparty_iban": ["Beneficiary IBAN", "Sender account"], "amount": "Total amount",
                 "currency": "Payment currency", "account": "Account", "balance_after": "Balance"},
    ),
    _profile(
        "bunq", "bunq (bunq.com) transaction CSV export with the 'Account' column: semicolon-separated, quoted, "
        "ISO dates, signed amounts with a decimal comma, EUR",
        delimiter=";", decimal=",", thousands=".", currency="EUR",
        columns={"booking_date": "Date", "value_date": "Interest Date", "amount": "Amount", "account": "Account",
                 "counterparty_iban": "Counterparty", "counterparty_name": "Name",
                 "remittance_info": ["Description"]},
    ),
    _profile(
        "kbc", "KBC / CBC Belgium account history CSV, Dutch headers (Rekeningnummer;Rubrieknaam;Naam;Munt;"
        "Afschriftnummer;Datum;...;Saldo;credit;debet;...): several accounts per file, DD/MM/YYYY dates, "
        "signed amounts with a decimal comma, running balance, newest first",
        encoding=["utf-8", "cp1252"], delimiter=";", decimal=",", thousands=".", date_format="%d/%m/%Y",
        newest_first=True,
        columns={"account": "Rekeningnummer", "currency": "Munt", "booking_date": "Datum", "value_date": "Valuta",
                 "amount": "Bedrag", "balance_after": "Saldo",
                 "counterparty_iban": ["rekeningnummer tegenpartij", "Rekening tegenpartij"],
                 "counterparty_name": "Naam tegenpartij", "structured_ref": "gestructureerde mededeling",
                 "remittance_info": ["Vrije mededeling", "Omschrijving"]},
    ),
    _profile(
        "belfius", "Belfius (Belgium) account CSV export: export filters and last balance above the header "
        "(Rekening;Boekingsdatum;Rekeninguittrekselnummer;Transactienummer;...;Mededelingen), semicolon-"
        "separated, DD/MM/YYYY dates, signed amounts with a decimal comma, newest first",
        encoding=["utf-8", "cp1252"], delimiter=";", decimal=",", thousands=".", date_format=["%d/%m/%Y", "%d/%m/%y"],
        newest_first=True,
        columns={"account": "Rekening", "booking_date": "Boekingsdatum",
                 "bank_reference": ["Transactienummer"], "counterparty_iban": "Rekening tegenpartij",
                 "counterparty_name": "Naam tegenpartij bevat", "value_date": "Valutadatum", "amount": "Bedrag",
                 "currency": "Devies", "remittance_info": ["Transactie", "Mededelingen"]},
    ),
)}


# ---------------------------------------------------------------------------------------------- reading


def parse(data: bytes, file: str, profile: BankCsvProfile) -> list[Statement]:
    if not data.strip():
        raise StatementError(file, None, "the file is empty: no header and no rows")
    text, _ = decode(data, file, profile.encodings())
    rows = _Records(text, profile, file)
    layout = _Layout(profile, file, rows)
    groups: dict[tuple[str, str], list[_Row]] = {}
    for line, cells in rows:
        if not "".join(cells).strip():
            continue
        layout.check_width(line, cells)
        if layout.skipped(cells):
            continue
        row = layout.row(line, cells)
        groups.setdefault((row.account, row.currency), []).append(row)
    accounts = [account for account, _ in groups]
    return [_statement(account, currency, rows, profile, accounts.count(account) > 1)
            for (account, currency), rows in groups.items()]


class _Records:
    """(line, cells) of each CSV record after ``skip_lines``; ``line`` is where the record starts."""

    def __init__(self, text: str, profile: BankCsvProfile, file: str):
        offset = 0
        for _ in range(profile.skip_lines):
            offset = text.find("\n", offset) + 1
            if offset == 0:
                offset = len(text)
                break
        self.file = file
        self.first_line = profile.skip_lines + 1
        self.reader = csv.reader(io.StringIO(text[offset:], newline=""), delimiter=profile.delimiter,
                                 quotechar=profile.quotechar)

    def __iter__(self):
        return self

    def __next__(self) -> tuple[int, list[str]]:
        line = self.first_line + self.reader.line_num
        try:
            cells = next(self.reader)
        except csv.Error as exc:
            raise StatementError(self.file, line, f"not CSV as the profile describes it: {exc}") from None
        return line, cells


def _norm(name: str) -> str:
    return " ".join(name.replace("\ufeff", "").split()).casefold()


@dataclass(slots=True)
class _Row:
    line: int
    account: str
    currency: str
    entry: BankEntry
    balance: Decimal | None


class _Layout:
    """Where each field is, found once from the header; turns cells into a ``_Row``."""

    def __init__(self, profile: BankCsvProfile, file: str, rows: _Records):
        self.profile = profile
        self.file = file
        self.dates: dict[str, date] = {}
        self.amount_pattern = _amount_pattern(profile.decimal, profile.thousands)
        self.debit = {v.casefold() for v in profile.debit_values}
        self.credit = {v.casefold() for v in profile.credit_values}
        self.names: list[str] = []  # the header's cells, for messages
        self.width, self.labels = self._header(rows) if profile.header else (0, {})
        self.columns = {field: self._indexes(field, spec) for field, spec in profile.columns.items()}
        self.single = {field: indexes[0] for field, indexes in self.columns.items() if len(indexes) == 1}
        self.skip = [(self._indexes(f"skip_when {c!r}", c)[0], {v.casefold() for v in values})
                     for c, values in profile.skip_when.items()]
        if not profile.header:
            self.width = max(i for indexes in self.columns.values() for i in indexes) + 1

    # -------------------------------------------------------------------------------- header

    def _header(self, rows: _Records) -> tuple[int, dict[str, int]]:
        wanted = [*self.profile.columns.values(), *self.profile.skip_when]
        first: tuple[int, list[str]] | None = None
        for count, (line, cells) in enumerate(rows):
            if not any(c.strip() for c in cells):
                continue
            first = first or (line, cells)
            names: dict[str, int] = {}
            for index, cell in enumerate(cells):
                names.setdefault(_norm(cell), index)
            if all(self._present(spec, names) for spec in wanted):
                self.names = [c.strip() for c in cells]
                return self._width(cells), names
            if count >= HEADER_SEARCH_ROWS:
                break
        if first is None:
            raise StatementError(self.file, None, "the file has no rows: not even a header")
        line, cells = first
        present = {_norm(c): 0 for c in cells}
        missing = [repr(s) if isinstance(s, str) else " or ".join(map(repr, s)) for s in wanted
                   if not self._present(s, present)]
        found = ", ".join(repr(c.strip()) for c in cells if c.strip())
        raise StatementError(self.file, line, f"no header row with the profile's columns: column {', '.join(missing)} "
                             f"missing (line {line} has {found})")

    @staticmethod
    def _present(spec: str | list[str], names: dict[str, int]) -> bool:
        return _norm(spec) in names if isinstance(spec, str) else any(_norm(s) in names for s in spec)

    @staticmethod
    def _width(cells: list[str]) -> int:
        width = len(cells)
        while width and not cells[width - 1].strip():  # a trailing delimiter after the last header
            width -= 1
        return width

    def _indexes(self, field: str, spec: str | list[str]) -> list[int]:
        specs = [spec] if isinstance(spec, str) else spec
        if not self.profile.header:
            return [int(s) - 1 for s in specs]
        return [self.labels[_norm(s)] for s in specs if _norm(s) in self.labels]

    def label(self, index: int) -> str:
        """How a message names a column: its header as the file writes it, or its number."""
        return f"column {self.names[index]!r}" if self.profile.header else f"column {index + 1}"

    # -------------------------------------------------------------------------------- rows

    def check_width(self, line: int, cells: list[str]) -> None:
        if len(cells) < self.width or any(c.strip() for c in cells[self.width:]):
            kind = "the header has" if self.profile.header else "the profile reads column"
            raise StatementError(self.file, line, f"ragged row: {len(cells)} fields, but {kind} {self.width} "
                                 f"(a truncated line, or a '{self.profile.delimiter}' inside an unquoted text?)")

    def skipped(self, cells: list[str]) -> bool:
        return any(cells[index].strip().casefold() in values for index, values in self.skip)

    def text(self, cells: list[str], field: str) -> str:
        index = self.single.get(field)
        if index is not None:
            return cells[index].strip()
        indexes = self.columns.get(field)
        if not indexes:
            return ""
        values = [squeeze(cells[i]) for i in indexes if cells[i].strip()]
        if field != "remittance_info":
            return values[0] if values else ""
        joined: list[str] = []
        for value in values:  # Belfius repeats its message inside the transaction text: say it once
            if not any(value in taken for taken in joined):
                joined.append(value)
        return " ".join(joined)

    def cell(self, cells: list[str], field: str) -> tuple[str, int]:
        """(value, column index) of a parsed field: the first non-empty of its columns."""
        indexes = self.columns[field]
        for index in indexes:
            if cells[index].strip():
                return cells[index].strip(), index
        return "", indexes[0]

    def row(self, line: int, cells: list[str]) -> _Row:
        profile = self.profile
        amount = self._signed_amount(line, cells)
        balance = None
        if "balance_after" in self.columns:
            raw, index = self.cell(cells, "balance_after")
            balance = self.amount(line, raw, index) if raw else None
        if profile.invert_sign:  # money out shown positive: the running balance is written the same way
            amount, balance = -amount, (-balance if balance is not None else None)
        value_raw, value_index = self.cell(cells, "value_date") if "value_date" in self.columns else ("", 0)
        value_date = self.parse_date(line, value_raw, value_index) if value_raw else None
        booking_raw, booking_index = self.cell(cells, "booking_date")
        text = self.text
        entry = BankEntry(
            # no booking date but a value date: the value date (the rule every format here follows)
            booking_date=self.parse_date(line, booking_raw, booking_index) if booking_raw or not value_date
            else value_date,
            amount=amount,
            value_date=value_date,
            counterparty_name=squeeze(text(cells, "counterparty_name")),
            counterparty_iban=_account(text(cells, "counterparty_iban")),
            remittance_info=squeeze(text(cells, "remittance_info")),
            structured_ref=squeeze(text(cells, "structured_ref")),
            transaction_code=squeeze(text(cells, "transaction_code")),
            end_to_end_id=_end_to_end(text(cells, "end_to_end_id")),
            bank_reference=text(cells, "bank_reference"),
            line=line,
        )
        return _Row(line, self.account(line, cells), self.currency(line, cells), entry, balance)

    def account(self, line: int, cells: list[str]) -> str:
        if "account" in self.columns:
            raw, index = self.cell(cells, "account")
            account = _account(raw)
            if account:
                return account
            if not self.profile.account:
                raise StatementError(self.file, line, f"{self.label(index)}: the account is empty and the profile "
                                                      "names none to fall back on")
        return _account(self.profile.account or "")

    def currency(self, line: int, cells: list[str]) -> str:
        if "currency" not in self.columns:
            return self.profile.currency or ""
        raw, index = self.cell(cells, "currency")
        currency = raw.upper() or (self.profile.currency or "")
        if currency not in ISO_4217:
            raise StatementError(self.file, line, f"{self.label(index)}: {raw!r} is not an ISO 4217 currency code")
        return currency

    # -------------------------------------------------------------------------------- values

    def parse_date(self, line: int, raw: str, index: int) -> date:
        known = self.dates.get(raw)
        if known is not None:
            return known
        for fmt in self.profile.date_formats():
            try:
                value = datetime.strptime(raw, fmt).date()
                break
            except ValueError:
                continue
        else:
            formats = " or ".join(repr(f) for f in self.profile.date_formats())
            raise StatementError(self.file, line, f"{self.label(index)}: {raw!r} is not a date in the profile's "
                                                  f"format {formats}")
        self.dates[raw] = value
        return value

    def amount(self, line: int, raw: str, index: int) -> Decimal:
        match = self.amount_pattern.fullmatch(raw)
        if match is None or (match.group(1) == "-" and match.group(4) == "-"):
            example = f"-1234{self.profile.decimal}56"
            raise StatementError(self.file, line, f"{self.label(index)}: {raw!r} is not an amount (expected "
                                                  f"digits with {self.profile.decimal!r} as decimal mark, e.g. "
                                                  f"{example})")
        sign, whole, fraction, trailing = match.groups()
        digits = whole if whole.isdigit() else _NON_DIGIT.sub("", whole)
        negative = "-" if sign == "-" or trailing else ""
        return Decimal(f"{negative}{digits}.{fraction}" if fraction else f"{negative}{digits}")

    def _signed_amount(self, line: int, cells: list[str]) -> Decimal:
        sign = self.profile.sign
        if sign == "debit_credit":
            return self._debit_credit(line, cells)
        raw, index = self.cell(cells, "amount")
        if not raw:
            raise StatementError(self.file, line, f"{self.label(index)}: '' is empty, expected an amount")
        amount = self.amount(line, raw, index)
        if sign == "amount":
            return amount
        direction, where = self.cell(cells, "direction")
        if direction.casefold() in self.debit:
            return -abs(amount)
        if direction.casefold() in self.credit:
            return abs(amount)
        expected = ", ".join(repr(v) for v in (*self.profile.debit_values, *self.profile.credit_values))
        raise StatementError(self.file, line, f"{self.label(where)}: {direction!r} is not a debit/credit marker "
                                              f"(expected one of {expected})")

    def _debit_credit(self, line: int, cells: list[str]) -> Decimal:
        debit, debit_index = self.cell(cells, "debit")
        credit, credit_index = self.cell(cells, "credit")
        if not debit and not credit:
            raise StatementError(self.file, line, f"{self.label(debit_index)} and {self.label(credit_index)} are "
                                                  "both empty, expected an amount in one of them")
        out = abs(self.amount(line, debit, debit_index)) if debit else Decimal(0)
        into = abs(self.amount(line, credit, credit_index)) if credit else Decimal(0)
        return into - out


def _end_to_end(text: str) -> str:
    """SEPA writes NOTPROVIDED where the payer gave no end-to-end id (EPC rulebook): that is no id."""
    return "" if text.upper() == "NOTPROVIDED" else text


@lru_cache(maxsize=4096)
def _account(text: str) -> str:
    """An IBAN without the spaces banks print it with (``BE81 0637 5694 4024``); other names squeezed."""
    text = squeeze(text)
    return text.replace(" ", "") if _IBAN.fullmatch(text) else text


@lru_cache(maxsize=16)
def _amount_pattern(decimal: str, thousands: str) -> re.Pattern:
    """sign, digits (grouped by ``thousands`` in threes, or not at all), decimals, trailing minus."""
    if thousands:
        group = "[ \u00a0\u202f]" if thousands == " " else re.escape(thousands)
        whole = rf"[0-9]{{1,3}}(?:{group}[0-9]{{3}})+|[0-9]+"
    else:
        whole = "[0-9]+"
    return re.compile(rf"([+-]?)\s*({whole})(?:{re.escape(decimal)}([0-9]+))?\s*(-?)")


# ---------------------------------------------------------------------------------------------- statements


def _statement(account: str, currency: str, rows: list[_Row], profile: BankCsvProfile,
               several_currencies: bool) -> Statement:
    ordered = rows[::-1] if profile.newest_first else rows
    first, last = ordered[0], ordered[-1]
    dates = [r.entry.booking_date for r in rows]
    start, end = min(dates), max(dates)
    opening = first.balance - first.entry.amount if first.balance is not None else None
    name = f"{account}-{currency}" if several_currencies else account
    return Statement(
        statement_id=f"{name}-{start.isoformat()}..{end.isoformat()}",
        account=account,
        currency=currency,
        opening_balance=opening,
        closing_balance=last.balance if opening is not None else None,
        statement_date=end,
        entries=[r.entry for r in ordered],
        line=min(r.line for r in rows),
        closing_line=last.line,
    )
