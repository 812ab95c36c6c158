"""COMPANY.toml (INTERFACES §3): the legal entity, its chart and VAT codes, and per-format
settings. A tenant file is a superset of it (``schemas.tenant.Tenant`` extends ``Company``), so
``ledgerflow export --company`` takes either."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Account(_Model):
    number: str = Field(min_length=1)
    name: str
    type: Literal["asset", "liability", "equity", "income", "expense"]
    standard_account: str | None = None


class VatCode(_Model):
    code: str = Field(min_length=1)
    rate: Decimal = Field(ge=0, le=100, decimal_places=2)
    account: str
    standard_code: str | None = None


class DatevSettings(_Model):
    consultant_number: int = Field(ge=1001, le=9999999)
    client_number: int = Field(ge=1, le=99999)
    account_length: int = Field(default=4, ge=4, le=8)
    automatic_accounts: list[str] = []


class SaftNoSettings(_Model):
    grouping_category: str = "RF-1167"


class Company(BaseModel):
    """The keys of COMPANY.toml; formats may add their own tables (kept in ``model_extra``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    vat_id: str | None = None
    registration_id: str | None = None
    country: str = Field(pattern=r"^[A-Z]{2}$")
    currency: str
    street: str | None = None
    city: str | None = None
    postcode: str | None = None
    fiscal_year_start: str = Field(default="01-01", pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
    chart: str | None = None
    contact_name: str | None = None
    contact_phone: str | None = None
    contact_email: str | None = None
    accounts: list[Account] = []
    vat_codes: list[VatCode] = []
    datev: DatevSettings | None = None
    saft_no: SaftNoSettings | None = None

    @property
    def account_names(self) -> dict[str, str]:
        return {account.number: account.name for account in self.accounts}

    @property
    def vat_by_code(self) -> dict[str, VatCode]:
        return {vat.code: vat for vat in self.vat_codes}


class CompanyError(ValueError):
    """A COMPANY.toml that cannot be used; the message names file, key and value."""


def load_company(path: Path) -> Company:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CompanyError(f"{path}: {exc}") from None
    try:
        return Company(**document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CompanyError(f"{path}: {problems}") from None
