"""Bank CSV profiles: how one bank's CSV export maps onto bank lines.

Banks' CSV exports differ in everything (separator, decimal comma, date format, one signed
amount or debit/credit columns or a D/C indicator, preamble lines, encoding). A profile
declares it; built-in profiles live in ``sources.bank_files.bank_csv``, a tenant adds its
own under ``[bank_csv_profiles.NAME]`` in its TOML file.

With ``header = true`` the header row is looked for in the first lines after ``skip_lines``: the
first row holding every named column (names compare case- and whitespace-insensitively), so a
preamble of variable length (Belfius prints its export filters above the header) needs no count.
"""

from __future__ import annotations

import codecs
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.currencies import ISO_4217

CANONICAL_FIELDS = (
    "booking_date", "value_date", "amount", "debit", "credit", "direction", "currency", "account",
    "counterparty_name", "counterparty_iban", "remittance_info", "structured_ref", "end_to_end_id",
    "bank_reference", "transaction_code", "balance_after",
)


class BankCsvProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="", pattern=r"^([a-z0-9][a-z0-9_-]{0,39})?$")  # default: its key in the tenant file
    description: str = ""
    # One encoding, or several tried in order (["utf-8", "cp1252"]: exports that changed encoding over the
    # years). Bytes that none of them reads are an error naming the line.
    encoding: str | list[str] = "utf-8"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quotechar: str = Field(default='"', min_length=1, max_length=1)
    skip_lines: int = Field(default=0, ge=0, le=100)  # preamble before the header (or the first row)
    header: bool = True
    decimal: Literal[".", ","] = "."
    thousands: Literal["", ".", ",", " ", "'"] = ""
    # strptime format, or several tried in order (["%d.%m.%y", "%d.%m.%Y"]: one export writes both).
    date_format: str | list[str] = "%Y-%m-%d"
    # canonical field -> column header (header = true) or 1-based column number as text (header = false).
    # A list names several columns, of which those in the file are used (at least one must be):
    # remittance_info joins their non-empty values with a space, any other field takes the first
    # non-empty one (a counterparty named in "Payee Name" or "Payer Name"; a header renamed between
    # export versions).
    columns: dict[str, str | list[str]]
    # column (as in `columns`) -> values that mark a row as no transaction: skipped (pending,
    # declined or reverted card payments, "Umsatz vorgemerkt").
    skip_when: dict[str, list[str]] = {}
    # amount: one signed column; debit_credit: unsigned debit and credit columns;
    # indicator: an unsigned amount and a direction column whose value says credit or debit.
    sign: Literal["amount", "debit_credit", "indicator"] = "amount"
    debit_values: list[str] = ["D", "DBIT", "Debit", "Af"]  # direction values that mean money out
    credit_values: list[str] = ["C", "CRDT", "Credit", "Bij"]
    invert_sign: bool = False  # some exports show money out as positive
    account: str | None = None  # our account when the file has no account column
    currency: str | None = None  # the currency when the file has no currency column
    newest_first: bool = False  # rows come newest first (many online banks): statement order is reversed

    @model_validator(mode="after")
    def _consistent(self) -> BankCsvProfile:
        unknown = sorted(set(self.columns) - set(CANONICAL_FIELDS))
        if unknown:
            raise ValueError(f"columns: unknown field(s) {', '.join(unknown)}; known: {', '.join(CANONICAL_FIELDS)}")
        needs = {"amount": ("amount",), "debit_credit": ("debit", "credit"), "indicator": ("amount", "direction")}
        missing = [f for f in ("booking_date", *needs[self.sign]) if f not in self.columns]
        if missing:
            raise ValueError(f"sign = {self.sign!r} needs columns for {', '.join(missing)}")
        if "account" not in self.columns and not self.account:
            raise ValueError("give either an 'account' column or account = '<our IBAN>'")
        if "currency" not in self.columns and not self.currency:
            raise ValueError("give either a 'currency' column or currency = 'EUR'")
        if self.decimal == self.thousands:
            raise ValueError("decimal and thousands separators must differ")
        if self.delimiter == self.quotechar:
            raise ValueError("delimiter and quotechar must differ")
        if self.currency is not None and self.currency not in ISO_4217:
            raise ValueError(f"currency {self.currency!r} is not an ISO 4217 currency code")
        empty = [f"columns.{f}" for f, c in self.columns.items() if not c] + [
            what for what, value in (("encoding", self.encoding), ("date_format", self.date_format)) if not value]
        if empty:
            raise ValueError(f"{', '.join(empty)} must name at least one")
        for name in self.encodings():
            _check_encoding(name)
        for fmt in self.date_formats():
            _check_date_format(fmt)
        if not self.header:
            for field, column in [*self.columns.items(), *((f"skip_when {c}", c) for c in self.skip_when)]:
                for number in [column] if isinstance(column, str) else column:
                    if not number.isdigit() or int(number) < 1:
                        raise ValueError(f"columns: {field} = {number!r}: with header = false columns are "
                                         "1-based numbers such as '3'")
        return self

    def encodings(self) -> tuple[str, ...]:
        return (self.encoding,) if isinstance(self.encoding, str) else tuple(self.encoding)

    def date_formats(self) -> tuple[str, ...]:
        return (self.date_format,) if isinstance(self.date_format, str) else tuple(self.date_format)


def _check_encoding(name: str) -> None:
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        raise ValueError(f"encoding {name!r} is not a known character encoding") from None
    if not getattr(info, "_is_text_encoding", True):
        raise ValueError(f"encoding {name!r} is not a text encoding")


def _check_date_format(fmt: str) -> None:
    """A format that writes a date and reads it back to the same day (so it has day, month and year)."""
    sample = date(2031, 12, 24)
    try:
        back = datetime.strptime(sample.strftime(fmt), fmt).date()
    except ValueError:
        back = None
    if back != sample:
        raise ValueError(f"date_format {fmt!r} is not a strptime format with day, month and year (e.g. '%d.%m.%Y')")
