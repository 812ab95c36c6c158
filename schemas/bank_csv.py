"""Bank CSV profiles: how one bank's CSV export maps onto bank lines.

Banks' CSV exports differ in everything (separator, decimal comma, date format, one signed
amount or debit/credit columns or a D/C indicator, preamble lines, encoding). A profile
declares it; built-in profiles live in ``sources.bank_files.bank_csv``, a tenant adds its
own under ``[bank_csv_profiles.NAME]`` in its TOML file.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CANONICAL_FIELDS = (
    "booking_date", "value_date", "amount", "debit", "credit", "direction", "currency", "account",
    "counterparty_name", "counterparty_iban", "remittance_info", "structured_ref", "end_to_end_id",
    "bank_reference", "transaction_code", "balance_after",
)


class BankCsvProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="", pattern=r"^([a-z0-9][a-z0-9_-]{0,39})?$")  # default: its key in the tenant file
    description: str = ""
    encoding: str = "utf-8"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quotechar: str = Field(default='"', min_length=1, max_length=1)
    skip_lines: int = Field(default=0, ge=0, le=100)  # preamble before the header (or the first row)
    header: bool = True
    decimal: Literal[".", ","] = "."
    thousands: Literal["", ".", ",", " ", "'"] = ""
    date_format: str = "%Y-%m-%d"  # strptime format
    # canonical field -> column header (header = true) or 1-based column number as text (header = false).
    # remittance_info may list several columns, joined with a space.
    columns: dict[str, str | list[str]]
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
        return self
