"""What every statement parser returns, and the one error it raises.

A parser turns the bytes of a file into ``Statement`` objects in file order. It does not
invent ids, fingerprints or CSV text: ``sources.bank_files.lines`` does that once for
every format, so a camt.053 line and an MT940 line reach the warehouse the same way.

Amounts are ``Decimal`` exactly as written in the file, signed from our side
(+ = money into our account).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal


class StatementError(ValueError):
    """A file that cannot be read as a statement. ``str()`` names file and line."""

    def __init__(self, file: str, line: int | None, message: str):
        self.file = file
        self.line = line
        self.message = message
        where = f"{file}: line {line}" if line else file
        super().__init__(f"{where}: {message}")


@dataclass(slots=True)
class BankEntry:
    """One statement line as the bank reported it."""

    booking_date: date | None
    amount: Decimal
    value_date: date | None = None
    counterparty_name: str = ""
    counterparty_iban: str = ""
    remittance_info: str = ""
    structured_ref: str = ""
    transaction_code: str = ""  # the format's own code (BTC, GVC, CODA type, camt domain/family/sub-family)
    end_to_end_id: str = ""
    bank_reference: str = ""  # the bank's own id of the entry (AcctSvcrRef, FITID, MT940 bank reference)
    currency: str = ""  # empty: the statement's currency
    line: int = 0  # 1-based line of the file where the entry starts


@dataclass(slots=True)
class Statement:
    """One statement (MT940 :20:…:62:, CODA 0…9, camt Stmt/Ntfctn, OFX STMTRS)."""

    statement_id: str
    account: str  # IBAN where the file has one, else the account as printed
    currency: str
    opening_balance: Decimal | None  # None: the format carries none (OFX, camt.054)
    closing_balance: Decimal | None
    statement_date: date | None = None  # date of the closing balance / statement
    entries: list[BankEntry] = field(default_factory=list)
    line: int = 0  # 1-based line where the statement starts
    closing_line: int = 0  # 1-based line of the closing balance, for messages
    derived_opening: bool = False  # opening computed (OFX: ledger balance - lines), not read

    def entries_sum(self) -> Decimal:
        return sum((e.amount for e in self.entries), Decimal(0))

    def balance_check(self) -> bool | None:
        """opening + lines == closing; None where the format has no opening balance."""
        if self.opening_balance is None or self.closing_balance is None or self.derived_opening:
            return None
        return self.opening_balance + self.entries_sum() == self.closing_balance
