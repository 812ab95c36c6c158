"""Tenant configuration: one TOML file per tenant, validated when it is loaded.

The file is a superset of the COMPANY.toml of INTERFACES §3 (legal entity, chart,
VAT codes), plus time settings, sources, the GL/VAT mapping and destinations.
Secrets never live here: a source names the environment variable or Prefect
Secret block that holds them.
"""

from __future__ import annotations

import os
import tomllib
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.bank_csv import BankCsvProfile
from schemas.company import Account, Company
from schemas.currencies import ISO_4217
from schemas.notify import NotifySettings
from schemas.sources import EntriesApiSource, PaypalSource, RestPmsSource, StripeSource, TrainingSource

TENANTS_DIR_ENV = "LEDGERFLOW_TENANTS_DIR"
HOME_ENV = "LEDGERFLOW_HOME"
PACKAGED_TENANTS = Path(__file__).resolve().parent.parent / "tenants"


class ConfigError(ValueError):
    """A tenant file that cannot be used; the message names file, key and value."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RevenueMapping(_Model):
    account: str
    vat_code: str


class TaxMapping(_Model):
    """A charge collected for a third party (city/tourist tax): a liability, not revenue."""

    account: str


class MethodMapping(_Model):
    account: str
    by_partner: bool = False  # city ledger: one debtor line per company


class Mapping(_Model):
    journal_code: str = "VT"
    suspense_account: str
    rounding_account: str
    guest_ledger_account: str
    deposit_account: str
    revenue: dict[str, RevenueMapping] = {}
    taxes: dict[str, TaxMapping] = {}
    payment_methods: dict[str, MethodMapping] = {}


class DemoPmsSource(_Model):
    """The embedded synthetic hotel PMS (``sources/demo_pms``)."""

    role: ClassVar[str] = "sales"  # closed by daily_close into the sales journal
    type: Literal["demo_pms"]
    embedded: bool = True  # start the demo PMS in-process for each extraction
    base_url: str | None = None  # used when embedded = false
    seed: int = 7
    history_start: date = date(2026, 1, 1)
    history_days: int = Field(default=365, ge=1, le=3660)
    rooms: int = Field(default=60, ge=1, le=100_000)
    page_size: int = Field(default=1000, ge=1, le=10_000)
    lookback_days: int = Field(default=7, ge=0, le=366)
    timeout_seconds: float = Field(default=30.0, gt=0)  # not money

    @property
    def history_end(self) -> date:
        return self.history_start + timedelta(days=self.history_days - 1)


class SftpServer(_Model):
    """How to reach an sFTP server: its pinned host key, and where the secrets are."""

    host: str
    port: int = Field(default=22, ge=1, le=65535)
    username: str
    remote_dir: str = "."
    # Pinned host key, as in known_hosts: "ssh-ed25519 AAAA…". A server showing another key is refused.
    host_key: str = Field(pattern=r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521)"
                                  r" [A-Za-z0-9+/=]+$")
    password_env: str | None = None  # name of the environment variable holding the password
    private_key_env: str | None = None  # name of the variable holding a private key file's path (or the key)
    timeout_seconds: float = Field(default=30.0, gt=0)  # not money


class SftpInbox(SftpServer):
    """A folder on an sFTP server where the bank (or a hub) drops statement files."""

    quarantine_dir: str = "quarantine"  # remote folder (relative to remote_dir) bad files are moved to
    archive_dir: str = "processed"  # remote folder loaded files are moved to


class BankFilesSource(_Model):
    """Statement files (CODA, camt.053/054, MT940, OFX, bank CSV) from a folder or an sFTP inbox."""

    role: ClassVar[str] = "bank"
    type: Literal["bank_files"]
    folder: str | None = None  # under data_dir unless absolute; bad files move to <folder>/quarantine
    sftp: SftpInbox | None = None
    format: Literal["auto", "coda", "camt053", "camt054", "mt940", "ofx", "csv"] = "auto"
    profile: str | None = None  # bank CSV profile (built-in or [bank_csv_profiles.NAME]); needed for csv
    pattern: str = "*"  # file names to take (glob), e.g. "*.xml"
    # Leave a file alone until it has not changed for this long: a bank still uploading it would
    # otherwise have half a statement quarantined (0: take at once, for uploads renamed when complete).
    settle_seconds: int = Field(default=0, ge=0, le=86_400)

    @model_validator(mode="after")
    def _one_location(self) -> BankFilesSource:
        if (self.folder is None) == (self.sftp is None):
            raise ValueError("give exactly one of folder = '…' or [sftp]")
        if self.format == "csv" and not self.profile:
            raise ValueError("format = 'csv' needs profile = '<bank CSV profile>'")
        return self


class CodaboxSource(_Model):
    """A CodaBox-style delivery API: CODA statements, SODA payroll journals, purchase invoices."""

    role: ClassVar[str] = "bank"
    type: Literal["codabox"]
    base_url: str
    token_env: str = "CODABOX_TOKEN"  # variable holding the office's API credentials, "username:password"
    software_company_env: str = "CODABOX_SOFTWARE_COMPANY"  # variable holding the software vendor's key
    vat_number: str | None = None  # one client; default: every client of the accounting office
    soda_journal_code: str = Field(default="SAL", min_length=1)  # journal of the payroll (SODA) entries
    soda_accounts: dict[str, str] = {}  # the social secretariat's account -> ours, where they differ


Source = Annotated[Union[DemoPmsSource, BankFilesSource, CodaboxSource, StripeSource, PaypalSource, TrainingSource,
                         RestPmsSource, EntriesApiSource], Field(discriminator="type")]


class EmailDelivery(_Model):
    """Export files sent as the attachments of one e-mail per published batch."""

    to: list[str] = Field(min_length=1)
    sender: str  # the From address
    smtp_host: str
    smtp_port: int | None = Field(default=None, ge=1, le=65535)  # default: 587 starttls, 465 ssl, 25 none
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_user_env: str | None = None  # names of the variables holding the login, never the login itself
    smtp_password_env: str | None = None
    timeout_seconds: float = Field(default=30, gt=0, le=300)  # not money

    def settings(self) -> NotifySettings:
        return NotifySettings(email_to=self.to, email_from=self.sender, smtp_host=self.smtp_host,
                              smtp_port=self.smtp_port, smtp_security=self.smtp_security,
                              smtp_user_env=self.smtp_user_env, smtp_password_env=self.smtp_password_env,
                              timeout_seconds=self.timeout_seconds)


class FilesDestination(_Model):
    """Export files in one format, kept in a local folder and optionally delivered by sFTP and e-mail.

    ``type = "csv"`` is the generic journal CSV (JOURNAL.csv of INTERFACES §3) with a manifest;
    ``type = "files"`` takes ``format``: any ledger format of ``ledgerflow export`` (fec, datev,
    saft-no, xaf, sie4, beancount, hledger, csv) or ``template:<name>``.
    """

    type: Literal["csv", "files"]
    format: str = "csv"
    path: str  # every published file is kept here (the archive deliveries are made from)
    schedule: Literal["daily", "weekly", "monthly"] = "daily"
    file_prefix: str = Field(default="journal", pattern=r"^[A-Za-z0-9_.-]+$")  # journal CSV file names
    sftp: SftpServer | None = None
    email: EmailDelivery | None = None

    @model_validator(mode="after")
    def _known_format(self) -> FilesDestination:
        from destinations.exports import LEDGER_FORMATS  # a dict of names; imports no writer

        if self.type == "csv" and self.format != "csv":
            raise ValueError(f"type = 'csv' writes the journal CSV; for format = {self.format!r} use type = 'files'")
        if self.format not in LEDGER_FORMATS and not self.format.startswith("template:"):
            raise ValueError(f"format {self.format!r} is not a ledger export format: one of "
                             f"{', '.join(LEDGER_FORMATS)} or template:<name>")
        return self


class EInvoiceDestination(_Model):
    """The tenant's issued invoices (INVOICES.csv files dropped into ``<inbox>/invoices``) as
    e-invoices, one file per invoice: Peppol BIS 3.0 UBL (``ubl``) or Factur-X PDF/A-3 (``facturx``),
    kept in ``path/<period>/`` and optionally delivered by sFTP and e-mail."""

    type: Literal["einvoices"]
    format: Literal["ubl", "facturx"]
    path: str
    schedule: Literal["daily", "weekly", "monthly"] = "daily"
    sftp: SftpServer | None = None
    email: EmailDelivery | None = None


class ApiDestination(_Model):
    """An accounting system's API (``xero``, ``qbo``): the period's journal entries posted one object
    each, tracked per entry in the export ledger (``ledgerflow post``, and the close on its schedule).
    Secrets are never here: the OAuth client's id and secret come from environment variables, the
    tokens from ``token_store`` (``prefect:<Secret block>`` or ``file:<path>`` under data_dir)."""

    type: Literal["xero", "qbo"]
    organisation: str = Field(min_length=1)  # Xero tenant id (GET /connections) | QBO realm id (company id)
    schedule: Literal["daily", "weekly", "monthly"] = "daily"
    base_url: str | None = None  # default: the system's production API; LEDGERFLOW_<SYSTEM>_BASE_URL overrides
    token_url: str | None = None  # default: the system's token endpoint; LEDGERFLOW_<SYSTEM>_TOKEN_URL overrides
    client_id_env: str  # names of the variables holding the OAuth client's id and secret
    client_secret_env: str
    token_store: str | None = None  # default: file:tokens/<type>-<organisation>.json under data_dir
    accounts: dict[str, str] = {}  # our GL account -> theirs: Xero AccountCode (default: the same), QBO account id
    timeout_seconds: float = Field(default=30, gt=0, le=300)  # not money
    retries: int = Field(default=5, ge=0, le=20)  # 5xx and timeouts, each after a doubling wait
    backoff_seconds: float = Field(default=1.0, gt=0, le=300)  # not money: the first wait
    # What is posted: "journals" (every journal entry of the period) or "documents" (issued invoices and
    # credit notes, with their customers, and the payments reconciliation matched to them). Documents:
    post: Literal["journals", "documents"] = "journals"
    sales_account: str | None = None  # Xero AccountCode of invoice lines (revenue); required for xero documents
    item: str | None = None  # QBO Item id of invoice lines (the item carries the income account); required for qbo
    tax_codes: dict[str, str] = {}  # our VAT "CATEGORY:RATE" ("S:20", "S:5.5", "K:0"; "O" has no rate) -> Xero
    #                                 TaxType ("OUTPUT2") | QBO TaxCode id; every category+rate invoiced needs one
    payment_accounts: dict[str, str] = {}  # our bank GL account (reconciliation.bank_accounts' values) -> Xero
    #                                        bank account Code | QBO deposit account id, where payments are booked

    @model_validator(mode="after")
    def _documents_need_their_account(self) -> "ApiDestination":
        needed = {"xero": "sales_account", "qbo": "item"}[self.type]
        if self.post == "documents" and not getattr(self, needed):
            raise ValueError(f"post = \"documents\" to {self.type} needs {needed} "
                             f"({'the AccountCode' if self.type == 'xero' else 'the Item id'} of invoice lines)")
        return self


Destination = Annotated[Union[FilesDestination, EInvoiceDestination, ApiDestination], Field(discriminator="type")]


class ReconAccounts(_Model):
    """Where each side of a matched bank line is booked (bank <-> these)."""

    invoice: str  # customer receivables
    bill: str  # supplier payables
    payout: str  # cards / payment processor clearing: what the processor owes us
    refund: str | None = None  # default: the invoice account for money in, the bill account for money out
    bank_fee: str
    processor_fee: str | None = None  # default: bank_fee
    discount: str | None = None  # default: bank_fee
    rounding: str | None = None  # default: mapping.rounding_account
    fx: str | None = None  # default: bank_fee
    other: str | None = None  # default: mapping.suspense_account
    unapplied: str | None = None  # the part of a bank line no item took; default: mapping.suspense_account


class Reconciliation(_Model):
    """How bank lines are matched against open items, booked, and alerted on ([reconciliation])."""

    tolerance_days: int = Field(default=45, ge=0, le=3660)
    amount_tolerance_pct: Decimal = Field(default=Decimal("3"), ge=0, le=100, decimal_places=2)
    processor_fee_max_pct: Decimal = Field(default=Decimal("15"), ge=0, le=100, decimal_places=2)
    name_threshold: float = Field(default=0.8, gt=0, le=1)  # not money: a similarity score
    alert_after_days: int = Field(default=14, ge=0, le=3660)  # unmatched older than this is alerted
    journal_code: str = Field(default="BQ", min_length=1)
    inbox: str = "inbox"  # under data_dir: bank/*.csv and items/*.csv are picked up by each run
    bank_accounts: dict[str, str] = Field(min_length=1)  # our IBAN / account id -> its GL account
    accounts: ReconAccounts


class Tenant(Company):
    """A tenant file: COMPANY.toml's keys (``Company``) plus time, sources, mapping, destinations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    timezone: str
    business_day_cutoff: time = time(4, 0)
    data_dir: str
    closed_through: date | None = None  # books closed: corrections are dated after this
    accounts: list[Account]
    mapping: Mapping
    sources: dict[str, Source] = {}
    destinations: dict[str, Destination] = {}
    reconciliation: Reconciliation | None = None
    notify: NotifySettings | None = None
    bank_csv_profiles: dict[str, BankCsvProfile] = {}  # [bank_csv_profiles.NAME]: the tenant's own bank CSVs
    templates: dict[str, dict] = {}  # [templates.NAME]: the tenant's own import templates (see exports.templates)
    fec: dict[str, dict[str, str]] = {}  # [fec] journal_names: COMPANY.toml's per-format table, as in the export
    facturx: dict[str, str] = {}  # [facturx] font, bold_font: TrueType files for the Factur-X page

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in ISO_4217:
            raise ValueError(f"{value!r} is not an ISO 4217 currency code")
        return value

    @field_validator("bank_csv_profiles")
    @classmethod
    def _profile_names(cls, value: dict[str, BankCsvProfile]) -> dict[str, BankCsvProfile]:
        return {key: profile if profile.name == key else profile.model_copy(update={"name": key})
                for key, profile in value.items()}

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone such as 'Europe/Paris'") from exc
        return value

    # --- conveniences used across stages ---

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def data_path(self) -> Path:
        path = Path(os.path.expanduser(self.data_dir))
        if not path.is_absolute():
            path = Path(os.environ.get(HOME_ENV) or Path.cwd()) / path
        return path

    def duckdb_path(self) -> Path:
        return self.data_path() / f"{self.id}.duckdb"

    def destination_path(self, name: str) -> Path:
        path = Path(os.path.expanduser(self.destinations[name].path))
        if not path.is_absolute():
            path = Path(os.environ.get(HOME_ENV) or Path.cwd()) / path
        return path

    def company(self) -> Company:
        """The tenant as the COMPANY.toml that export formats read (with its own import templates)."""
        fields = self.model_dump(include=set(Company.model_fields))
        extra = {"templates": self.templates, "fec": self.fec, "facturx": self.facturx}
        return Company.model_validate({**fields, **{key: value for key, value in extra.items() if value}})

    def inbox_path(self) -> Path:
        recon = self.reconciliation
        return self.data_path() / (recon.inbox if recon else "inbox")

    def business_day_start(self, business_date: date) -> datetime:
        """The UTC instant a business day opens (its cut-off, local time, DST-aware)."""
        local = datetime.combine(business_date, self.business_day_cutoff, tzinfo=self.tz)
        return local.astimezone(ZoneInfo("UTC"))


def _reference_problems(tenant: Tenant) -> list[tuple[str, str]]:
    """Cross-references the type checks cannot see: accounts and VAT codes that must exist."""
    problems: list[tuple[str, str]] = []
    chart = tenant.account_names
    seen: set[str] = set()
    for index, account in enumerate(tenant.accounts):
        if account.number in seen:
            problems.append((f"accounts[{index}].number", f"account {account.number} is declared twice"))
        seen.add(account.number)

    def need_account(where: str, number: str) -> None:
        if number not in chart:
            problems.append((where, f"account {number} is not in the chart ([[accounts]])"))

    codes: set[str] = set()
    for index, vat in enumerate(tenant.vat_codes):
        if vat.code in codes:
            problems.append((f"vat_codes[{index}].code", f"VAT code {vat.code} is declared twice"))
        codes.add(vat.code)
        need_account(f"vat_codes[{index}].account", vat.account)

    mapping = tenant.mapping
    for key in ("suspense_account", "rounding_account", "guest_ledger_account", "deposit_account"):
        need_account(f"mapping.{key}", getattr(mapping, key))
    for category, rule in mapping.revenue.items():
        need_account(f"mapping.revenue.{category}.account", rule.account)
        if rule.vat_code not in codes:
            problems.append(
                (f"mapping.revenue.{category}.vat_code", f"VAT code {rule.vat_code} is not in [[vat_codes]]")
            )
    for category, rule in mapping.taxes.items():
        need_account(f"mapping.taxes.{category}.account", rule.account)
        if category in mapping.revenue:
            problems.append((f"mapping.taxes.{category}", f"{category} is mapped both as revenue and as a tax"))
    for method, rule in mapping.payment_methods.items():
        need_account(f"mapping.payment_methods.{method}.account", rule.account)
    recon = tenant.reconciliation
    if recon is not None:
        for bank_account, number in recon.bank_accounts.items():
            need_account(f"reconciliation.bank_accounts.{bank_account}", number)
        for key, number in recon.accounts.model_dump().items():
            if number is not None:
                need_account(f"reconciliation.accounts.{key}", number)
    for name, source in tenant.sources.items():
        if name == "rejected":  # <inbox>/webhooks/rejected keeps refused webhooks
            problems.append((f"sources.{name}", "'rejected' is reserved: give the source another name"))
        if isinstance(source, BankFilesSource) and source.profile is not None:
            from sources.bank_files.bank_csv import BUILTIN_PROFILES

            if source.profile not in tenant.bank_csv_profiles and source.profile not in BUILTIN_PROFILES:
                known = sorted({*tenant.bank_csv_profiles, *BUILTIN_PROFILES})
                problems.append((f"sources.{name}.profile", f"{source.profile!r} is not a bank CSV profile "
                                 f"(built-in or [bank_csv_profiles]); known: {', '.join(known)}"))
        if isinstance(source, CodaboxSource):
            for theirs, ours in source.soda_accounts.items():
                need_account(f"sources.{name}.soda_accounts.{theirs}", ours)
        if isinstance(source, EntriesApiSource):
            for theirs, ours in source.accounts.items():
                need_account(f"sources.{name}.accounts.{theirs}", ours)
    return problems


def _format_location(loc: tuple) -> str:
    parts: list[str] = []
    for index, item in enumerate(loc):
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        elif index == 2 and loc[0] in {"sources", "destinations"}:
            continue  # pydantic's union tag; the user never wrote it
        else:
            parts.append(str(item))
    return ".".join(parts)


def parse_tenant(document: dict, origin: str) -> Tenant:
    """Validate an already-parsed TOML document; ``origin`` names it in messages."""
    try:
        tenant = Tenant.model_validate(document)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = _format_location(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "is not a known key (typo?)"
            secretive = where.startswith("notify")  # a secret pasted into the wrong key is never echoed
            shown = ("" if error["type"] in {"missing", "extra_forbidden"} or secretive
                     or isinstance(error["input"], (dict, list))
                     else f" (got {error['input']!r})")
            lines.append(f"{origin}: {where}: {message}{shown}")
        raise ConfigError("\n".join(lines)) from None
    problems = _reference_problems(tenant)
    if problems:
        raise ConfigError("\n".join(f"{origin}: {where}: {message}" for where, message in problems))
    return tenant


def resolve_tenant_file(tenant: str | os.PathLike) -> Path:
    """A tenant id (``demo``) or a path to its TOML file -> the file."""
    text = os.fspath(tenant)
    if text.endswith(".toml") or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"{path}: tenant file not found")
        return path
    candidates = []
    if os.environ.get(TENANTS_DIR_ENV):
        candidates.append(Path(os.environ[TENANTS_DIR_ENV]) / f"{text}.toml")
    candidates += [Path.cwd() / "tenants" / f"{text}.toml", PACKAGED_TENANTS / f"{text}.toml"]
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(f"tenant {text!r}: none of {', '.join(map(str, candidates))} exists")


def load_tenant(tenant: str | os.PathLike) -> Tenant:
    path = resolve_tenant_file(tenant)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_tenant(document, str(path))
