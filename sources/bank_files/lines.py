"""Parsed statements -> bank lines (the BANK.csv columns of INTERFACES §1 plus the statement
columns of §2), with the ids that make loading them idempotent.

A line's identity is its *content fingerprint*: our account, currency, dates, amount,
counterparty, texts and the bank's own reference, plus -- where the statement has an opening
balance -- the account's balance after the line, and its occurrence number among identical
lines of the file. So

* the same file delivered twice gives the same ids (nothing new is loaded);
* two overlapping statements (days 1-5 and 3-7) give the shared days' lines the same ids
  (the bank's balances agree);
* a bank that reuses statement numbers (many MT940 banks send ``:20:MT940`` every day)
  cannot make two different lines collide;
* two genuinely identical lines (two 2.00 fees on one day, in one statement or in a morning
  and an evening statement) stay two lines: the balance after each differs.

``bank_line_id`` is that fingerprint, shortened; ``statement_id`` and ``sequence`` say
where the line stands in the statement, for people.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from schemas.currencies import ISO_4217
from sources.bank_files.model import Statement, StatementError
from sources.bank_files.text import cyclic_gc_paused

LINE_COLUMNS = (
    "bank_line_id", "bank_account", "booking_date", "value_date", "amount", "currency", "counterparty_name",
    "counterparty_iban", "remittance_info", "structured_ref", "statement_id", "sequence", "transaction_code",
    "end_to_end_id", "bank_reference",
)
CENT = Decimal("0.01")


def unique_statement_ids(statements: list[Statement]) -> list[str]:
    """Statement ids as printed: whitespace removed, made unique within the file (``-2``, ``-3``)."""
    seen: Counter[str] = Counter()
    ids = []
    for statement in statements:
        base = "".join(statement.statement_id.split()) or "statement"
        seen[base] += 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


LIMIT = Decimal(10) ** 16  # DECIMAL(18, 2): sixteen digits before the point


def _money(value: Decimal, file: str, line: int, what: str = "amount") -> str:
    """The amount as stored (DECIMAL(18, 2)), exactly, or an error: never rounded."""
    text = str(value)
    if text[-3:-2] == "." and "E" not in text and len(text) < 19 and text != "-0.00":  # the usual case
        return text
    if value != value.quantize(CENT):
        raise StatementError(file, line, f"{what} {value} has more than two decimals")
    if abs(value) >= LIMIT:
        raise StatementError(file, line, f"{what} {value} is too large (at most 16 digits before the point)")
    return f"{(abs(value) if value == 0 else value).quantize(CENT):f}"


def check_balances(statements: list[Statement], file: str) -> None:
    """Balances are stored as money too: more than two decimals or too large is an error."""
    for statement in statements:
        for what, value, line in (("opening balance", statement.opening_balance, statement.line),
                                  ("closing balance", statement.closing_balance, statement.closing_line)):
            if value is not None:
                _money(value, file, line or statement.line, what)


def statement_lines(statements: list[Statement], file: str) -> list[dict[str, str]]:
    """One row per entry, in file order, every value as text (empty = none)."""
    check_balances(statements, file)
    with cyclic_gc_paused():
        return _statement_lines(statements, file)


def _statement_lines(statements: list[Statement], file: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    occurrences: dict[str, int] = {}
    days: dict[date, str] = {}  # a statement has few distinct dates: format each once
    sha256 = hashlib.sha256
    for statement, statement_id in zip(statements, unique_statement_ids(statements), strict=True):
        account = statement.account
        balance = None if statement.derived_opening else statement.opening_balance
        for sequence, entry in enumerate(statement.entries, start=1):
            booking = entry.booking_date or entry.value_date or statement.statement_date
            if booking is None:
                raise StatementError(file, entry.line or statement.line, "entry has no booking or value date")
            currency = (entry.currency or statement.currency).upper()
            if currency not in ISO_4217:
                raise StatementError(file, entry.line or statement.line, f"currency {currency!r} is not ISO 4217")
            booked = days.get(booking) or days.setdefault(booking, booking.isoformat())
            value = "" if entry.value_date is None else (
                days.get(entry.value_date) or days.setdefault(entry.value_date, entry.value_date.isoformat()))
            amount = _money(entry.amount, file, entry.line or statement.line)
            if balance is not None:
                balance = (balance + entry.amount).quantize(CENT)  # one spelling: "106.00", never "106"
            content = "\x1f".join((account, booked, value, amount, currency, entry.counterparty_name,
                                    entry.counterparty_iban, entry.remittance_info, entry.structured_ref,
                                    entry.transaction_code, entry.end_to_end_id, entry.bank_reference,
                                    "" if balance is None else str(balance)))
            occurrence = occurrences[content] = occurrences.get(content, 0) + 1
            rows.append({
                "bank_line_id": "BL" + sha256(f"{content}\x1e{occurrence}".encode()).hexdigest()[:18],
                "bank_account": account, "booking_date": booked, "value_date": value, "amount": amount,
                "currency": currency, "counterparty_name": entry.counterparty_name,
                "counterparty_iban": entry.counterparty_iban, "remittance_info": entry.remittance_info,
                "structured_ref": entry.structured_ref, "statement_id": statement_id, "sequence": str(sequence),
                "transaction_code": entry.transaction_code, "end_to_end_id": entry.end_to_end_id,
                "bank_reference": entry.bank_reference,
            })
    return rows


def lines_csv(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LINE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


@dataclass(frozen=True)
class Gap:
    account: str
    previous_id: str
    closing: Decimal
    next_id: str
    opening: Decimal

    def __str__(self) -> str:
        return (f"account {self.account}: statement {self.previous_id} closes at {_shown(self.closing)} but the next, "
                f"{self.next_id}, opens at {_shown(self.opening)} (difference {_shown(self.opening - self.closing)})")


def continuity_gaps(chain: list[tuple[str, Statement]], overlapping: set[int] = frozenset()) -> list[Gap]:
    """Consecutive statements of one account (in the order given) whose closing and next opening differ.
    Overlapping statements cannot join up and are not gaps: those whose position in ``chain`` is in
    ``overlapping`` (some of their lines came before), or whose first day is before the last day of
    the statement before."""
    last: dict[tuple[str, str], tuple[str, Statement]] = {}
    gaps = []
    for position, (statement_id, statement) in enumerate(chain):
        key = (statement.account, statement.currency)
        previous = last.get(key)
        if (previous is not None and statement.opening_balance is not None and not statement.derived_opening
                and previous[1].closing_balance is not None
                and previous[1].closing_balance != statement.opening_balance
                and position not in overlapping and not _reaches_back(previous[1], statement)):
            gaps.append(Gap(statement.account, previous[0], previous[1].closing_balance, statement_id,
                            statement.opening_balance))
        last[key] = (statement_id, statement)
    return gaps


def _reaches_back(previous: Statement, statement: Statement) -> bool:
    before = [e.booking_date for e in previous.entries if e.booking_date]
    after = [e.booking_date for e in statement.entries if e.booking_date]
    return bool(before and after) and max(before) > min(after)


def summary_line(statement_id: str, statement: Statement) -> str:
    """``statement <id> account <iban> opening <amount> closing <amount> lines <n> check ok|FAILED`` (§2)."""
    check = statement.balance_check()
    opening = "-" if statement.opening_balance is None or statement.derived_opening else _shown(statement.opening_balance)
    closing = "-" if statement.closing_balance is None else _shown(statement.closing_balance)
    account = "".join(statement.account.split()) or "-"
    verdict = "n/a" if check is None else ("ok" if check else "FAILED")
    return (f"statement {statement_id} account {account} opening {opening} closing {closing} "
            f"lines {len(statement.entries)} check {verdict}")


def _shown(value: Decimal) -> str:
    """Money as people read it: at least two decimals (``-812`` from ``812,`` shows as ``-812.00``)."""
    return f"{value.quantize(CENT):f}" if value == value.quantize(CENT) else f"{value:f}"


def balance_error(file: str, statement_ids: list[str], statements: list[Statement]) -> StatementError | None:
    """The first statement whose opening balance plus its lines is not its closing balance."""
    for statement_id, statement in zip(statement_ids, statements, strict=True):
        if statement.balance_check() is False:
            lines = statement.entries_sum()
            return StatementError(file, statement.closing_line or statement.line,
                                  f"statement {statement_id}: opening {_shown(statement.opening_balance)} + lines "
                                  f"{_shown(lines)} = {_shown(statement.opening_balance + lines)}, not the closing "
                                  f"balance {_shown(statement.closing_balance)}")
    return None
