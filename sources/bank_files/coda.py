"""Belgian CODA: the Febelfin "coded statement of account", versions 2.x (and the older version 1).

Layout from Febelfin, *Coded statement of account (CODA)*, standard 2.6 (positions below are the
standard's 1-based ones; the code slices 0-based). Every record is 128 characters; its first one or
two characters say what it is:

=====  =========================================================================================
0      header: creation date 6-11, **version code 128** (1 or 2; any other version is refused)
1      old balance: account structure 2, paper statement number 3-5, account and currency 6-42,
       sign 43, balance 44-58, balance date 59-64, CODA statement number 126-128
2.1    movement: sequence 3-6, detail number 7-10, bank reference 11-31, sign 32, amount 33-47,
       value date 48-53, transaction code 54-61 (type, family, transaction, category),
       communication type 62 (0 free, 1 structured) and communication 63-115, entry date 116-121
2.2    communication continued 11-63, customer reference 64-98, counterparty BIC 99-109 (not kept)
2.3    counterparty account 11-47, counterparty name 48-82, communication continued 83-125
3.x    information on the movement: 3.1 has its own communication type 40 and text 41-113,
       continued in 3.2 (11-115) and 3.3 (11-100)
4      free communication of the bank to the customer: not a movement, ignored
8      new balance: sign 42, balance 43-57, balance date 58-63
9      trailer: record count and debit/credit totals
=====  =========================================================================================

What real files do, and what we do about it:

* **Account structures** (record 1 position 2): 0 Belgian account number (12 digits, currency at
  19-21), 1 foreign account number, 2 Belgian IBAN (16), 3 foreign IBAN (34 positions, currency at
  40-42). The account is reported as the file prints it (a BBAN stays a BBAN). Version 1 only knows
  the Belgian layout, and its 2.3 has the counterparty name over 48-125 and no communication
  (Noviat's reading of version-1 files in Odoo's CODA import). The account in record 8 is not compared: OCA's sample prints another account
  there, and the balance check says whether the statement adds up.
* **Amounts** are 15 digits with three implied decimals and a separate sign digit (0 credit, 1
  debit). A zero mill digit is dropped, so ``000000017752120`` reads ``17752.12``.
* **Dates** are DDMMYY; ``000000`` (value date unknown) is no date. booking_date is the entry date
  of record 2.1 (116-121), else the value date, else the new-balance date.
* **Lines and globalisation.** One line per record 2.1 with detail number 0000. A globalised total
  (transaction type 1 or 2) stays one line: its details (detail number > 0000, types 5/6/7/9) repeat
  a batch the bank booked as one amount, and type-8 details (charges, foreign-currency data of a
  type-3 movement) are never amounts of their own. Details, and the 2.2/2.3/3.x records that
  follow them, are skipped: their texts are per-beneficiary and would drown the total's.
  pycoda's "faulty globalisation" sample sets the globalisation code without any detail; counting
  by detail number makes such movements ordinary lines.
* **Communication** is one fixed-width field cut over 2.1, 2.2 and 2.3 (a word may be split at a
  record boundary), so the pieces are joined first and whitespace squeezed after. Structured
  communications (type 1): 101/102 is the Belgian OGM, reported as ``+++123/4567/89012+++`` in
  structured_ref; 127 (SEPA direct debit) gives the creditor's own communication (positions 80-141
  of the structured text); any other type keeps its text. The 2.2 customer reference (the SEPA
  end-to-end id, or the customer's own reference of an outgoing payment) is end_to_end_id, except
  the SEPA placeholder ``NOTPROVIDED``.
* **Information records 3.x** belong to the movement record they follow, not to their detail number
  (banks number them 0001 under a plain movement). Free text (type 0) is added to remittance_info;
  structured 001 gives the counterparty name when 2.3 has none, 101/102 an OGM when 2.1 has none.
* **Statements**: several 0...9 files may follow each other, and a header may hold several 1...8
  statements. The id is account / paper statement number (record 1, 3-5) / new-balance date,
  because the number restarts every year. A file that stops inside a statement (no record 8) is
  refused naming its last record; the trailer 9 itself may be missing. Continuation records are
  tied to their movement by order, as next/link codes say; sequence numbers are not cross-checked
  (a lost 2.1 shows as a failed balance check, which names the statement).
* **Bytes**: UTF-8, else Windows-1252, else ISO-8859-1. Trailing blanks, CR, a DOS end-of-file mark
  (^Z) and blank lines are tolerated, short records are padded to 128 characters (exports often
  strip trailing blanks), and a file written without line breaks is cut into 128-character records.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from sources.bank_files.model import BankEntry, Statement, StatementError
from sources.bank_files.text import SINGLE_BYTE, ddmmyy, decode, squeeze

RECORD = 128
VERSIONS = ("1", "2")
# Record 0: "0" + "0000", creation date DDMMYY, bank number, application code.
_HEADER = re.compile(rb"(?:\xef\xbb\xbf)?00000[0-9 ]{6}[0-9 ]{3}[0-9]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_MISSING = object()
# DDMMYY -> date, None for "unknown"; statements repeat a handful of dates thousands of times.
_DATES: dict[str, date | None] = {"000000": None, "      ": None}
_NO_REFERENCE = ("", "NOTPROVIDED", "NOT PROVIDED")


def identify(head: bytes) -> bool:
    """A CODA header record 0 (``00000`` + DDMMYY + bank + application code) of record length."""
    if not _HEADER.match(head):
        return False
    end = head.find(b"\n")
    return len((head if end < 0 else head[:end]).rstrip()) >= 100


def parse(data: bytes, file: str) -> list[Statement]:
    content, _ = decode(data, file, SINGLE_BYTE)
    return _Reader(file).read(_lines(content))


def _lines(content: str) -> list[str]:
    """The records as lines (1-based line = index + 1); a file without line breaks is cut every 128."""
    lines = content.split("\n") if "\n" in content else content.split("\r")
    if len(lines) <= 2:
        single = content.strip("\r\n\x1a ")
        if len(single) > RECORD + 2 and "\n" not in single and "\r" not in single:
            return [single[i:i + RECORD] for i in range(0, len(single), RECORD)]
    return lines


def _iban_or_none(account: str) -> str:
    account = "".join(account.split())
    return "" if not account.strip("0") else account


class _Reader:
    """One pass over the records; the movement being read is kept until the next 2.1 or 8 ends it."""

    def __init__(self, file: str):
        self.file = file
        self.statements: list[Statement] = []
        self.version = "2"  # a file without header is read as version 2
        self.trailers = 0
        self.created: date | None = None
        self.opened: date | None = None
        self.sequence = ""
        self.statement: Statement | None = None
        self.lines: list[str] = []
        self.last = 0  # line of the last record read
        self.in_movement = False  # a 2.1 was read; 2.2/2.3/3.x may follow
        self.entry: BankEntry | None = None  # None while reading a detail, whose records are skipped
        self.communication: list[str] = []
        self.structured = False
        self.info: list[list[str]] = []  # per 3.1: [type, text pieces...]

    def fail(self, line: int | None, message: str) -> StatementError:
        return StatementError(self.file, line, message)

    # ------------------------------------------------------------------ the loop
    def read(self, lines: list[str]) -> list[Statement]:
        handlers = {"0": self.header, "1": self.old_balance, "21": self.movement_1, "22": self.movement_2,
                    "23": self.movement_3, "31": self.information, "32": self.information, "33": self.information,
                    "4": self.free_communication, "8": self.new_balance, "9": self.trailer}
        self.lines = lines
        for number, record in enumerate(lines, start=1):
            if len(record) != RECORD or record[0] == " " or record[-1] in "\r\x1a":
                record = record.rstrip(" \t\r\x1a")  # trailing blanks, CR, DOS end-of-file mark
                if not record:
                    continue
                record = record.ljust(RECORD)
            handler = handlers.get(record[:2]) or handlers.get(record[0])
            if handler is None:
                raise self.unknown(record, number)
            handler(record, number)
            self.last = number
        return self.finish()

    def unknown(self, record: str, number: int) -> StatementError:
        if record[0] in "23":
            what = "a movement record is 2.1, 2.2 or 2.3" if record[0] == "2" else \
                "an information record is 3.1, 3.2 or 3.3"
            return self.fail(number, f"unknown record type {record[0]}.{record[1]}: {what}")
        return self.fail(number, f"unknown record type {record[:1]!r}: a CODA record starts with 0, 1, 2, 3, 4, "
                                 f"8 or 9")

    def finish(self) -> list[Statement]:
        if self.statement is not None:
            raise self.fail(self.last, f"missing record 8 (new balance): the file ends at line {self.last} "
                                       f"(record {self._kind_name()}) inside the statement of account "
                                       f"{self.statement.account} that record 1 opened at line "
                                       f"{self.statement.line}; the file is truncated")
        if not self.last:
            raise self.fail(None, "empty file: no CODA records")
        if not self.statements and not self.trailers:
            raise self.fail(self.last, "no statement: the file has no old-balance record 1 and no trailer "
                                       "record 9; the file is truncated")
        return self.statements

    def _kind_name(self) -> str:
        kind = self.lines[self.last - 1][:2]
        return ".".join(kind) if kind[:1] in ("2", "3") else kind[:1]

    def require_closed(self, number: int, what: str) -> None:
        if self.statement is not None:
            raise self.fail(self.last, f"missing record 8 (new balance): {what} at line {number} follows, but "
                                       f"the statement of account {self.statement.account} that record 1 "
                                       f"opened at line {self.statement.line} was never closed")

    def require_open(self, number: int, what: str) -> Statement:
        if self.statement is None:
            raise self.fail(number, f"{what} outside a statement: no old-balance record 1 opens one before it")
        return self.statement

    # ------------------------------------------------------------------ fields
    def amount(self, sign: str, digits: str, number: int, what: str) -> Decimal:
        """15 digits, the last three decimals; sign 0 credit, 1 debit."""
        if not (digits.isdigit() and digits.isascii()):
            raise self.fail(number, f"{what} {digits!r} is not 15 digits (12 units, 3 decimals)")
        # A zero mill digit is dropped (amounts read as cents); building the text beats Decimal.scaleb.
        value = Decimal(digits[:12] + "." + (digits[12:14] if digits[14] == "0" else digits[12:]))
        if sign == "0":
            return value
        if sign == "1":
            return -value if value else value  # no -0.00
        raise self.fail(number, f"{what}: sign {sign!r} is neither 0 (credit) nor 1 (debit)")

    def day(self, text: str, number: int, what: str) -> date | None:
        """DDMMYY; 000000 or blank (unknown) is None."""
        known = _DATES.get(text, _MISSING)
        if known is _MISSING:
            known = _DATES[text] = ddmmyy(text, self.file, number, what)
        return known

    def account(self, record: str, number: int) -> tuple[str, str]:
        """Account and currency of record 1 by its account structure (position 2)."""
        structure = " " if self.version == "1" else record[1]
        if structure in " 0":  # Belgian account number: 12 digits, blank, currency
            account, currency = record[5:17], record[18:21]
        elif structure == "2":  # Belgian IBAN: 16 positions, currency at 40-42
            account, currency = record[5:21], record[39:42]
        elif structure in "13":  # foreign account number or IBAN: 34 positions, currency at 40-42
            account, currency = record[5:39], record[39:42]
        else:
            raise self.fail(number, f"record 1: account structure {structure!r} (position 2) is not 0 (Belgian "
                                    f"account number), 1 (foreign account), 2 (Belgian IBAN) or 3 (foreign IBAN)")
        account = "".join(account.split())
        if not account:
            raise self.fail(number, "record 1: no account number (positions 6-42)")
        currency = currency.strip() or ("EUR" if self.version == "1" else "")
        if not _CURRENCY.fullmatch(currency):
            raise self.fail(number, f"record 1: currency {currency!r} is not a 3-letter ISO 4217 code")
        return account, currency

    # ------------------------------------------------------------------ records 0, 1, 8, 9
    def header(self, record: str, number: int) -> None:
        self.require_closed(number, "header record 0")
        version = record[127]
        if version not in VERSIONS:
            shown = version if version.isalnum() else repr(version)
            raise self.fail(number, f"unsupported CODA version {shown} (header record 0, position 128); "
                                    f"ledgerflow reads CODA versions 1 and 2")
        self.version = version
        try:
            self.created = self.day(record[5:11], number, "header creation date")
        except StatementError:  # only a last fallback for dates: a bad one is not worth refusing the file
            self.created = None

    def old_balance(self, record: str, number: int) -> None:
        self.require_closed(number, "old-balance record 1")
        account, currency = self.account(record, number)
        opening = self.amount(record[42], record[43:58], number, "record 1 old balance (positions 43-58)")
        self.opened = self.day(record[58:64], number, "record 1 old balance date (positions 59-64)")
        paper, coda = record[2:5].strip(), record[125:128].strip()
        self.sequence = paper if paper.strip("0") else coda
        self.statement = Statement(statement_id="", account=account, currency=currency, opening_balance=opening,
                                   closing_balance=None, line=number)

    def new_balance(self, record: str, number: int) -> None:
        statement = self.require_open(number, "new-balance record 8")
        self.end_movement()
        statement.closing_balance = self.amount(record[41], record[42:57], number,
                                                "record 8 new balance (positions 42-57)")
        closed = self.day(record[57:63], number, "record 8 new balance date (positions 58-63)")
        statement.statement_date = closed or self.opened or self.created
        statement.closing_line = number
        day = statement.statement_date.isoformat() if statement.statement_date else ""
        statement.statement_id = "/".join(part for part in (statement.account, self.sequence, day) if part)
        for entry in statement.entries:
            if entry.booking_date is None:
                entry.booking_date = statement.statement_date
        self.statements.append(statement)
        self.statement = None

    def trailer(self, record: str, number: int) -> None:
        # The trailer's debit/credit totals are not checked: the balance check covers the same ground.
        self.require_closed(number, "trailer record 9")
        self.trailers += 1

    def free_communication(self, record: str, number: int) -> None:
        """Record 4: a message of the bank to the customer, not part of any movement."""

    # ------------------------------------------------------------------ records 2.x
    def movement_1(self, record: str, number: int) -> None:
        statement = self.statement or self.require_open(number, "movement record 2.1")
        if self.in_movement:
            self.end_movement()
        self.in_movement = True
        detail = record[6:10]
        if detail != "0000" and detail.strip("0 "):
            return  # a detail of a globalised movement or type-8 information: not a line (see above)
        value = _DATES.get(record[47:53], _MISSING)  # the cache first: this is the hot path
        if value is _MISSING:
            value = self.day(record[47:53], number, "record 2.1 value date (positions 48-53)")
        booked = _DATES.get(record[115:121], _MISSING)
        if booked is _MISSING:
            booked = self.day(record[115:121], number, "record 2.1 entry date (positions 116-121)")
        amount = self.amount(record[31], record[32:47], number, "record 2.1 amount (positions 32-47)")
        entry = BankEntry(booking_date=booked or value, amount=amount, value_date=value,
                          transaction_code=record[53:61].strip(), bank_reference=record[10:31].strip(), line=number)
        statement.entries.append(entry)
        self.entry = entry
        self.structured = record[61] == "1"
        self.communication = [record[62:115]]
        self.info = []

    def continuation(self, record: str, number: int) -> BankEntry | None:
        """The movement a 2.2, 2.3 or 3.x record continues; None for a detail's (skipped)."""
        if self.entry is not None:
            return self.entry
        if not self.in_movement:
            kind = "information record" if record[0] == "3" else "record"
            raise self.fail(number, f"{kind} {record[0]}.{record[1]} without a movement record 2.1 before it")
        return self.entry

    def movement_2(self, record: str, number: int) -> None:
        entry = self.entry or self.continuation(record, number)
        if entry is None:
            return
        self.communication.append(record[10:63])
        reference = record[63:98].strip()
        if reference.upper() not in _NO_REFERENCE:
            entry.end_to_end_id = reference

    def movement_3(self, record: str, number: int) -> None:
        entry = self.entry or self.continuation(record, number)
        if entry is None:
            return
        if self.version == "1":  # version 1: a 12-digit account, then the name runs to position 125
            entry.counterparty_iban = _iban_or_none(record[10:22])
            entry.counterparty_name = squeeze(record[47:125])
            return
        # 11-47: a Belgian account number is 12 digits, a blank, the currency (24-26) and blanks;
        # anything else is an IBAN or foreign number over 11-44 (currency 45-47).
        account = record[10:22] if record[22] == " " and not record[26:44].strip() else record[10:44]
        if account.strip("0 "):
            entry.counterparty_iban = "".join(account.split())
        entry.counterparty_name = " ".join(record[47:82].split())
        self.communication.append(record[82:125])

    # ------------------------------------------------------------------ records 3.x
    def information(self, record: str, number: int) -> None:
        if self.continuation(record, number) is None:
            return  # information on a detail: skipped with the detail
        article = record[1]
        if article == "1":
            self.info.append([record[39], record[40:113]])
        elif not self.info:  # a continuation without its 3.1: keep the text anyway
            self.info.append(["0", record[10:115] if article == "2" else record[10:100]])
        else:
            self.info[-1].append(record[10:115] if article == "2" else record[10:100])

    # ------------------------------------------------------------------ end of a movement
    def end_movement(self) -> None:
        entry = self.entry
        self.in_movement = False
        if entry is None:
            return
        self.entry = None
        communication = "".join(self.communication)
        texts = [self.structured_text(entry, communication) if self.structured else communication]
        for kind, *pieces in self.info:
            text = "".join(pieces)
            if kind == "1":
                self.structured_information(entry, text[:3], text[3:])
            else:
                texts.append(text)
        entry.remittance_info = " ".join(" ".join(texts).split())  # squeeze(), inlined: hot path

    @staticmethod
    def structured_text(entry: BankEntry, communication: str) -> str:
        """The remittance text of a structured communication (type code + body); sets the OGM."""
        kind, body = communication[:3], communication[3:]
        if kind in ("101", "102"):  # Belgian OGM +++123/4567/89012+++ (102: reconstituted by the bank)
            if _set_ogm(entry, body[:12]):
                return body[12:]
        elif kind == "127":  # SEPA direct debit: settlement date, type, scheme, status, creditor id,
            text = body[79:141]  # mandate reference, then the creditor's communication (62)
            if text.strip():
                return text
        return body

    @staticmethod
    def structured_information(entry: BankEntry, kind: str, body: str) -> None:
        if kind == "001" and not entry.counterparty_name:  # name (70), street, locality, id of the counterparty
            entry.counterparty_name = squeeze(body[:70])
        elif kind in ("101", "102") and not entry.structured_ref:
            _set_ogm(entry, body[:12])


def _set_ogm(entry: BankEntry, digits: str) -> bool:
    if not (len(digits) == 12 and digits.isdigit() and digits.isascii()):
        return False
    entry.structured_ref = f"+++{digits[:3]}/{digits[3:7]}/{digits[7:]}+++"
    return True
